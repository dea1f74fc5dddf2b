"""Aider's ``--notifications-command``: report what its pane is waiting for; and the
wrapper that reports aider's usage when it exits.

    python -m mullui.agents.aider_notify [--socket NAME] ANALYTICS_LOG -- HOOK_ARGV... EVENT
    python -m mullui.agents.aider_notify --run ANALYTICS_LOG -- HOOK_ARGV... EVENT -- AIDER_ARGV...

Aider (0.86.2, ``aider/io.py`` ``ring_bell``) runs the command through a shell, with no
argument and no stdin, and waits for it, *before* it draws the question or the prompt it
is about to wait on.  So this command answers at once: it forks a detached child and
returns.  The child finds the pane whose tty is aider's terminal on mullui's tmux server
(``tmux -L NAME``: mullui's pane wrapper unsets ``$TMUX`` / ``$TMUX_PANE`` for agents)
and captures it every 30 ms, later every 250 ms, for at most :data:`WAIT_S`, until its
last line is a prompt - a confirmation ending in ``[Yes]:`` / ``[No]:`` or the chat
prompt ``> `` - then runs ``HOOK_ARGV EVENT`` with ``{"screen": <the pane's last
lines>, "usage": {...}}`` on stdin.  Reading the screen is the only way to tell a
question from the chat prompt, and to know the question: aider passes nothing.
``usage`` sums the ``message_send`` events of aider's own analytics log
(``--analytics-log``: exact token counts and cost per model call).

Imports nothing of mullui: it runs once per aider reply, inside aider's wait.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: how long the child waits for the prompt to be drawn (aider may look up model prices
#: on the network in between), polling every POLL_S, every SLOW_POLL_S after FAST_S
WAIT_S = 60.0
POLL_S = 0.03
FAST_S = 2.0
SLOW_POLL_S = 0.25
#: lines of the pane sent along (the question and what it is about)
SCREEN_LINES = 12

PROMPT_END = re.compile(r"(\[(Yes|No|[^\]]*)\]:\s*$)|((^|\s)[\w-]*>\s*$)")


def is_prompt(line: str) -> bool:
    return bool(PROMPT_END.search(line))


def last_lines(screen: str, n: int = SCREEN_LINES) -> list[str]:
    lines = [x.rstrip() for x in screen.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-n:]


def find_pane(socket: str, tty: str) -> str:
    """The id of the pane whose terminal is ``tty`` on mullui's tmux server."""
    try:
        out = subprocess.run(
            ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_tty} #{pane_id}"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.stdout.splitlines():
        path, _, pane = line.partition(" ")
        if path == tty:
            return pane
    return ""


def capture(socket: str, pane: str) -> str:
    try:
        out = subprocess.run(
            ["tmux", "-L", socket, "capture-pane", "-p", "-J", "-t", pane],
            capture_output=True,
            text=True,
            timeout=2,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout if out.returncode == 0 else ""


def analytics_usage(path: str) -> dict[str, Any] | None:
    """Totals of aider's ``message_send`` events (``--analytics-log`` JSON lines)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    tin = tout = 0
    cost = 0.0
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or rec.get("event") != "message_send":
            continue
        props = rec.get("properties") or {}
        tin += int(props.get("prompt_tokens") or 0)
        tout += int(props.get("completion_tokens") or 0)
        total = props.get("total_cost")
        if isinstance(total, (int, float)):
            cost = float(total)
    if not tin and not tout:
        return None
    return {"tokens_in": tin, "tokens_out": tout, "cost_usd": cost}


def report(analytics_log: str, hook: list[str], socket: str, tty: str) -> None:
    lines: list[str] = []
    pane = find_pane(socket, tty) if tty else ""
    start = time.monotonic()
    while True:
        lines = last_lines(capture(socket, pane)) if pane else []
        waited = time.monotonic() - start
        if (lines and is_prompt(lines[-1])) or waited >= WAIT_S or not pane:
            break
        time.sleep(POLL_S if waited < FAST_S else SLOW_POLL_S)
    payload = {"screen": "\n".join(lines), "usage": analytics_usage(analytics_log)}
    subprocess.run(hook, input=json.dumps(payload), text=True, timeout=30, check=False)


def run(argv: list[str]) -> int:
    """Run aider (``AIDER_ARGV``, same terminal), then report its usage with ``HOOK_ARGV
    EVENT`` (``{"exit": code, "usage": ...}``) before exiting with aider's own code: with
    ``--message`` the last reply often asks nothing, so no notification carries it."""
    import signal

    try:
        log, rest = argv[0], argv[2:]
        cut = rest.index("--")
    except (IndexError, ValueError):
        print(
            "usage: aider_notify --run LOG -- HOOK_ARGV... EVENT -- AIDER_ARGV...", file=sys.stderr
        )
        return 2
    hook, aider = rest[:cut], rest[cut + 1 :]
    if argv[1] != "--" or not hook or not aider:
        print(
            "usage: aider_notify --run LOG -- HOOK_ARGV... EVENT -- AIDER_ARGV...", file=sys.stderr
        )
        return 2
    try:
        child = subprocess.Popen(aider)
    except OSError as e:
        print(f"cannot run {aider[0]}: {e}", file=sys.stderr)
        return 127
    # Ctrl-C is aider's (same process group); a stop or a closed window reaches it too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: child.send_signal(n))
    code = child.wait()
    usage = analytics_usage(log)
    if usage is not None:
        payload = json.dumps({"exit": code, "usage": usage})
        try:
            subprocess.run(hook, input=payload, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            pass
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--run"]:
        return run(argv[1:])
    socket = os.environ.get("MULLUI_TMUX_SOCKET") or "mullui"
    if argv[:1] == ["--socket"] and len(argv) > 1:
        socket, argv = argv[1], argv[2:]
    if "--" not in argv or argv.index("--") != 1 or len(argv) < 4:
        print("usage: aider_notify [--socket NAME] LOG -- HOOK_ARGV... EVENT", file=sys.stderr)
        return 2
    analytics_log, hook = argv[0], argv[2:]
    try:
        tty = os.ttyname(0)  # aider's terminal: the pane's
    except OSError:
        tty = ""
    if os.fork():
        return 0  # aider waits for this process only; the child carries on alone
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # aider reads our stdout/stderr pipes until they close
    try:
        report(analytics_log, hook, socket, tty)
    finally:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
