"""The event pipeline: tokens, exactly-once replay across a supervisor kill, silence and
stall for agents without hooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, ls_json, wait_for
from tests.support.agents import agent_row as state
from tests.support.agents import spawn


@pytest.fixture(autouse=True)
def slow_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # demo agents used as "an agent with hooks" must not finish on their own mid-test
    monkeypatch.setenv("MULLUI_DEMO_SPEED", "0.0001")


def hook(home: Path, aid: str, token: str, event: str, payload: dict, agent_env: str | None = None):  # type: ignore[no-untyped-def,type-arg]
    env = {
        **os.environ,
        "MULLUI_AGENT_ID": agent_env or aid,
        "MULLUI_AGENT_TOKEN": token,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MULLUI_HOME", None)
    env["MULLUI_STATE_DIR"] = str(home / "state")
    return subprocess.run(
        [sys.executable, "-m", "mullui", "hook", event],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_forged_token_is_refused_and_logged(cli, git_repo: Path, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    a = spawn(cli, git_repo, "sleep 30", name="a", agent="demo")
    b = spawn(cli, git_repo, "sleep 30", name="b", agent="demo")
    token_a = (mullui_home / "state" / "secrets" / a).read_text()
    before = state(cli, git_repo, b)
    # agent A tries to make agent B look done with its own token
    r = hook(mullui_home, b, token_a, "Stop", {"message": "forged"})
    assert r.returncode == 1 and "token does not match" in r.stderr and "Traceback" not in r.stderr
    r = hook(mullui_home, b, "", "Stop", {"message": "forged"})
    assert r.returncode == 1
    after = state(cli, git_repo, b)
    assert after["state"] == before["state"] == "working"
    log = (mullui_home / "state" / "hook-refused.log").read_text().splitlines()
    assert len(log) == 2 and json.loads(log[0])["agent"] == b
    # the right token works
    token_b = (mullui_home / "state" / "secrets" / b).read_text()
    r = hook(mullui_home, b, token_b, "Stop", {"message": "really done"})
    assert r.returncode == 0, r.stderr
    assert state(cli, git_repo, b)["state"] == "done"


def _watch(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mullui", "watch"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _watch_until_told(
    env: dict[str, str], cursor: Path, aid: str, seq: int, home: Path
) -> list[dict]:  # type: ignore[type-arg]
    """Run `mullui watch` until it has notified ``aid`` up to ``seq``; the journal then."""
    watch = _watch(env)
    try:
        wait_for(lambda: json.loads(cursor.read_text())["seqs"].get(aid, 0) >= seq, timeout=10)
    finally:
        watch.terminate()
        watch.wait(10)
    return [json.loads(x) for x in (home / "state" / "changes.jsonl").read_text().splitlines()]


def test_replay_after_supervisor_kill_applies_each_event_once(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, mullui_home: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = spawn(cli, git_repo, "sleep 60", name="replayed", agent="demo")
    token = (mullui_home / "state" / "secrets" / a).read_text()
    watch = _watch(env)
    cursor = mullui_home / "state" / "notified.json"
    wait_for(lambda: cursor.exists(), timeout=10)
    watch.send_signal(signal.SIGKILL)
    watch.wait(10)
    # while no supervisor runs, the agent asks, is answered, asks again, finishes
    for ev, payload in [
        ("Ask", {"question": "q1"}),
        ("Working", {}),
        ("Ask", {"question": "q2"}),
        ("Working", {}),
        ("Stop", {"message": "fin"}),
    ]:
        assert hook(mullui_home, a, token, ev, payload).returncode == 0
    journal = _watch_until_told(env, cursor, a, 8, mullui_home)
    seqs = [t["seq"] for e in journal if e["agent"] == a for t in e["transitions"]]
    assert seqs == sorted(set(seqs)), "a transition was journaled twice"
    states = [t["state"] for e in journal if e["agent"] == a for t in e["transitions"]]
    assert states == [
        "queued",
        "starting",
        "working",
        "blocked",
        "working",
        "blocked",
        "working",
        "done",
    ]
    # a second catch-up (ls) applies nothing new
    n = len(journal)
    ls_json(cli, git_repo)
    assert len((mullui_home / "state" / "changes.jsonl").read_text().splitlines()) == n


def fast_hook(
    home: Path,
    aid: str,
    token: str,
    event: str,
    payload: dict,  # type: ignore[type-arg]
) -> subprocess.CompletedProcess[str]:
    """One hook call as agents make it now: the POSIX sh fast path, no Python."""
    from mullui.agents.base import spool_hook_argv

    env = {
        "PATH": os.environ["PATH"],
        "MULLUI_AGENT_ID": aid,
        "MULLUI_AGENT_TOKEN": token,
        "MULLUI_STATE_DIR": str(home / "state"),
    }
    return subprocess.run(
        [*spool_hook_argv(), event],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_fast_hooks_after_a_supervisor_kill_are_applied_once_in_order(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, mullui_home: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = spawn(cli, git_repo, "sleep 60", name="fast", agent="demo")
    b = spawn(cli, git_repo, "sleep 60", name="other", agent="demo")
    token = (mullui_home / "state" / "secrets" / a).read_text()
    watch = _watch(env)
    cursor = mullui_home / "state" / "notified.json"
    wait_for(lambda: cursor.exists(), timeout=10)
    # with a supervisor: the raw line becomes state without any reader
    assert fast_hook(mullui_home, a, token, "Ask", {"question": "q0"}).returncode == 0
    wait_for(lambda: json.loads(cursor.read_text())["seqs"].get(a, 0) >= 4, timeout=10)
    watch.send_signal(signal.SIGKILL)
    watch.wait(10)
    for ev, payload in [
        ("Working", {}),
        ("Ask", {"question": "q1"}),
        ("Working", {}),
        ("Stop", {"message": "fin"}),
    ]:
        assert fast_hook(mullui_home, a, token, ev, payload).returncode == 0
    # a forged line for b (with a's token) on the way: refused at ingest, never folded
    assert fast_hook(mullui_home, b, token, "Stop", {"message": "forged"}).returncode == 0
    journal = _watch_until_told(env, cursor, a, 8, mullui_home)
    seqs = [t["seq"] for e in journal if e.get("agent") == a for t in e["transitions"]]
    assert seqs == sorted(set(seqs)), "a transition was journaled twice"
    rows = {x["id"]: x for x in ls_json(cli, git_repo)}
    assert rows[a]["state"] == "done" and rows[b]["state"] == "working"
    log = (mullui_home / "state" / "hook-refused.log").read_text().splitlines()
    assert [json.loads(x)["agent"] for x in log] == [b]
    rec = json.loads((mullui_home / "state" / "agents" / f"{a}.json").read_text())
    assert [t["state"] for t in rec["history"]][3:] == [
        "blocked", "working", "blocked", "working", "done"
    ]  # fmt: skip


def test_silence_then_output_for_a_shell_agent(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, mullui_home: Path, tmp_path: Path
) -> None:
    (mullui_home / "config.toml").write_text("[limits]\nsilence_after_s = 1\n")
    # The agent stays quiet until the test lets it speak: the silence is seen while it is
    # quiet, and the output after it brings it back (order, not wall time: each `ls` on a
    # loaded machine takes a while).
    go = tmp_path / "go"
    quiet = f"echo start; until [ -e '{go}' ]; do sleep 0.1; done; echo more; sleep 60"
    aid = spawn(cli, git_repo, quiet, name="quiet")
    s = wait_for(lambda: (x := state(cli, git_repo, aid))["state"] == "blocked" and x, timeout=30)
    assert s["cause"] == "silence:1s"  # the heuristic says it is one
    assert not go.exists()
    go.touch()
    # read state and cause together: a second `ls` a second later may already see the
    # next silence (the agent is quiet again after "more")
    back = wait_for(lambda: (x := state(cli, git_repo, aid))["state"] == "working" and x, 30)
    assert back["cause"] == "output"


def test_stall_for_a_shell_agent(cli, git_repo: Path, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    (mullui_home / "config.toml").write_text("[limits]\nsilence_after_s = 600\nstall_after_s = 2\n")
    aid = spawn(cli, git_repo, "sleep 60", name="stuck")
    busy = spawn(cli, git_repo, "while true; do echo tick; sleep 0.3; done", name="busy")
    time.sleep(2.5)
    rows = {a["id"]: a for a in ls_json(cli, git_repo)}
    assert rows[aid]["state"] == "failed" and rows[aid]["cause"] == "stalled"
    assert rows[busy]["state"] == "working"  # output is a sign of life
    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    assert [x["id"] for x in inbox] == [aid]


def test_stall_found_by_the_supervisor_timer(cli, git_repo: Path, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    (mullui_home / "config.toml").write_text("[limits]\nsilence_after_s = 600\nstall_after_s = 2\n")
    aid = spawn(cli, git_repo, "sleep 60", name="stuck")
    watch = _watch({**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        rec = mullui_home / "state" / "agents" / f"{aid}.json"
        wait_for(lambda: json.loads(rec.read_text())["state"] == "failed", timeout=8)
        assert json.loads(rec.read_text())["cause"] == "stalled"
    finally:
        watch.terminate()
        watch.wait(10)


def test_tmux_hooks_carry_no_token_and_report_the_exit(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, mullui_home: Path
) -> None:
    (mullui_home / "config.toml").write_text("[limits]\nsilence_after_s = 60\n")
    aid = spawn(cli, git_repo, "read x; exit 4", name="tokenless")
    token = (mullui_home / "state" / "secrets" / aid).read_text()
    target = state(cli, git_repo, aid)["tmux_target"]
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    hooks = subprocess.run(
        ["tmux", "-L", sock, "show-hooks", "-w", "-t", target],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    assert "pane-died" in hooks and "spool.sh" in hooks and aid in hooks
    assert token not in hooks  # what tmux runs is in /proc/*/cmdline: no token there
    subprocess.run(["tmux", "-L", sock, "send-keys", "-t", target, "Enter"], check=True, timeout=10)
    wait_for(lambda: state(cli, git_repo, aid)["state"] == "failed", timeout=15)
    assert state(cli, git_repo, aid)["exit_code"] == 4
