"""Real git repositories and worktrees for collision tests and the collision benchmark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import gitrepo

# Pin identity and defaults so the user's ~/.gitconfig (hooks, signing, templates) cannot
# change what the tests build.
_GIT_ENV_EXTRA = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; return stdout; raise with stderr on failure."""
    env = {**os.environ, **_GIT_ENV_EXTRA}
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(k, None)
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {proc.stderr.strip()}")
    return proc.stdout


def lines(n: int, **changed: str) -> str:
    """A file of ``n`` numbered lines; ``L7="x"`` replaces line 7 with "x"."""
    out = [f"line {i}" for i in range(1, n + 1)]
    for key, text in changed.items():
        out[int(key[1:]) - 1] = text
    return "\n".join(out) + "\n"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A repository on branch ``main`` with ``files`` in one commit (the shared
    ``make_repo``, through this module's pinned ``git``)."""
    return gitrepo.make_repo(path, files, run=git)


def add_worktree(repo: Path, path: Path, branch: str, start: str = "main") -> Path:
    """``git worktree add -b branch path start``, as mullui does for an agent."""
    git(repo, "worktree", "add", "-q", "-b", branch, str(path), start)
    return path


def commit_all(worktree: Path, message: str = "work") -> str:
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD").strip()
