"""A scripted demo agent: prints like a coding agent, edits and commits in its worktree,
asks a question (blocked), finishes (done) or fails - reporting through ``mullui hook``.

Run by the ``demo`` profile as ``python -m mullui.demo.agent SCRIPT TASK``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from mullui.errors import MulluiError

CYAN, GREEN, YELLOW, RED, DIM, BOLD, RESET = (
    "\x1b[36m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[31m",
    "\x1b[2m",
    "\x1b[1m",
    "\x1b[0m",
)
SPEED = float(os.environ.get("MULLUI_DEMO_SPEED", "1"))


def say(text: str) -> None:
    print(text, flush=True)


def pause(seconds: float) -> None:
    time.sleep(seconds / SPEED)


def hook(event: str, **payload: object) -> None:
    from mullui import hook as hook_mod

    try:
        import json

        hook_mod.ingest(event, [], stdin=json.dumps(payload))
    except MulluiError as e:
        say(f"{RED}hook {event} refused: {e}{RESET}")


def work(steps: list[str], seconds: float) -> None:
    for step in steps:
        say(f"{CYAN}●{RESET} {step}")
        pause(seconds / max(len(steps), 1))
        say(f"  {DIM}⎿ ok{RESET}")


def commit(path: str, text: str, message: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo-agent",
        "GIT_AUTHOR_EMAIL": "demo@mullui.invalid",
        "GIT_COMMITTER_NAME": "demo-agent",
        "GIT_COMMITTER_EMAIL": "demo@mullui.invalid",
    }
    subprocess.run(["git", "add", "-A"], check=False, env=env, capture_output=True)
    subprocess.run(["git", "commit", "-qm", message], check=False, env=env, capture_output=True)
    say(f"{GREEN}✓{RESET} committed: {message}")


def ask(question: str) -> str:
    say(f"\n{YELLOW}{BOLD}? {question}{RESET}")
    say(f"{DIM}(answer with `r` in mullui, or attach and type){RESET}")
    hook("Ask", question=question)
    answer = sys.stdin.readline().strip()
    hook("Working")
    say(f"{DIM}> {answer}{RESET}")
    return answer


def usage(tokens_in: int, tokens_out: int) -> dict[str, object]:
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": round(tokens_in * 3e-6 + tokens_out * 15e-6, 4),
    }


def main() -> int:
    script, task = sys.argv[1], sys.argv[2]
    say(f"{BOLD}demo agent{RESET} · {script} · {DIM}{task}{RESET}")
    hook("Working")
    if script == "refactor":
        work(["Reading src/parser.py", "Extracting tokenize()", "Running the tests (12 passed)"], 8)
        commit(
            "src/parser.py", "def tokenize(text):\n    return text.split()\n", "Extract tokenize()"
        )
        hook(
            "Stop",
            message="Extracted tokenize() from parse(); 12 tests pass.",
            **usage(18000, 2400),
        )
    elif script == "question":
        work(["Reading the API docs", "Drafting the new endpoint"], 5)
        answer = ask("Should the new /export endpoint also accept CSV? (y/n)")
        work(["Writing src/export.py" + (" with CSV" if answer.lower().startswith("y") else "")], 4)
        commit("src/export.py", f"# export endpoint (csv: {answer})\n", "Add /export endpoint")
        hook("Stop", message=f"Added /export (CSV: {answer or 'no answer'}).", **usage(26000, 4100))
    elif script == "permission":
        work(["Looking at the build output"], 3)
        answer = ask("Allow Bash: rm -rf build/ && make clean? (y/n)")
        if answer.lower().startswith("y"):
            work(["Cleaning build/", "Rebuilding"], 4)
            hook("Stop", message="Clean rebuild finished.", **usage(9000, 800))
        else:
            hook("Stop", message="Left build/ alone as asked.", **usage(7000, 500))
    elif script == "flaky":
        work(["Installing dependencies", "Running the integration tests"], 6)
        say(
            f"{RED}FAILED tests/test_sync.py::test_retry - "
            f"TimeoutError: upstream did not answer{RESET}"
        )
        say(f"{RED}1 failed, 41 passed{RESET}")
        return 1
    elif script == "long":
        for i in range(1, 121):
            say(f"{DIM}[{i:3d}/120]{RESET} indexing module_{random.randint(100, 999)}.py")
            pause(1)
        hook("Stop", message="Indexed 120 modules.", **usage(52000, 6000))
    else:
        say(f"unknown demo script {script!r}")
        return 2
    # Stay at the "prompt" like a real agent would, until the user stops it.
    say(f"\n{GREEN}{BOLD}done.{RESET} {DIM}(waiting for the next instruction){RESET}")
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        hook("Working")
        say(f"{CYAN}●{RESET} {line.strip()}")
        pause(2)
        hook("Stop", message=f"Did: {line.strip()}")


if __name__ == "__main__":
    raise SystemExit(main())
