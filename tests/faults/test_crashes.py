"""Crashes and torn files: kill -9 the supervisor and the TUI, tear records, the notify
cursor and a spool line, kill the tmux server.  Real tmux, git and files throughout.

Each case checks what a user would see: no traceback, one line on stderr saying what was
rebuilt, agents still running, worktrees intact, every event applied once.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui import hook as hook_mod
from mullui.model import HISTORY_KEEP
from mullui.paths import get_paths
from mullui.store import Store
from tests.conftest import ROOT, git, ls_json, wait_for
from tests.support.agents import agent_row as row
from tests.support.agents import spawn

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def slow_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # demo agents stand in for "an agent with hooks": they must not finish by themselves
    monkeypatch.setenv("MULLUI_DEMO_SPEED", "0.0001")


def spawn_demo(cli: Cli, repo: Path, name: str) -> str:
    """A demo agent that has reported in (its own first "Working" hook has landed, so it
    cannot overtake the hooks a test sends)."""
    aid = spawn(cli, repo, "sleep 60", name=name, agent="demo")
    wait_for(lambda: row(cli, repo, aid)["cause"] == "hook:Working", timeout=10)
    return aid


def send_hook(home: Path, aid: str, event: str, payload: dict[str, Any]) -> None:
    """One hook call through the real ingest path (in-process: a subprocess per hook
    would make the kill-mid-run test slow without testing anything more)."""
    token = (home / "state" / "secrets" / aid).read_text()
    hook_mod.ingest(
        event, [], agent=aid, token=token, state_dir=str(home / "state"), stdin=json.dumps(payload)
    )


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


def mullui_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.strip()]


def tear(path: Path, keep: float = 0.5) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def journal(home: Path) -> list[dict[str, Any]]:
    """The change journal's whole lines.  A line torn by a kill is skipped, as the
    supervisor skips it: its change was never saved, so it is journaled again on replay."""
    out = []
    for raw in (home / "state" / "changes.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def pane_alive(sock: str, target: str) -> bool:
    r = subprocess.run(
        ["tmux", "-L", sock, "display-message", "-p", "-t", target, "#{pane_dead}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return r.returncode == 0 and r.stdout.strip() == "0"


# ---- torn files ----------------------------------------------------------------------------
def test_torn_record_is_reported_once_and_rebuilt(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
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


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        '"text"',
        "null",
        '{"id": "someone-else"}',
        '{"state": "working"}',
        "\u0000\u0001",
        "",
    ],
)
def test_record_of_the_wrong_shape_is_rebuilt(
    cli: Cli, git_repo: Path, mullui_home: Path, body: str
) -> None:
    aid = spawn(cli, git_repo, "sleep 60", name="shape")
    before = row(cli, git_repo, aid)
    rec = mullui_home / "state" / "agents" / f"{aid}.json"
    rec.write_text(body)
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0
    if body != "null":  # JSON null reads as "no record yet": rebuilt without a word
        assert len(mullui_lines(r.stderr)) == 1 and str(rec) in r.stderr, r.stderr
    assert next(a for a in json.loads(r.stdout) if a["id"] == aid) == before
    assert json.loads(rec.read_text())["id"] == aid


@pytest.mark.parametrize(
    "line",
    [
        '{"eid": [1], "kind": "ack"}',
        '{"eid": {"a": 1}, "kind": "wake"}',
        "[1, 2]",
        '"text"',
        '{"kind": "created", "record": [1]}',
        '{"kind": "state", "state": "done", "at": 5}',
        '{"kind": "update", "fields": {"task": 5, "branch": ["x"], "extra": "y"}}',
        '{"kind": "usage", "tokens_in": "many", "cost_usd": {}}',
        '{"kind": ["state"]}',
        '{"kind": "exit", "exit_code": "nine"}',
        "not json at all",
    ],
)
def test_a_spool_line_of_the_wrong_shape_is_skipped_or_applied_sanely(
    cli: Cli, git_repo: Path, mullui_home: Path, line: str
) -> None:
    aid = spawn(cli, git_repo, "sleep 60", name="odd")
    before = row(cli, git_repo, aid)
    spool = mullui_home / "state" / "spool" / f"{aid}.jsonl"
    with spool.open("a") as f:
        f.write(line + "\n")
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0 and len(mullui_lines(r.stderr)) <= 1, r.stderr
    after = next(a for a in json.loads(r.stdout) if a["id"] == aid)
    assert after["task"] == before["task"] and after["branch"] == before["branch"]
    for k in ("exit_code", "tokens_in", "tokens_out"):
        assert after[k] is None or type(after[k]) is int, after
    assert after["cost_usd"] is None or isinstance(after["cost_usd"], float | int)
    r = cli("stop", aid, cwd=git_repo)  # and the agent still works normally
    assert r.returncode == 0, r.stderr
    assert row(cli, git_repo, aid)["state"] == "stopped"


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
    aid = spawn(cli, git_repo, "sleep 60", name="victim")
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


@pytest.mark.parametrize(
    "body",
    [
        '{"offset": "x"}',
        '{"offset": 3, "seqs": {"a": "b"}}',
        "[1, 2]",
        '{"offset": 5, "seqs": [1]}',
        "null",
    ],
)
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


# ---- kill -9 ---------------------------------------------------------------------------------
def start_watch(cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "mullui", "watch"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def lock_holder(home: Path) -> int | None:
    try:
        txt = (home / "state" / "supervisor.lock").read_text().strip()
    except OSError:
        return None
    return int(txt) if txt.isdigit() else None


def holds_lock(home: Path, pid: int) -> bool:
    return lock_holder(home) == pid


def test_kill9_watch_mid_run_applies_every_event_once(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    aid = spawn_demo(cli, git_repo, "asker")
    ticker = spawn(cli, git_repo, "while true; do echo tick; sleep 0.2; done", name="ticker")
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    cursor = mullui_home / "state" / "notified.json"
    sent = 0

    def burst(n: int, pause: float = 0.0) -> None:
        nonlocal sent
        for _ in range(n):
            send_hook(mullui_home, aid, "Ask", {"question": f"q{sent}"})
            send_hook(mullui_home, aid, "Working", {})
            sent += 1
            time.sleep(pause)

    def told() -> int:
        try:
            return int(json.loads(cursor.read_text())["seqs"].get(aid, 0))
        except (OSError, ValueError):
            return 0

    # Three rounds: a supervisor follows a stream of hooks and is killed in the middle of
    # it, right after it has applied part of the stream (mid catch-up, mid journal line,
    # mid record write - wherever it happens to be).
    for _round in range(3):
        watch = start_watch(git_repo)
        pid = watch.pid
        try:
            wait_for(functools.partial(holds_lock, mullui_home, pid), timeout=10)
            wait_for(cursor.exists, timeout=10)
            before = told()
            stream = threading.Thread(target=burst, args=(12, 0.03))
            stream.start()
            wait_for(functools.partial(lambda b: told() > b, before), timeout=10)
        finally:
            watch.send_signal(signal.SIGKILL)
            watch.wait(10)
        stream.join(30)
        assert told() < 3 + 2 * sent, "the kill came after the stream: nothing tested"
        burst(3)  # while nobody supervises
    expected_seq = 3 + 2 * sent
    for a in ls_json(cli, git_repo):  # agents kept working through every kill
        assert a["state"] == "working", a
        assert pane_alive(sock, a["tmux_target"]), a
    watch = start_watch(git_repo)
    try:
        wait_for(
            lambda: json.loads(cursor.read_text())["seqs"].get(aid) == expected_seq, timeout=15
        )
    finally:
        watch.terminate()
        assert watch.wait(10) == 0
        assert "Traceback" not in (watch.stderr.read() if watch.stderr else "")
    rec = json.loads((mullui_home / "state" / "agents" / f"{aid}.json").read_text())
    assert rec["seq"] == expected_seq
    assert [t["seq"] for t in rec["history"]] == list(  # the record keeps the last ones
        range(expected_seq - min(expected_seq, HISTORY_KEEP) + 1, expected_seq + 1)
    )
    store = Store(get_paths({"MULLUI_HOME": str(mullui_home)}))
    full = store.full_history(store.load(aid))  # the spool keeps every one
    states = [t.state.value for t in full]
    assert states == ["queued", "starting", "working"] + ["blocked", "working"] * sent
    questions = [e for e in journal(mullui_home) if e["agent"] == aid]
    seen: dict[int, dict[str, Any]] = {}
    for entry in questions:
        for t in entry["transitions"]:
            # The journal is written before the record; a kill between the two may repeat a
            # line, which readers drop by (agent, seq) - so a repeat must be the same change.
            assert seen.setdefault(t["seq"], t) == t, f"seq {t['seq']} journaled differently"
    assert sorted(seen) == list(range(1, expected_seq + 1))
    assert row(cli, git_repo, ticker)["state"] == "working"


def test_kill9_tui_keeps_agents_and_frees_the_supervisor_lock(
    cli: Cli, git_repo: Path, mullui_home: Path, server: Any
) -> None:
    aid = spawn_demo(cli, git_repo, "bg")
    env = {
        "MULLUI_HOME": str(mullui_home),
        "MULLUI_TMUX_SOCKET": os.environ["MULLUI_TMUX_SOCKET"],
        "MULLUI_NOTIFY": "none",
        "MULLUI_WATCH_AUTOSTART": "0",  # this TUI supervises itself (nothing else may start)
        "MULLUI_DEMO_SPEED": "0.0001",
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
    }
    # The TUI in a terminal of its own: a tmux server on another socket (libtmux's fixture).
    server.new_session(
        "tui",
        window_command=f"{sys.executable} -m mullui",
        start_directory=str(git_repo),
        environment=env,
        x=120,
        y=40,
    )
    pid = wait_for(lambda: lock_holder(mullui_home), timeout=20)
    # Mid-run: the agent asks while the TUI supervises.
    send_hook(mullui_home, aid, "Ask", {"question": "ship it?"})
    wait_for(lambda: row(cli, git_repo, aid)["state"] == "blocked", timeout=10)
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ),
        timeout=10,
    )
    a = row(cli, git_repo, aid)
    assert a["state"] == "blocked"
    assert pane_alive(os.environ["MULLUI_TMUX_SOCKET"], a["tmux_target"])
    # flock dies with its holder: a new supervisor takes over at once.
    r = cli("watch", "--once", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0 and "another supervisor" not in r.stderr, r.stderr
    assert lock_holder(mullui_home) != pid


def test_killing_tmux_fails_agents_naming_tmux_and_rm_keeps_the_work(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    shell = spawn(cli, git_repo, "echo keep > w.txt; sleep 60", name="writer")
    demo = spawn_demo(cli, git_repo, "hooked")
    wt = Path(row(cli, git_repo, shell)["worktree"])
    wait_for(lambda: (wt / "w.txt").exists(), timeout=10)
    subprocess.run(["tmux", "-L", os.environ["MULLUI_TMUX_SOCKET"], "kill-server"], check=True)
    r = cli("ls", "--json", cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    rows = {a["id"]: a for a in json.loads(r.stdout)}
    for aid in (shell, demo):
        assert rows[aid]["state"] == "failed" and "tmux" in rows[aid]["cause"], rows[aid]
        assert Path(rows[aid]["worktree"]).is_dir()
    assert (wt / "w.txt").read_text() == "keep\n"
    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    assert {x["id"] for x in inbox} == {shell, demo}
    # rm still refuses to lose the uncommitted file; --force commits it to the branch.
    r = cli("rm", shell, cwd=git_repo)
    no_traceback(r)
    assert r.returncode == 1 and "w.txt" in r.stderr and len(mullui_lines(r.stderr)) == 1
    assert (wt / "w.txt").exists()
    r = cli("rm", shell, "--force", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert git(git_repo, "show", f"{rows[shell]['branch']}:w.txt") == "keep\n"
    # send/attach say the server is gone, in one line
    for args in (("send", demo, "hello"), ("attach", demo)):
        r = cli(*args, cwd=git_repo)
        no_traceback(r)
        assert r.returncode == 1 and len(mullui_lines(r.stderr)) == 1, (args, r.stderr)


# ---- a spawn interrupted half way ------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_spawn_interrupted_half_way_frees_its_slot(
    cli: Cli, git_repo: Path, mullui_home: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    (mullui_home / "config.toml").write_text("[limits]\nmax_running = 1\n")
    # Hold the spawn inside its worktree checkout (git runs post-checkout there).
    reached = tmp_path / "in-checkout"
    hook = git_repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {reached}\nsleep 5\n")
    hook.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mullui",
            "spawn",
            "--agent",
            "shell",
            "--name",
            "cut",
            "--no-attach",
            "sleep 60",
        ],
        cwd=git_repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(reached.exists, timeout=20)
    p.send_signal(sig)
    _out, err = p.communicate(timeout=20)
    assert "Traceback" not in err, err
    hook.unlink()
    [cut] = ls_json(cli, git_repo)
    assert cut["state"] == "failed" and "interrupted" in cut["cause"], cut
    if sig is signal.SIGINT:  # cleaned up on the way out
        assert cut["worktree"] is None and "mullui/" not in git(git_repo, "branch", "--list")
    else:  # the half-made worktree is the agent's: rm can find it
        assert cut["worktree"] and Path(cut["worktree"]).is_dir(), cut
        assert cut["branch"] == f"mullui/cut-{cut['id']}"
    # The slot is free again: the next agent starts at once instead of queueing forever.
    nxt = spawn(cli, git_repo, "sleep 60", name="next")
    assert row(cli, git_repo, nxt)["state"] == "working"
