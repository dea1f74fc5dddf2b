"""mullui.runtime.worktrees against real git repositories."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mullui.errors import MulluiError
from mullui.runtime import worktrees
from tests.support.gitrepo import commit_file, git, make_repo
from tests.support.missing import missing


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "project", {"README.md": "# p\n", "src/app.py": "x = 1\n"})


@pytest.fixture
def wt_dir(tmp_path: Path) -> Path:
    return tmp_path / "worktrees"


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def registered(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("worktree ")]


def test_repo_root_is_the_main_checkout_even_from_a_linked_worktree(
    repo: Path, wt_dir: Path, tmp_path: Path
) -> None:
    assert worktrees.repo_root(repo / "src") == repo
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    assert worktrees.repo_root(wt.path) == repo
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(MulluiError, match="not a git repository: .*run mullui inside"):
        worktrees.repo_root(outside)


def test_current_branch_and_detached_head(repo: Path) -> None:
    assert worktrees.current_branch(repo) == "main"
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(MulluiError, match="detached HEAD .*--base REF"):
        worktrees.current_branch(repo)


def test_resolve_ref(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    assert worktrees.resolve_ref(repo, "main") == head
    assert worktrees.resolve_ref(repo, head[:8]) == head
    for bad in ("nope", "--all", ""):
        with pytest.raises(MulluiError, match="base ref .* not found"):
            worktrees.resolve_ref(repo, bad)


def test_create_checks_out_a_new_branch_at_base(repo: Path, wt_dir: Path) -> None:
    base_sha = git(repo, "rev-parse", "HEAD").strip()
    commit_file(repo, "later.txt", "later\n")
    lines: list[str] = []
    wt = worktrees.create(repo, wt_dir, "fix-login", "a1b2", base_sha, progress=lines.append)
    assert wt.branch == "mullui/fix-login-a1b2"
    assert wt.base == base_sha and wt.base_sha == base_sha
    digest = hashlib.sha1(str(repo.resolve()).encode()).hexdigest()[:8]
    assert wt.path == wt_dir / f"project-{digest}" / "fix-login-a1b2"
    assert (wt.path / "src" / "app.py").read_text() == "x = 1\n"
    assert not (wt.path / "later.txt").exists()
    assert git(wt.path, "symbolic-ref", "--short", "HEAD").strip() == wt.branch
    assert git(wt.path, "status", "--porcelain") == ""
    # --no-track: the agent's branch does not follow its base
    assert "branch.mullui/" not in git(repo, "config", "--list", "--local")
    assert any("creating branch" in ln for ln in lines)


def test_create_reports_checkout_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # git shows checkout progress only after 2 s; a big repository takes that long, a
    # test repository must not, so the delay is lifted.
    monkeypatch.setenv("GIT_PROGRESS_DELAY", "0")
    big = make_repo(tmp_path / "big", {f"d{i % 10}/f{i}.txt": f"{i}\n" for i in range(300)})
    lines: list[str] = []
    wt = worktrees.create(big, tmp_path / "wts", "big", "b1", "main", progress=lines.append)
    assert len(list((wt.path / "d3").iterdir())) == 30
    assert any(ln.startswith("Updating files:") and "(300/300)" in ln for ln in lines), lines


def test_bad_base_leaves_nothing_behind(repo: Path, wt_dir: Path) -> None:
    with pytest.raises(MulluiError, match="base ref 'no-such-ref' not found"):
        worktrees.create(repo, wt_dir, "fix", "a1", "no-such-ref")
    assert branches(repo) == ["main"]
    assert registered(repo) == [str(repo)]
    assert not wt_dir.exists() or not any(wt_dir.rglob("fix-a1"))


def test_a_failed_checkout_removes_directory_branch_and_registration(
    repo: Path, wt_dir: Path
) -> None:
    # A post-checkout hook that fails makes `git checkout` fail after the worktree and
    # the branch exist: the undo path must take both away.
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(MulluiError, match="hook says no"):
        worktrees.create(repo, wt_dir, "fix", "a1", "main")
    assert branches(repo) == ["main"]
    assert registered(repo) == [str(repo)]
    assert not any(wt_dir.rglob("fix-a1"))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 KB tmpfs: a real full disk.  Needs root and mount rights (skipped if not)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
        capture_output=True, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        missing("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_says_so_and_leaves_nothing_behind(tmp_path: Path, tiny_disk: Path) -> None:
    repo = make_repo(tmp_path / "r", {f"f{i}.txt": "x" * 20_000 + str(i) for i in range(40)})
    with pytest.raises(MulluiError, match="no space left on device .* free disk space"):
        worktrees.create(repo, tiny_disk / "wts", "big", "b1", "main")
    assert branches(repo) == ["main"]
    assert registered(repo) == [str(repo)]
    assert list((tiny_disk / "wts").iterdir()) == []


@pytest.mark.parametrize("slug", ["../escape", "a/b", "", "-x", "a b", "x.lock/.."])
def test_names_that_would_escape_or_break_the_path_are_refused(
    repo: Path, wt_dir: Path, slug: str
) -> None:
    with pytest.raises(MulluiError, match="cannot name a worktree"):
        worktrees.create(repo, wt_dir, slug, "a1", "main")
    assert branches(repo) == ["main"]


def test_discard_takes_back_a_fresh_worktree_and_its_branch(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    worktrees.lock(repo, wt.path, "agent")
    worktrees.discard(repo, wt)
    assert branches(repo) == ["main"]
    assert registered(repo) == [str(repo)]
    assert not wt.path.exists()


def test_an_existing_branch_is_refused_and_kept(repo: Path, wt_dir: Path) -> None:
    git(repo, "branch", "mullui/fix-a1")
    with pytest.raises(MulluiError, match="already exists"):
        worktrees.create(repo, wt_dir, "fix", "a1", "main")
    assert "mullui/fix-a1" in branches(repo)


CREATE = (
    "import sys; from pathlib import Path; from mullui.runtime import worktrees; "
    "print(worktrees.create(Path(sys.argv[1]), Path(sys.argv[2]), 'par', sys.argv[3], 'main').path)"
)


def test_twenty_parallel_creates_in_threads_all_succeed(repo: Path, wt_dir: Path) -> None:
    results: list[worktrees.Worktree] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results.append(worktrees.create(repo, wt_dir, "par", f"t{i}", "main"))
        except BaseException as e:  # noqa: BLE001 - asserted below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"20 parallel creates (threads): {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert errors == []
    assert len(registered(repo)) == 21
    assert all((w.path / "README.md").exists() for w in results)


def test_twenty_parallel_creates_in_processes_all_succeed(repo: Path, wt_dir: Path) -> None:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE, str(repo), str(wt_dir), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(20)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    print(f"20 parallel creates (processes): {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert [p.returncode for p in procs] == [0] * 20, [err for _, err in outs]
    paths = [out.strip() for out, _ in outs]
    assert len(set(paths)) == 20
    assert len(registered(repo)) == 21
    assert sorted(b for b in branches(repo) if b.startswith("mullui/")) == sorted(
        f"mullui/par-p{i}" for i in range(20)
    )


def test_lock_and_unlock_are_idempotent(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    worktrees.lock(repo, wt.path, "mullui agent a1")
    worktrees.lock(repo, wt.path, "mullui agent a1")
    out = git(repo, "worktree", "list", "--porcelain")
    assert "locked mullui agent a1" in out
    # a locked worktree survives git's own prune even when its directory is gone
    worktrees.unlock(repo, wt.path)
    worktrees.unlock(repo, wt.path)
    assert "locked" not in git(repo, "worktree", "list", "--porcelain")


def test_safety_sees_uncommitted_untracked_and_unique_commits(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    assert worktrees.safety(repo, wt.path, wt.branch).safe
    (wt.path / "src" / "app.py").write_text("x = 2\n")
    (wt.path / "new dir").mkdir()
    (wt.path / "new dir" / "notes ü.txt").write_text("n\n")
    (wt.path / ".gitignore").write_text("*.log\n")
    (wt.path / "debug.log").write_text("ignored\n")
    s = worktrees.safety(repo, wt.path, wt.branch)
    assert sorted(s.uncommitted) == [".gitignore", "new dir/notes ü.txt", "src/app.py"]
    assert s.unique_commits == []
    git(wt.path, "add", "-A")
    git(wt.path, "commit", "-qm", "work")
    git(wt.path, "mv", "README.md", "READ.md")
    s = worktrees.safety(repo, wt.path, wt.branch)
    assert s.uncommitted == ["READ.md"]
    assert len(s.unique_commits) == 1
    # once another branch holds the commit it is no longer unique
    git(repo, "branch", "keep", wt.branch)
    assert worktrees.safety(repo, wt.path, wt.branch).unique_commits == []


def test_rm_refuses_uncommitted_work_naming_the_files(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    (wt.path / "draft.txt").write_text("draft\n")
    with pytest.raises(MulluiError) as e:
        worktrees.remove(repo, wt.path, wt.branch, force=False, agent_name="fixer")
    assert "draft.txt" in e.value.message
    assert f"--force commits uncommitted work to {wt.branch} first; the branch is kept" in (
        e.value.message
    )
    assert (wt.path / "draft.txt").exists()


def test_rm_refuses_unique_commits_saying_how_many(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    commit_file(wt.path, "a.txt", "a\n")
    commit_file(wt.path, "b.txt", "b\n")
    with pytest.raises(MulluiError, match="2 commits on no other branch"):
        worktrees.remove(repo, wt.path, wt.branch, force=False, agent_name="fixer")
    assert wt.path.exists()


def test_rm_of_a_clean_worktree_keeps_the_branch(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    worktrees.lock(repo, wt.path, "agent")
    assert worktrees.remove(repo, wt.path, wt.branch, force=False, agent_name="fixer") is None
    assert not wt.path.exists()
    assert registered(repo) == [str(repo)]
    assert wt.branch in branches(repo)


def test_rm_force_commits_the_work_to_the_branch_which_stays(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    worktrees.lock(repo, wt.path, "agent")
    (wt.path / "src" / "app.py").write_text("x = 3\n")
    (wt.path / "new.txt").write_text("new\n")
    (wt.path / ".gitignore").write_text("*.log\n")
    (wt.path / "build.log").write_text("noise\n")
    sha = worktrees.remove(repo, wt.path, wt.branch, force=True, agent_name="fixer")
    assert sha is not None
    assert not wt.path.exists() and registered(repo) == [str(repo)]
    assert git(repo, "rev-parse", wt.branch).strip() == sha
    assert git(repo, "show", f"{wt.branch}:new.txt") == "new\n"
    assert git(repo, "show", f"{wt.branch}:src/app.py") == "x = 3\n"
    files = git(repo, "ls-tree", "-r", "--name-only", wt.branch).split()
    assert "build.log" not in files  # .gitignore respected
    msg = git(repo, "log", "-1", "--format=%s", wt.branch).strip()
    assert msg == "mullui: save uncommitted work of fixer before removal"


def test_rm_force_without_a_git_identity_commits_as_mullui(
    repo: Path, wt_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gitconfig
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("EMAIL", "")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    (wt.path / "x.txt").write_text("x\n")
    sha = worktrees.remove(repo, wt.path, wt.branch, force=True, agent_name="fixer")
    assert sha
    author = git(repo, "log", "-1", "--format=%an <%ae>", wt.branch).strip()
    assert author == "mullui <mullui@localhost>"


def test_rm_of_a_worktree_deleted_by_hand_prunes_it(repo: Path, wt_dir: Path) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    worktrees.lock(repo, wt.path, "agent")  # locked: git's prune alone would skip it
    subprocess.run(["rm", "-rf", str(wt.path)], check=True)
    assert worktrees.remove(repo, wt.path, wt.branch, force=False, agent_name="fixer") is None
    assert registered(repo) == [str(repo)]
    assert wt.branch in branches(repo)


def test_diff_shows_committed_uncommitted_and_untracked_without_touching_the_index(
    repo: Path, wt_dir: Path
) -> None:
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    commit_file(wt.path, "committed.txt", "committed\n")
    (wt.path / "src" / "app.py").write_text("x = 42\n")
    (wt.path / "untracked ü.txt").write_text("brand new\n")
    commit_file(repo, "on-main.txt", "main moved on\n")  # not the agent's change
    index = Path(git(wt.path, "rev-parse", "--path-format=absolute", "--git-path", "index").strip())
    before = (index.read_bytes(), git(wt.path, "status", "--porcelain", "-uall"))
    out = worktrees.diff(repo, "main", wt.path, color=False)
    assert "+committed" in out
    assert "-x = 1" in out and "+x = 42" in out
    assert "untracked ü.txt" in out and "+brand new" in out
    assert "on-main.txt" not in out
    after = (index.read_bytes(), git(wt.path, "status", "--porcelain", "-uall"))
    assert after == before
    assert "\x1b[" in worktrees.diff(repo, "main", wt.path, color=True)


def test_diff_leaves_a_split_index_worktree_untouched(repo: Path, wt_dir: Path) -> None:
    git(repo, "config", "core.splitIndex", "true")
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    git(wt.path, "update-index", "--split-index")
    (wt.path / "src" / "app.py").write_text("x = 5\n")
    (wt.path / "fresh.txt").write_text("fresh\n")
    gitdir = Path(git(wt.path, "rev-parse", "--absolute-git-dir").strip())
    before = sorted(p.name for p in gitdir.iterdir())
    out = worktrees.diff(repo, "main", wt.path, color=False)
    assert "+x = 5" in out and "+fresh" in out
    assert sorted(p.name for p in gitdir.iterdir()) == before
    assert git(wt.path, "status", "--porcelain") == " M src/app.py\n?? fresh.txt\n"


def test_git_env_from_a_hook_does_not_redirect_commands(
    repo: Path, wt_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    wt = worktrees.create(repo, wt_dir, "fix", "a1", "main")
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    assert wt.branch in branches(repo) and wt.branch not in branches(other)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
