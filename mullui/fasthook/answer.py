"""The answer path of a hook the agent waits on (run as ``python -S -I answer.py``).

``spool.sh --answer`` has already stored the event; this only decides what to answer.
It starts with no site-packages and imports only what the answer needs: mullui's
package dir is put on ``sys.path`` by hand.  The answer comes from
``mullui.guard.hook_answer(state_dir, agent_id, event, payload) -> str | None`` when that
module exists; its text goes to stdout for the agent CLI to read.  Whatever goes wrong,
the hook exits 0 with no answer: a broken guard must never stop an agent's tool call.
"""

import sys


def main() -> int:
    if len(sys.argv) != 4:
        return 0
    state_dir, agent_id, event = sys.argv[1:4]
    # mullui's checkout: .../mullui/fasthook/answer.py (no pathlib/os here: each import is
    # CPU of every edit the guard acts on)
    here = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
    sys.path.insert(0, here)
    payload = sys.stdin.buffer.read(4 * 1024 * 1024)
    try:
        from mullui import guard  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return 0
    try:
        out = guard.hook_answer(state_dir, agent_id, event, payload)
    except Exception as e:  # noqa: BLE001 - a guard bug must not block the tool call
        print(f"mullui: hook {event} answer failed: {type(e).__name__}: {e}"[:300], file=sys.stderr)
        return 0
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
