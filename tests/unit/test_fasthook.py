"""The fast hook path: ``fasthook/spool.sh`` (a real ``sh``) stores raw events; the store
translates, checks tokens and folds them when a record is read (supervisor or reader)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mullui.agents.base import SPOOL_SH, answer_hook_argv, spool_hook_argv
from mullui.model import Agent, State
from mullui.paths import get_paths
from mullui.store import Store


def make(tmp_path: Path, profile: str = "demo") -> tuple[Store, str, str]:
    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    st.create(Agent(id="ab12", name="x", profile=profile, task="t", hooks=True))
    st.emit("ab12", "start")
    st.emit("ab12", "state", state="working", cause="spawned")
    return st, "ab12", st.token("ab12") or ""


def run_hook(
    st: Store,
    aid: str,
    token: str,
    *args: str,
    stdin: bytes | None = b"{}",
    argv: tuple[str, ...] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    base = {"PATH": os.environ["PATH"]}
    if env is None:
        base.update(
            MULLUI_AGENT_ID=aid,
            MULLUI_AGENT_TOKEN=token,
            MULLUI_STATE_DIR=str(st.paths.state_dir),
        )
    else:
        base.update(env)
    return subprocess.run(
        [*(argv or spool_hook_argv()), *args],
        input=stdin,
        capture_output=True,
        env=base,
        timeout=30,
    )


def refused(st: Store) -> list[dict[str, str]]:
    log = st.paths.state_dir / "hook-refused.log"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_a_hook_is_stored_raw_and_folded_by_the_next_reader(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    r = run_hook(st, aid, token, "Ask", stdin=json.dumps({"question": "may I?"}).encode())
    assert r.returncode == 0 and r.stdout == b"", r.stderr
    raw = (st.paths.spool_dir / f"{aid}.hooks").read_bytes()
    assert raw.count(b"\n") == 1 and token.encode() in raw
    a = Store(st.paths).load(aid)
    assert (a.state, a.cause, a.question) == (State.BLOCKED, "hook:Ask", "may I?")
    assert list(st.paths.hookdata_dir.iterdir()) == []  # the payload is gone once folded
    # dated when the hook ran, not when it was read
    ev = json.loads(st.paths.spool_file(aid).read_text().splitlines()[-1])
    assert ev["source"] == "hook:Ask" and ev["raw_end"] == len(raw)
    # read again: nothing new, applied once
    assert Store(st.paths).load(aid).seq == a.seq
    assert len(st.paths.spool_file(aid).read_text().splitlines()) == 4


def test_events_keep_their_order_and_each_applies_once(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    for ev, payload in [
        ("Ask", {"question": "q1"}),
        ("Working", {}),
        ("Ask", {"question": "q2"}),
        ("Stop", {"message": "fin", "tokens_in": 5, "tokens_out": 2}),
    ]:
        assert run_hook(st, aid, token, ev, stdin=json.dumps(payload).encode()).returncode == 0
    a = st.load(aid)
    states = [t.state.value for t in a.history]
    assert states == ["queued", "starting", "working", "blocked", "working", "blocked", "done"]
    assert (a.last_message, a.tokens_in) == ("fin", 5)


def test_forged_token_is_refused_at_ingest_and_logged_never_folded(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    st.create(Agent(id="cd34", name="y", profile="demo", task="t"))
    other = st.token("cd34") or ""
    # agent cd34 tries to make ab12 look done with its own token; a blank token too
    assert run_hook(st, aid, other, "Stop", stdin=b'{"message": "forged"}').returncode == 0
    env = {"MULLUI_AGENT_ID": aid, "MULLUI_STATE_DIR": str(st.paths.state_dir)}
    (st.paths.secrets_dir / "zz99").write_text("")  # an empty secret is no secret
    assert run_hook(st, "zz99", "", "Stop", env={**env, "MULLUI_AGENT_ID": "zz99"}).returncode == 0
    a = Store(st.paths).load(aid)
    assert a.state is State.WORKING
    assert Store(st.paths).get("zz99") is None
    log = refused(st)
    assert [(x["agent"], x["why"]) for x in log] == [(aid, "token does not match")]
    # the right token works, after the forged line
    assert run_hook(st, aid, token, "Stop", stdin=b'{"message": "real"}').returncode == 0
    a = Store(st.paths).load(aid)
    assert (a.state, a.last_message) == (State.DONE, "real")
    assert len(refused(st)) == 1  # the forged line is not read (and logged) again


def test_the_token_never_reaches_an_argv(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    # tmux's hooks: agent id and state dir only; the token comes from the secrets file
    env = {"PATH": os.environ["PATH"]}
    r = run_hook(
        st, aid, "", "--agent", aid, "--state-dir", str(st.paths.state_dir), "pane-died",
        "--status", "3", env=env, stdin=None,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    a = st.load(aid)
    assert (a.state, a.exit_code, a.cause) == (State.FAILED, 3, "exit:3")
    for argv in (spool_hook_argv(), answer_hook_argv()):
        assert token not in " ".join(argv)


def test_hostile_payloads_become_refused_lines_not_tracebacks(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path, profile="claude")
    deep = b"[" * 100_000 + b"]" * 100_000
    huge = json.dumps({"message": "x" * (6 << 20)}).encode()
    for stdin in (deep, b'{"a":' * 50_000, huge, b"\0\x1b[2J", b"{not json"):
        assert run_hook(st, aid, token, "Notification", stdin=stdin).returncode == 0
    a = Store(st.paths).load(aid)
    assert a.state is State.WORKING  # nothing here says otherwise
    whys = [x["why"] for x in refused(st)]
    assert any("nested too deeply" in w for w in whys), whys
    spool = st.paths.spool_file(aid).read_bytes()
    assert max(len(x) for x in spool.splitlines()) <= 256 * 1024
    # a line anyone could append, naming a payload outside hookdata or a symlink
    outside = tmp_path / "secret.txt"
    outside.write_text('{"question": "leaked?"}')
    (st.paths.hookdata_dir / f"{aid}.1.0").symlink_to(outside)
    with (st.paths.spool_dir / f"{aid}.hooks").open("ab") as f:
        f.write(f"1\tAsk\ts\t{aid}.1.0\t{token}\n".encode())
        f.write(f"1\tAsk\ts\t../../secret.txt\t{token}\n".encode())
        f.write(b"garbage line\n")
    a = Store(st.paths).load(aid)
    assert a.state is State.WORKING and a.question is None
    assert outside.exists()


def test_bad_agent_or_event_name_is_one_line_exit_1(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    for agent, event in (("../../etc", "Stop"), ("", "Stop"), (aid, "a b"), (aid, "")):
        env = {"MULLUI_AGENT_ID": agent, "MULLUI_AGENT_TOKEN": token,
               "MULLUI_STATE_DIR": str(st.paths.state_dir)}  # fmt: skip
        r = run_hook(st, aid, token, *([event] if event else []), env=env)
        assert r.returncode == 1 and len(r.stderr.decode().splitlines()) == 1, r.stderr
    assert not (st.paths.spool_dir / f"{aid}.hooks").exists()


def test_codex_style_payload_in_the_last_argv_element(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    r = run_hook(st, aid, token, "Ask", json.dumps({"question": "from argv"}), stdin=None)
    assert r.returncode == 0, r.stderr
    assert st.load(aid).question == "from argv"


def test_answer_path_runs_python_only_when_armed(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    r = run_hook(st, aid, token, "Working", argv=answer_hook_argv())
    assert r.returncode == 0 and r.stdout == b""
    # armed: the answer program gets the payload (mullui.guard may not exist yet: then
    # there is no answer, and the tool call goes ahead)
    (st.paths.state_dir / "answer").mkdir()
    (st.paths.state_dir / "answer" / "Working").touch()
    r = run_hook(st, aid, token, "Working", argv=answer_hook_argv())
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    assert st.load(aid).cause == "hook:Working"
    assert len((st.paths.spool_dir / f"{aid}.hooks").read_bytes().splitlines()) == 2


def test_spool_script_is_posix_sh(tmp_path: Path) -> None:
    # dash is /bin/sh on Debian; `sh -n` parses it with no bashisms allowed
    r = subprocess.run(["/bin/sh", "-n", str(SPOOL_SH)], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("events", [50])
def test_a_crash_between_spool_append_and_record_write_folds_once(
    tmp_path: Path, events: int
) -> None:
    st, aid, token = make(tmp_path)
    for i in range(events):
        ev = "Ask" if i % 2 == 0 else "Working"
        run_hook(st, aid, token, ev, stdin=json.dumps({"question": f"q{i}"}).encode())
    # A reader dies after appending the translated events but before the record write:
    # simulated by appending them and throwing the record away.
    from mullui import hook
    from mullui.events import append_line, encode

    batch = hook.translate_raw(st.paths, aid, 0, "demo")
    append_line(st.paths.spool_file(aid), b"".join(encode(e) for e in batch.events))
    a = Store(st.paths).load(aid)
    assert a.seq == 3 + events  # each raw line folded once, none twice


def test_a_planted_symlink_at_the_payload_path_is_never_written_through(tmp_path: Path) -> None:
    st, aid, token = make(tmp_path)
    victim = tmp_path / "victim.txt"
    # The hook's pid is the payload name's first number: plant a dangling link there
    # first ($$ survives exec).
    plant = f'ln -s {victim} "$MULLUI_STATE_DIR/hookdata/{aid}.$$.0"; exec "$@"'
    r = run_hook(st, aid, token, "Ask", stdin=b'{"question": "q"}',
                 argv=("/bin/sh", "-c", plant, "sh", *spool_hook_argv()))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not victim.exists()
    assert st.load(aid).question == "q"  # the payload went to the next free name


def test_a_folded_agent_brought_back_keeps_the_hook_token_of_its_window(tmp_path: Path) -> None:
    # A done agent folded into the history while its CLI still runs in its window (left
    # idle past history_after_s), then given more work: `mullui send` brings it back.  Its
    # hooks carry the token of the window's environment: a late one written while it was
    # folded, and every one after, must still be read (not refused as forged).
    from datetime import timedelta

    from mullui import ledger
    from mullui.context import Context
    from mullui.model import utcnow

    st, aid, token = make(tmp_path)
    st.emit(aid, "state", state="done", cause="hook:Stop")
    ctx = Context(st.paths, cwd=tmp_path)
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == 1
    assert run_hook(st, aid, token, "Working").returncode == 0  # while it is folded
    ledger.revive(ctx, ledger.find(ctx.paths, aid) or {})
    a = Store(st.paths).load(aid)
    assert (a.state, a.cause) == (State.WORKING, "hook:Working"), refused(st)
    ask = json.dumps({"question": "may I?"}).encode()
    assert run_hook(st, aid, token, "Ask", stdin=ask).returncode == 0
    a = Store(st.paths).load(aid)
    assert (a.state, a.question) == (State.BLOCKED, "may I?"), refused(st)
    assert refused(st) == []


def test_hooks_run_while_an_agent_was_folded_are_all_read_when_it_comes_back(
    tmp_path: Path,
) -> None:
    # The raw spool of a folded agent is deleted; hooks its still-open window runs then
    # (the human typed in its pane) make a new one.  Brought back, every one of those lines
    # is read, however many there are (before: as many bytes as the agent had read before
    # its fold were taken for lines already in, and skipped).
    from datetime import timedelta

    from mullui import ledger
    from mullui.context import Context
    from mullui.model import utcnow

    st, aid, token = make(tmp_path)
    assert run_hook(st, aid, token, "Working").returncode == 0  # one raw line, read
    st.load(aid)
    st.emit(aid, "state", state="done", cause="hook:Stop")
    ctx = Context(st.paths, cwd=tmp_path)
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == 1
    assert not (st.paths.spool_dir / f"{aid}.hooks").exists()
    ask = json.dumps({"question": "late?"}).encode()
    for event, body in (("Working", b"{}"), ("Ask", ask), ("Working", b"{}"), ("Ask", ask)):
        assert run_hook(st, aid, token, event, stdin=body).returncode == 0
    ledger.revive(ctx, ledger.find(ctx.paths, aid) or {})
    a = Store(st.paths).load(aid)
    assert (a.state, a.question) == (State.BLOCKED, "late?"), refused(st)
    causes = [t.cause for t in a.history][-5:]
    assert causes == ["hook:Stop", "hook:Working", "hook:Ask", "hook:Working", "hook:Ask"]
