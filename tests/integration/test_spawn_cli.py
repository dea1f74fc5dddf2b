"""`mullui spawn` end to end: real tmux on a private socket, real git worktrees."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from tests.conftest import git, ls_json, wait_for
from tests.support.agents import agent_row as agent
from tests.support.agents import spawn


def ended_after_launch(cli, repo: Path, aid: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds from the agent's launch (``working``) to its end, by its record's history."""
    home = Path(os.environ["MULLUI_HOME"])
    hist = json.loads((home / "state" / "agents" / f"{aid}.json").read_text())["history"]
    at = {t["state"]: datetime.fromisoformat(t["at"].replace("Z", "+00:00")) for t in hist}
    end = at.get("done") or at["failed"]
    # An exit read before spawn recorded `working` goes from `starting` to its end.
    return (end - at.get("working", at["starting"])).total_seconds()


def test_exit_codes_become_done_and_failed_fast(cli, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    ok = spawn(cli, git_repo, "echo out-of-$((40+2))", "--name", "ok")
    bad = spawn(cli, git_repo, "exit 3", "--name", "bad")
    wait_for(lambda: agent(cli, git_repo, bad)["state"] == "failed", timeout=30)
    a = agent(cli, git_repo, bad)
    assert a["exit_code"] == 3 and a["cause"] == "exit:3"
    wait_for(lambda: agent(cli, git_repo, ok)["state"] == "done", timeout=30)
    # Fast: the end is dated by tmux's pane-died hook, not by whoever read it later (a
    # loaded machine makes each `ls` above slow; the record's own times are not).
    for aid in (ok, bad):
        assert ended_after_launch(cli, git_repo, aid) < 3
    a = agent(cli, git_repo, ok)
    assert a["exit_code"] == 0 and a["branch"].startswith("mullui/ok-")
    assert Path(a["worktree"]).is_dir() and not Path(a["worktree"]).is_relative_to(git_repo)
    logs = cli("logs", ok, cwd=git_repo)
    assert "out-of-42" in logs.stdout


def test_send_reaches_the_pane_byte_for_byte(cli, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    aid = spawn(cli, git_repo, 'IFS= read -r line; printf %s "$line" > got.txt', "--name", "reader")
    text = 'it\'s "quoted" $(touch PWNED) `id` ; | & > ü ☃'
    wt = Path(agent(cli, git_repo, aid)["worktree"])
    time.sleep(0.3)
    r = cli("send", aid, text, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: agent(cli, git_repo, aid)["state"] == "done", timeout=5)
    assert (wt / "got.txt").read_text() == text
    assert not (wt / "PWNED").exists()


def test_hostile_task_and_name_execute_nothing(  # type: ignore[no-untyped-def]
    cli, git_repo: Path, tmp_path: Path, mullui_home: Path
) -> None:
    marker = tmp_path / "X"
    hostile = f"$(touch {marker}) `touch {marker}` 'q' \"dq\" ; | & > ü ☃ " + "z" * 10_000
    (mullui_home / "config.toml").write_text(
        '[profiles.echoer]\ncommand = ["python3", "-c", '
        "\"import sys; open('task.txt', 'w').write(sys.argv[1])\", \"{task}\"]\n"
    )
    r = cli(
        "spawn",
        "--agent",
        "echoer",
        "--name",
        f"n $(touch {marker}) `x` ;|&>",
        hostile,
        cwd=git_repo,
    )
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    wait_for(lambda: agent(cli, git_repo, aid)["state"] == "done", timeout=10)
    a = agent(cli, git_repo, aid)
    assert (Path(a["worktree"]) / "task.txt").read_text() == hostile
    assert a["task"] == hostile
    assert not marker.exists()


def test_rm_refuses_then_force_keeps_the_work(cli, git_repo: Path) -> None:  # type: ignore[no-untyped-def]
    aid = spawn(cli, git_repo, "echo precious > work.txt", "--name", "writer")
    wait_for(lambda: agent(cli, git_repo, aid)["state"] == "done", timeout=5)
    a = agent(cli, git_repo, aid)
    r = cli("rm", aid, cwd=git_repo)
    assert r.returncode == 1 and "work.txt" in r.stderr and "Traceback" not in r.stderr
    assert Path(a["worktree"], "work.txt").exists()
    r = cli("rm", aid, "--force", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert not Path(a["worktree"]).exists()
    assert git(git_repo, "show", f"{a['branch']}:work.txt") == "precious\n"


def test_twenty_parallel_spawns(cli, git_repo: Path, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    (mullui_home / "config.toml").write_text("[limits]\nmax_running = 20\n")

    def one(i: int) -> subprocess.CompletedProcess[str]:
        # Long enough that none has ended when `ls` runs on a loaded machine (the tmux
        # server is killed with the test).
        return cli("spawn", "--agent", "shell", "--name", f"p{i}", "sleep 300", cwd=git_repo)

    with ThreadPoolExecutor(20) as ex:
        results = list(ex.map(one, range(20)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    agents = ls_json(cli, git_repo)
    assert len(agents) == 20 and {a["state"] for a in agents} == {"working"}
    assert len({a["worktree"] for a in agents}) == 20
    wts = git(git_repo, "worktree", "list", "--porcelain").count("worktree ")
    assert wts == 21


def test_killing_tmux_server_fails_agents_keeps_worktrees(
    cli, git_repo: Path, mullui_home: Path
) -> None:  # type: ignore[no-untyped-def]
    import os

    aid = spawn(cli, git_repo, "echo keep > w.txt; sleep 60", "--name", "victim")
    wait_for(lambda: Path(agent(cli, git_repo, aid)["worktree"], "w.txt").exists(), timeout=5)
    subprocess.run(["tmux", "-L", os.environ["MULLUI_TMUX_SOCKET"], "kill-server"], check=True)
    a = agent(cli, git_repo, aid)
    assert a["state"] == "failed" and "tmux" in a["cause"]
    assert Path(a["worktree"], "w.txt").read_text() == "keep\n"


def test_clear_errors_leave_nothing_behind(cli, git_repo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("spawn", "--agent", "shell", "true", cwd=tmp_path)
    assert r.returncode == 1 and "not a git repository" in r.stderr
    r = cli("spawn", "--agent", "shell", "--base", "nope", "true", cwd=git_repo)
    assert r.returncode == 1 and "nope" in r.stderr and r.stderr.count("\n") == 1
    spawn(cli, git_repo, "sleep 5", "--name", "taken")
    r = cli("spawn", "--agent", "shell", "--name", "taken", "true", cwd=git_repo)
    assert r.returncode == 1 and "taken" in r.stderr
    assert len(ls_json(cli, git_repo)) == 1
    # A detached HEAD is no longer refused: the agent starts from its commit, and says so
    # (tests/integration/test_real_repos.py).
    assert "mullui/" not in git(git_repo, "branch", "--list").replace("mullui/taken", "")
