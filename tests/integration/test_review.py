"""``mullui merge`` on real git repositories with real shell agents: a clean merge lands
whole and marks the item handled; every refusal names the files and leaves the target
exactly as it was."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mullui.model import State
from tests.conftest import git
from tests.integration.test_queue import get
from tests.support.agents import spawn, wait_state

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _identity(git_repo: Path) -> None:
    git(git_repo, "config", "user.name", "mullui-test")
    git(git_repo, "config", "user.email", "test@mullui.invalid")


def snapshot(repo: Path) -> tuple[str, str, str, list[str]]:
    """Everything a refused merge must leave alone: refs, index, files, merge state."""
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    status = git(repo, "status", "--porcelain=v1", "--untracked-files=all")
    files = sorted(
        str(p.relative_to(repo)) + "=" + p.read_text()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    merge_state = [
        n for n in ("MERGE_HEAD", "MERGE_MSG", "AUTO_MERGE") if (repo / ".git" / n).exists()
    ]
    return refs, status, "\n".join(files), merge_state


def agent_that_commits(cli: Cli, repo: Path, files: dict[str, str], *extra: str) -> str:
    writes = "; ".join(f"printf '%s\\n' {body!r} > {name}" for name, body in files.items())
    a = spawn(cli, repo, f"{writes}; git add -A; git commit -qm agent-work", *extra)
    wait_state(a, State.DONE)
    return a


def test_merge_of_a_clean_branch_lands_and_marks_the_item_handled(cli: Cli, git_repo: Path) -> None:
    a = agent_that_commits(cli, git_repo, {"feature.txt": "new feature"})
    before = git(git_repo, "rev-parse", "main").strip()
    assert [i["id"] for i in json.loads(cli("inbox", "--json", cwd=git_repo).stdout)] == [a]

    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"merged {get(a).name} ({get(a).branch}) into main as ")
    head = git(git_repo, "rev-parse", "main").strip()
    parents = git(git_repo, "rev-list", "--parents", "-n1", head).split()[1:]
    assert parents == [before, git(git_repo, "rev-parse", get(a).branch or "").strip()]
    assert (git_repo / "feature.txt").read_text() == "new feature\n"  # checked-out target
    assert git(git_repo, "status", "--porcelain") == ""
    assert f"agent {get(a).name} ({a}, shell)" in git(git_repo, "log", "-1", "--format=%B")

    merged = get(a)
    assert merged.merged_into == "main" and merged.merged_sha == head
    assert json.loads(cli("inbox", "--json", cwd=git_repo).stdout) == []
    # The work is on main now: the worktree can go without --force.
    r = cli("rm", a, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert not Path(merged.worktree or "").exists()
    # A second merge says so instead of making an empty merge commit.
    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 1 and "already merged into main" in r.stderr


def test_a_conflict_is_refused_naming_the_files_and_the_target_is_untouched(
    cli: Cli, git_repo: Path
) -> None:
    (git_repo / "notes.txt").write_text("base\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "notes")
    a = agent_that_commits(
        cli, git_repo, {"README.md": "agent readme", "notes.txt": "agent", "ok.txt": "fine"}
    )
    (git_repo / "README.md").write_text("human readme\n")
    (git_repo / "notes.txt").write_text("human\n")
    git(git_repo, "commit", "-qam", "human edits")
    before = snapshot(git_repo)

    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 1
    assert "would conflict in README.md, notes.txt; nothing was changed" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert snapshot(git_repo) == before
    assert get(a).merged_into is None and get(a).state is State.DONE


def test_a_dirty_target_is_refused_naming_the_files(cli: Cli, git_repo: Path) -> None:
    a = agent_that_commits(cli, git_repo, {"feature.txt": "x"})
    (git_repo / "README.md").write_text("half-done human edit\n")
    before = snapshot(git_repo)
    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 1
    assert "main is checked out in" in r.stderr
    assert "with uncommitted changes in README.md" in r.stderr
    assert snapshot(git_repo) == before


def test_an_untracked_file_the_merge_would_overwrite_is_refused(cli: Cli, git_repo: Path) -> None:
    a = agent_that_commits(cli, git_repo, {"gen.txt": "agent's"})
    (git_repo / "gen.txt").write_text("human's, not committed\n")
    before = snapshot(git_repo)
    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 1 and "would be overwritten by the merge: gen.txt" in r.stderr
    assert snapshot(git_repo) == before


def test_uncommitted_work_in_the_agents_worktree_is_refused(cli: Cli, git_repo: Path) -> None:
    a = spawn(
        cli,
        git_repo,
        "echo a > committed.txt; git add -A; git commit -qm a; echo b > forgotten.txt",
    )
    wait_state(a, State.DONE)
    before = snapshot(git_repo)
    r = cli("merge", a, cwd=git_repo)
    assert r.returncode == 1
    assert "work is uncommitted: forgotten.txt" in r.stderr
    assert "mullui merge --commit" in r.stderr
    assert snapshot(git_repo) == before


def test_merge_into_a_branch_checked_out_nowhere_moves_only_that_branch(
    cli: Cli, git_repo: Path
) -> None:
    git(git_repo, "branch", "release")
    a = agent_that_commits(cli, git_repo, {"fix.txt": "fix"})
    main_before = git(git_repo, "rev-parse", "main").strip()
    rel_before = git(git_repo, "rev-parse", "release").strip()
    r = cli("merge", a, "--into", "release", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    rel = git(git_repo, "rev-parse", "release").strip()
    assert git(git_repo, "rev-list", "--parents", "-n1", rel).split()[1] == rel_before
    assert git(git_repo, "show", "release:fix.txt") == "fix\n"
    assert git(git_repo, "rev-parse", "main").strip() == main_before
    assert not (git_repo / "fix.txt").exists()
    assert get(a).merged_into == "release"


def test_merge_refuses_a_running_agent_and_a_branch_with_nothing_new(
    cli: Cli, git_repo: Path
) -> None:
    busy = spawn(cli, git_repo, "echo x > x.txt; git add -A; git commit -qm x; sleep 30")

    def committed() -> bool:
        branch = get(busy).branch
        return bool(branch) and git(git_repo, "rev-list", "--count", f"main..{branch}") == "1\n"

    from tests.conftest import wait_for

    wait_for(committed)
    r = cli("merge", busy, cwd=git_repo)
    assert r.returncode == 1 and "is still working" in r.stderr
    idle = spawn(cli, git_repo, "true")
    wait_state(idle, State.DONE)
    r = cli("merge", idle, cwd=git_repo)
    assert r.returncode == 1 and "nothing to merge" in r.stderr and "mullui ack" in r.stderr
    r = cli("merge", idle, "--into", "nope", cwd=git_repo)
    assert r.returncode == 1 and "'nope' is not a local branch" in r.stderr
