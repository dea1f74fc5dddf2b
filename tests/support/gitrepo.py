"""Real git repositories for tests: ``make_repo`` and a ``git`` runner."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; stdout.  Fails the test on a non-zero exit."""
    r = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {r.stderr.strip()}")
    return r.stdout


def make_repo(
    path: Path, files: dict[str, str] | None = None, run: Callable[..., str] | None = None
) -> Path:
    """A repository at ``path`` with ``files`` (a README by default) in one commit on
    ``main`` and a local identity.  ``run`` is the git runner (``git`` here by default;
    ``collide_repo`` passes its own, pinned against the user's ~/.gitconfig)."""
    g = run or git
    path.mkdir(parents=True, exist_ok=True)
    g(path, "init", "-q", "-b", "main")
    g(path, "config", "user.name", "mullui-test")
    g(path, "config", "user.email", "test@mullui.invalid")
    for name, text in (files or {"README.md": "# sandbox\n"}).items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    g(path, "add", "-A")
    g(path, "commit", "-qm", "initial")
    return path


def commit_file(repo: Path, name: str, text: str, message: str | None = None) -> str:
    """Write ``name`` in ``repo`` (a worktree too), commit it; the new sha."""
    f = repo / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    git(repo, "add", "--", name)
    git(repo, "commit", "-qm", message or f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()
