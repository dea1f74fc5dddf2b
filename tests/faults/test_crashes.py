"""Crashes and torn files: kill -9 the supervisor and the TUI, tear records, the notify
cursor and a spool line, kill the tmux server.  Real tmux, git and files throughout.

Each case checks what a user would see: no traceback, one line on stderr saying what was
rebuilt, agents still running, worktrees intact, every event applied once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui import hook as hook_mod
from tests.conftest import ROOT, git, ls_json, wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def slow_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # demo agents stand in for "an agent with hooks": they must not finish by themselves
    monkeypatch.setenv("MULLUI_DEMO_SPEED", "0.0001")


def spawn(cli: Cli, repo: Path, task: str, name: str, agent: str = "shell") -> str:
    r = cli("spawn", "--agent", agent, "--name", name, "--no-attach", task, cwd=repo)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def row(cli: Cli, repo: Path, aid: str) -> dict[str, Any]:
    return next(a for a in ls_json(cli, repo) if a["id"] == aid)


def spawn_demo(cli: Cli, repo: Path, name: str) -> str:
    """A demo agent that has reported in (its own first "Working" hook has landed, so it
    cannot overtake the hooks a test sends)."""
    aid = spawn(cli, repo, "sleep 60", name, agent="demo")
    wait_for(lambda: row(cli, repo, aid)["cause"] == "hook:Working", timeout=10)
    return aid


def send_hook(home: Path, aid: str, event: str, payload: dict[str, Any]) -> None:
    """One hook call through the real ingest path (in-process: a subprocess per hook
    would make the kill-mid-run test slow without testing anything more)."""
    token = (home / "state" / "secrets" / aid).read_text()
    hook_mod.ingest(event, [], agent=aid, token=token, state_dir=str(home / "state"),
                    stdin=json.dumps(payload))


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


def mullui_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.strip()]


def tear(path: Path, keep: float = 0.5) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def journal(home: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (home / "state" / "changes.jsonl").read_text().splitlines()]


def pane_alive(sock: str, target: str) -> bool:
    r = subprocess.run(["tmux", "-L", sock, "display-message", "-p", "-t", target,
                        "#{pane_dead}"], capture_output=True, text=True, check=False)
    return r.returncode == 0 and r.stdout.strip() == "0"


# ---- torn files ----------------------------------------------------------------------------
def test_torn_record_is_reported_once_and_rebuilt(cli: Cli, git_repo: Path, mullui_home: Path) -> None:
    aid = spawn_demo(cli, git_repo, "torn")
    send_hook(mullui_home, aid, "Ask", {"question": "deploy to prod?"})
    before = row(cli, git_repo, aid)
    assert before["state"] == "blocked"
    rec = mullui_home / "state" / "agents" / f"{aid}.json"
    tear(rec)
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0
    lines = mullui_lines(r.stderr)
    assert len(lines) == 1 and str(rec) in lines[0] and "rebuilt" in lines[0], r.stderr
    after = next(a for a in json.loads(r.stdout) if a["id"] == aid)
    assert after == before
    json.loads(rec.read_text())  # rewritten whole
    r = cli("ls", "--json", cwd=git_repo)
    assert r.returncode == 0 and r.stderr == ""  # reported once, not on every ls


def test_torn_spool_tail_is_reported_and_later_events_are_not_lost(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    aid = spawn_demo(cli, git_repo, "tail")
    send_hook(mullui_home, aid, "Ask", {"question": "q1"})
    assert row(cli, git_repo, aid)["state"] == "blocked"
    spool = mullui_home / "state" / "spool" / f"{aid}.jsonl"
    # A writer that died mid-line (disk full, kill -9) leaves the last line without its end.
    raw = spool.read_bytes()
    last = raw.rstrip(b"\n").rfind(b"\n") + 1
    spool.write_bytes(raw[: last + (len(raw) - last) // 2])
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0
    lines = mullui_lines(r.stderr)
    assert len(lines) == 1 and str(spool) in lines[0], r.stderr
    # The next event lands on a line of its own, not glued to the torn one.
    send_hook(mullui_home, aid, "Stop", {"message": "all done"})
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    a = next(x for x in json.loads(r.stdout) if x["id"] == aid)
    assert a["state"] == "done" and a["cause"] == "hook:Stop"
    r = cli("ls", "--json", cwd=git_repo)
    assert r.returncode == 0 and r.stderr == ""


def test_torn_spool_tail_then_stop_is_not_lost(cli: Cli, git_repo: Path, mullui_home: Path) -> None:
    """The torn line is read by nobody before the next append: the append must not be
    swallowed into it (the user's `stop` would be lost and the agent shown as failed)."""
    aid = spawn(cli, git_repo, "sleep 60", "victim")
    row(cli, git_repo, aid)
    spool = mullui_home / "state" / "spool" / f"{aid}.jsonl"
    tear(spool, 0.97)
    r = cli("stop", aid, cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    a = row(cli, git_repo, aid)
    assert a["state"] == "stopped", a


def test_torn_notify_cursor_is_reported_and_rewritten(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    spawn_demo(cli, git_repo, "c")
    cursor = mullui_home / "state" / "notified.json"
    r = cli("watch", "--once", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    good = json.loads(cursor.read_text())
    tear(cursor)
    r = cli("watch", "--once", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0
    assert [x for x in mullui_lines(r.stderr) if str(cursor) in x], r.stderr
    assert json.loads(cursor.read_text())["offset"] == good["offset"]


@pytest.mark.parametrize("body", ['{"offset": "x"}', '{"offset": 3, "seqs": {"a": "b"}}',
                                  '[1, 2]', '{"offset": 5, "seqs": [1]}', "null"])
def test_notify_cursor_with_wrong_types_is_rebuilt(
    cli: Cli, git_repo: Path, mullui_home: Path, body: str
) -> None:
    spawn_demo(cli, git_repo, "c")
    cursor = mullui_home / "state" / "notified.json"
    cursor.write_text(body)
    r = cli("watch", "--once", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0
    d = json.loads(cursor.read_text())
    assert isinstance(d["offset"], int) and d["offset"] > 0
