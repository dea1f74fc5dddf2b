"""Agents folded into the history (``[limits] history_after_s``) while their worktree or
branch is still on disk stay within mullui's reach: ``rm`` (saving uncommitted work just
as for a live agent), ``merge``, ``ack`` and ``resume`` bring them back and act; ``diff``
and ``logs`` read them where they are; one with nothing left on disk is refused in one
line saying what is kept.  Real git repositories, real tmux, real shell agents."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui.model import State
from mullui.workspace import Workspace
from tests.conftest import git
from tests.support.agents import ls_json, spawn, wait_for, wait_state

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _identity_and_short_history(git_repo: Path, mullui_home: Path) -> None:
    git(git_repo, "config", "user.name", "mullui-test")
    git(git_repo, "config", "user.email", "test@mullui.invalid")
    # Finished agents leave the live store one second after they finished.
    (mullui_home / "config.toml").write_text("[limits]\nhistory_after_s = 1\n")


def live_ids(cli: Cli, repo: Path) -> list[str]:
    return [r["id"] for r in ls_json(cli, repo)]


def all_rows(cli: Cli, repo: Path, agent_id: str) -> list[dict[str, Any]]:
    r = cli("ls", "--all", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    return [x for x in json.loads(r.stdout) if x["id"] == agent_id]


def folded(cli: Cli, repo: Path, agent_id: str) -> None:
    """Wait until ``mullui ls`` no longer lists the agent (it folds what is due) while
    ``ls --all`` does, once."""
    wait_for(lambda: agent_id not in live_ids(cli, repo), timeout=20, what=f"{agent_id} folded")
    assert len(all_rows(cli, repo, agent_id)) == 1


def finished(cli: Cli, repo: Path, task: str, state: State = State.DONE) -> tuple[str, Any]:
    a = spawn(cli, repo, task)
    rec = wait_state(a, state, timeout=30)
    folded(cli, repo, a)
    return a, rec


def test_rm_of_a_folded_agent_refuses_then_saves_its_work_like_a_live_ones(
    cli: Cli, git_repo: Path
) -> None:
    a, rec = finished(cli, git_repo, "printf 'draft\\n' > notes.txt")
    wt = Path(rec.worktree)
    assert (wt / "notes.txt").read_text() == "draft\n"

    r = cli("rm", a, cwd=git_repo)
    assert r.returncode == 1
    assert "no agent" not in r.stderr and "notes.txt" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (wt / "notes.txt").read_text() == "draft\n"  # refused: nothing touched
    assert a in live_ids(cli, git_repo)  # it came back: the user sees what was refused
    assert len(all_rows(cli, git_repo, a)) == 1

    r = cli("rm", "--force", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "saved uncommitted work" in r.stdout
    assert not wt.exists()
    assert git(git_repo, "show", f"{rec.branch}:notes.txt") == "draft\n"  # no work lost
    # Removed: back in the history at once, with the line of now (one line, not two).
    assert a not in live_ids(cli, git_repo)
    rows = [x for x in json.loads(cli("report", "--json").stdout)["agents"] if x["id"] == a]
    assert len(rows) == 1
    assert len(all_rows(cli, git_repo, a)) == 1


def test_diff_reads_a_folded_agent_in_place_and_merge_brings_it_back(
    cli: Cli, git_repo: Path
) -> None:
    a, rec = finished(
        cli, git_repo, "printf 'new feature\\n' > feature.txt; git add -A; git commit -qm work"
    )
    # The TUI's `d` (there is no `mullui diff`): the workspace it calls, in-process.
    assert "+new feature" in Workspace(cwd=git_repo).diff(a, color=False)
    assert a not in live_ids(cli, git_repo)  # a read leaves it in the history

    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert git(git_repo, "show", "main:feature.txt") == "new feature\n"
    # Merged, its worktree still on disk: live again until `rm` (as after any merge).
    row = next(x for x in ls_json(cli, git_repo) if x["id"] == a)
    assert row["worktree"] == rec.worktree
    assert cli("rm", a, cwd=git_repo).returncode == 0
    folded(cli, git_repo, a)
    rep = [x for x in json.loads(cli("report", "--json").stdout)["agents"] if x["id"] == a]
    assert len(rep) == 1 and rep[0]["merged"] is True  # the ledger line of now, not the old


def report_row(cli: Cli, agent_id: str) -> dict[str, Any]:
    r = cli("report", "--json")
    assert r.returncode == 0, r.stderr
    rows = [x for x in json.loads(r.stdout)["agents"] if x["id"] == agent_id]
    assert len(rows) == 1, rows
    return rows[0]


def test_ack_of_a_folded_agent_is_recorded(cli: Cli, git_repo: Path) -> None:
    a, _ = finished(cli, git_repo, "printf 'x\\n' > x.txt; git add -A; git commit -qm x")
    assert report_row(cli, a)["awaiting_review"] is True
    r = cli("ack", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "handled" in r.stdout
    assert "not merged" in r.stderr, r.stderr  # its unmerged commit is said, never hidden
    assert report_row(cli, a)["awaiting_review"] is False


def test_logs_of_a_folded_agent(cli: Cli, git_repo: Path, mullui_home: Path) -> None:
    a, _ = finished(cli, git_repo, "echo hello-from-the-past")
    r = cli("logs", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "hello-from-the-past" in r.stdout
    assert a not in live_ids(cli, git_repo)  # read in place

    (mullui_home / "state" / "history" / f"{a}.log").unlink()
    r = cli("logs", a, cwd=git_repo)
    assert r.returncode == 1 and r.stdout == ""
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "in the history" in line, line
    assert "no output log was kept" in line and "ls --all" in line and "Traceback" not in line


def test_resume_of_a_folded_failed_agent_continues_it_in_its_worktree(
    cli: Cli, git_repo: Path
) -> None:
    a, rec = finished(cli, git_repo, "test -f go || exit 3; echo resumed-ok", State.FAILED)
    (Path(rec.worktree) / "go").write_text("")
    r = cli("resume", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert f"resumed in {rec.worktree}" in r.stdout
    wait_state(a, State.DONE, timeout=30)
    assert a in live_ids(cli, git_repo)
    assert len(all_rows(cli, git_repo, a)) == 1  # live, not also in the history
    assert "resumed-ok" in cli("logs", a, cwd=git_repo).stdout


def test_resume_of_a_folded_done_agent_is_refused_and_it_stays_in_the_history(
    cli: Cli, git_repo: Path
) -> None:
    a, rec = finished(cli, git_repo, "true")
    r = cli("resume", a, cwd=git_repo)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "in the history" in line, line
    assert "nothing to resume" in line and f"--base {rec.branch}" in line
    assert a not in live_ids(cli, git_repo)


def test_a_folded_agent_with_nothing_left_on_disk_is_refused_in_one_line(
    cli: Cli, git_repo: Path
) -> None:
    a, rec = finished(cli, git_repo, "echo bye")
    subprocess.run(["git", "worktree", "unlock", rec.worktree], cwd=git_repo, check=False)
    shutil.rmtree(rec.worktree)
    git(git_repo, "worktree", "prune")
    git(git_repo, "branch", "-D", rec.branch)
    for argv in (("rm", a), ("merge", a), ("ack", a), ("resume", a)):
        r = cli(*argv, cwd=git_repo)
        assert r.returncode == 1, argv
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line, (argv, r.stderr)
        assert "in the history" in line, (argv, line)
    assert "worktree and branch are gone" in cli("rm", a, cwd=git_repo).stderr
    assert a not in live_ids(cli, git_repo)
    assert cli("rm", "nosuchagent", cwd=git_repo).stderr.startswith("mullui: no agent")


def test_ls_all_still_lists_a_folded_agent_an_event_reached_after_its_fold(
    cli: Cli, git_repo: Path
) -> None:
    # An event written for the agent after its fold (a command that loaded it just before
    # the fold took it; see test_ledger's late hook) makes a spool of its own: no agent
    # loads from it, so `ls` does not list it - and `ls --all` must still show its line.
    from mullui.events import append_event, new_event
    from mullui.paths import get_paths

    a, _ = finished(cli, git_repo, "echo hi")
    append_event(get_paths(), a, new_event("ack"))
    assert a not in live_ids(cli, git_repo)
    assert len(all_rows(cli, git_repo, a)) == 1
    assert report_row(cli, a)["id"] == a
    assert cli("ack", a, cwd=git_repo).returncode == 0  # brought back, that event with it
    assert a in live_ids(cli, git_repo) and len(all_rows(cli, git_repo, a)) == 1


def test_an_agent_whose_window_still_runs_is_not_folded_for_its_age(
    cli: Cli, git_repo: Path
) -> None:
    """A CLI idle at its prompt for weeks (done, its window open) is not history: its next
    hook must be seen.  Once its window is gone it folds as any finished agent."""
    from mullui.paths import get_paths, tmux_socket
    from mullui.store import Store

    a = spawn(cli, git_repo, "sleep 600")
    rec = wait_state(a, State.WORKING, timeout=30)
    Store(get_paths()).emit(a, "state", state="done", cause="hook:Stop")  # as a Stop hook
    wait_for(lambda: Store(get_paths()).load(a).state is State.DONE, timeout=10)
    import time

    time.sleep(2.5)  # past history_after_s = 1
    assert a in live_ids(cli, git_repo) and a in live_ids(cli, git_repo)
    subprocess.run(["tmux", "-L", tmux_socket(), "kill-window", "-t", str(rec.tmux_target)],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    folded(cli, git_repo, a)
