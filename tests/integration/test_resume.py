"""``mullui resume`` with real tmux, real git worktrees and the real CLI (shell agents; the
real Claude Code and Codex CLIs are in ``test_resume_clis.py``).

Proves: ``resume --all`` after a dead tmux server brings every interrupted agent back
while respecting ``max_running`` (the rest queued, started by the real supervisor, none
lost); a budget stop is a pause that ``--budget`` lifts; ``[limits] auto_resume`` resumes
by itself when a supervisor starts; and each refusal is one line that changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui.model import Agent, State
from mullui.paths import get_paths
from mullui.store import Store
from tests.conftest import git, ls_json, wait_for
from tests.support.agents import spawn

Cli = Callable[..., subprocess.CompletedProcess[str]]
RUNNING = ("starting", "working", "blocked")

pytestmark = pytest.mark.timeout(300)


def store() -> Store:
    return Store(get_paths())


def get(agent_id: str) -> Agent:
    return store().load(agent_id)


def config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def kill_tmux() -> None:
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


def by_id(cli: Cli, repo: Path) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in ls_json(cli, repo)}


def history(agent_id: str) -> list[tuple[str, str]]:
    return [(t.state.value, t.cause) for t in get(agent_id).history]


# ---- resume --all: max_running holds, nothing lost --------------------------------------------
def test_resume_all_after_a_dead_tmux_server_respects_max_running(
    cli: Cli, git_repo: Path, autostart: Path, tmp_path: Path
) -> None:
    mullui_home = autostart  # queued resumes are started by the supervisor, as for a user
    go = tmp_path / "go"
    # First run: waits forever; after the resume (the file exists) it finishes in 2 s.
    task = f"echo ran >> ran.txt; if [ -e {go} ]; then sleep 2; else sleep 300; fi"
    config(mullui_home, "[limits]\nmax_running = 5\n")
    ids = [spawn(cli, git_repo, task, "--name", f"r{i}") for i in range(5)]
    wait_for(lambda: all(a["state"] == "working" for a in ls_json(cli, git_repo)), 30)
    kill_tmux()
    agents = by_id(cli, git_repo)  # ls reconciles: the dead server is seen
    assert {a["state"] for a in agents.values()} == {"failed"}
    assert all(a["interrupted"] for a in agents.values())
    inbox = cli("inbox", cwd=git_repo).stdout
    assert "5 agents were interrupted" in inbox and "mullui resume --all" in inbox

    go.write_text("")
    config(mullui_home, "[limits]\nmax_running = 2\n")
    r = cli("resume", "--all", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("resumed in") == 2, r.stdout
    assert r.stdout.count("queued to resume") == 3, r.stdout
    seen_running = 0

    def all_done() -> bool:
        nonlocal seen_running
        agents = by_id(cli, git_repo)
        running = sum(1 for a in agents.values() if a["state"] in RUNNING)
        seen_running = max(seen_running, running)
        assert running <= 2, agents
        return all(a["state"] == "done" for a in agents.values())

    wait_for(all_done, timeout=120, interval=0.1)
    assert seen_running == 2
    for i in ids:
        a = get(i)
        # Same agent, same worktree: the first run's line and the resumed run's line.
        assert (Path(a.worktree or "") / "ran.txt").read_text() == "ran\nran\n"
        assert ("starting", "resume:manual") in history(i)
        assert a.extra.get("resumes") == 1
    queued = [i for i in ids if ("queued", "resume:manual") in history(i)]
    assert len(queued) == 3


# ---- refusals: one line, nothing changed ------------------------------------------------------
def refused(cli: Cli, repo: Path, agent_id: str, *args: str) -> str:
    before = get(agent_id)
    r = cli("resume", agent_id, *args, cwd=repo)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mullui: "), r.stderr
    after = get(agent_id)
    assert (after.seq, after.state, after.cause) == (before.seq, before.state, before.cause)
    assert after.extra == before.extra
    return lines[0]


def test_a_running_agent_is_not_resumed(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "sleep 300")
    assert "is still running (working)" in refused(cli, git_repo, a)


def test_a_done_agent_is_not_resumed(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "true")
    wait_for(lambda: get(a).state is State.DONE, 20)
    assert "is done, not stopped" in refused(cli, git_repo, a)


def test_a_removed_agent_is_not_resumed(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "sleep 300")
    assert cli("stop", a, cwd=git_repo).returncode == 0
    assert cli("rm", a, cwd=git_repo).returncode == 0
    assert "was removed" in refused(cli, git_repo, a)


def test_a_window_still_open_is_not_resumed_twice(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "sleep 300")
    # Failed by the stall clock while its process still runs: resuming would run two.
    store().emit(a, "stall", cause="stalled")
    assert get(a).state is State.FAILED
    assert "window is still open" in refused(cli, git_repo, a)


def test_a_removed_worktree_is_refused_then_recreated_from_the_branch(
    cli: Cli, git_repo: Path
) -> None:
    a = spawn(
        cli, git_repo, "echo work > work.txt && git add work.txt && git commit -qm w; sleep 300"
    )
    wt = Path(
        wait_for(
            lambda: (
                (x := get(a)).worktree and (Path(x.worktree) / "work.txt").exists() and x.worktree
            ),
            20,
        )
    )
    wait_for(lambda: "w" in git(git_repo, "log", "-1", "--format=%s", get(a).branch or ""), 20)
    assert cli("stop", a, cwd=git_repo).returncode == 0
    subprocess.run(["rm", "-rf", str(wt)], check=True)
    line = refused(cli, git_repo, a)
    assert "worktree" in line and "is gone" in line and "--recreate" in line
    r = cli("resume", a, "--recreate", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert (wt / "work.txt").read_text() == "work\n"  # the branch's committed work is back
    wait_for(lambda: get(a).state is State.WORKING, 20)


def test_a_deleted_branch_is_refused(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "sleep 300")
    assert cli("stop", a, cwd=git_repo).returncode == 0
    x = get(a)
    subprocess.run(["rm", "-rf", x.worktree or ""], check=True)
    git(git_repo, "worktree", "prune")
    git(git_repo, "branch", "-D", x.branch or "")
    line = refused(cli, git_repo, a, "--recreate")
    assert f"branch {x.branch} is gone" in line


def test_a_cli_without_a_resume_for_the_session_is_refused_then_fresh(
    cli: Cli, git_repo: Path, mullui_home: Path, tmp_path: Path
) -> None:
    # A codex agent whose CLI never reported its thread (no session id): codex has no
    # resume for it.  The codex binary is a script that records its argv.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_log = tmp_path / "argv.txt"
    fake = bin_dir / "codex"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_log}\nsleep 300\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    r = cli("spawn", "--agent", "codex", "--no-attach", "do the thing", cwd=git_repo, env=env)
    assert r.returncode == 0, r.stderr
    a = r.stdout.strip().split()[-1]
    wait_for(argv_log.exists, 20)
    assert cli("stop", a, cwd=git_repo, env=env).returncode == 0
    line = refused(cli, git_repo, a)
    assert "has no resume for its session" in line and "--fresh" in line
    argv_log.unlink()
    r = cli("resume", a, "--fresh", cwd=git_repo, env=env)
    assert r.returncode == 0, r.stderr
    wait_for(argv_log.exists, 20)
    assert argv_log.read_text().splitlines()[-1] == "do the thing"  # its task, again


# ---- budget stop -> resume with a raised budget ----------------------------------------------
def test_a_budget_stop_is_resumed_with_a_raised_budget(
    cli: Cli, git_repo: Path, autostart: Path
) -> None:
    config(autostart, "[limits]\nmax_cost_usd = 10.0\n")
    a = spawn(cli, git_repo, "sleep 300")  # its supervisor enforces the budget
    store().emit(a, "usage", tokens_in=900_000, tokens_out=500_000, cost_usd=12.345)
    wait_for(lambda: get(a).state is State.FAILED, 30)
    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    assert "over budget: $12.35 > $10.00" in inbox[0]["why"]
    assert "--budget" in inbox[0]["why"]
    line = refused(cli, git_repo, a)
    assert "stopped at its budget" in line and "--budget USD" in line and "$12.35" in line
    line = refused(cli, git_repo, a, "--budget", "12")  # not above what it spent
    assert "above $12.35" in line
    r = cli("resume", a, "--budget", "20", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: get(a).state is State.WORKING, 20)
    assert get(a).extra["max_cost_usd"] == 20.0
    # Under its own new limit it keeps working; past it, it is paused again.
    store().emit(a, "usage", tokens_in=1_000_000, tokens_out=600_000, cost_usd=15.0)
    time.sleep(2)
    assert get(a).state is State.WORKING
    store().emit(a, "usage", tokens_in=2_000_000, tokens_out=900_000, cost_usd=21.0)
    wait_for(lambda: get(a).state is State.FAILED, 30)
    assert get(a).cause == "over budget: $21.00 > $20.00"


# ---- auto_resume ------------------------------------------------------------------------------
def test_auto_resume_resumes_interrupted_agents_when_a_supervisor_starts(
    cli: Cli, git_repo: Path, autostart: Path
) -> None:
    from mullui import watch
    from mullui.workspace import Workspace
    from tests.conftest import stop_supervisor

    config(autostart, "[limits]\nauto_resume = true\n")
    a = spawn(cli, git_repo, "sleep 300")
    b = spawn(cli, git_repo, "sleep 300")
    assert cli("stop", b, cwd=git_repo).returncode == 0  # stopped by the user: stays so
    # A reboot: the tmux server and the supervisor are gone.
    stop_supervisor(autostart / "state")
    kill_tmux()
    assert by_id(cli, git_repo)[a]["interrupted"] is True
    watch.ensure_running(Workspace(cwd=git_repo))
    try:
        wait_for(lambda: get(a).state is State.WORKING, 30)
    except AssertionError:
        sock = os.environ["MULLUI_TMUX_SOCKET"]
        sup = subprocess.run(
            ["tmux", "-L", sock, "capture-pane", "-p", "-t", "mullui-supervisor"],
            capture_output=True,
            text=True,
        )
        raise AssertionError(f"{get(a).cause}; supervisor: {sup.stdout}{sup.stderr}") from None
    assert ("starting", "resume:after-restart") in history(a)
    assert get(b).state is State.STOPPED


def test_resume_needs_ids_or_all(cli: Cli, git_repo: Path) -> None:
    r = cli("resume", cwd=git_repo)
    assert r.returncode == 2 and "resume needs agent IDs or --all" in r.stderr
    r = cli("resume", "--all", cwd=git_repo)
    assert r.returncode == 0 and "no interrupted agents" in r.stdout


def test_resume_is_in_the_help(cli: Cli) -> None:
    top = cli("--help").stdout
    assert "resume" in top and "interrupted" in top
    own = cli("resume", "--help").stdout
    for flag in ("--all", "--prompt", "--budget", "--fresh", "--recreate"):
        assert flag in own


def test_two_resumes_at_once_start_one_window(cli: Cli, git_repo: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    a = spawn(cli, git_repo, "sleep 300")
    assert cli("stop", a, cwd=git_repo).returncode == 0
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda _: cli("resume", a, cwd=git_repo), range(2)))
    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    (refusal,) = [r.stderr for r in results if r.returncode == 1]
    assert "still running" in refusal or "changed while resuming" in refusal
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    panes = subprocess.run(
        ["tmux", "-L", sock, "list-panes", "-a", "-F", "#{@mullui_agent} #{pane_dead}"],
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert panes.count(f"{a} 0") == 1  # one live window for the agent
