"""Git plumbing for the collision engine: the environment, one process, small parsers.

Nothing here knows the cache; :meth:`CollisionCache.git` adds the scratch objects and the
counting on top of :func:`run`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mullui.errors import MulluiError

GIT_TIMEOUT_S = 60.0
# git is I/O + fork bound; a few at once hides the latency without thrashing 2-core CI.
MAX_PARALLEL_GIT = 8

# Inherited from a git hook or an agent's shell, these would point our git at another
# repository or index.
_GIT_REDIRECTS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
# Fixed identity and dates make snapshot and predicted-merge commits content-addressed:
# the same tree on the same parent is the same commit id, so pair results stay cached
# across recomputes.  It also works where the user has no user.email configured.
SYNTHETIC_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "mullui",
    "GIT_AUTHOR_EMAIL": "mullui@localhost",
    "GIT_AUTHOR_DATE": "@0 +0000",
    "GIT_COMMITTER_NAME": "mullui",
    "GIT_COMMITTER_EMAIL": "mullui@localhost",
    "GIT_COMMITTER_DATE": "@0 +0000",
}


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without git redirections, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    env["LC_ALL"] = "C"
    # A status or diff must never rewrite the user's index behind their back (git
    # refreshes stat info opportunistically otherwise; seen with git 2.39).
    env["GIT_OPTIONAL_LOCKS"] = "0"
    if extra:
        env.update(extra)
    return env


def run(
    cwd: Path,
    args: Sequence[str],
    env: dict[str, str],
    *,
    stdin: bytes | None = None,
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``cwd``; an exit status outside ``ok`` is a one-line MulluiError."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        if not cwd.is_dir():
            raise MulluiError(f"collision check: directory {cwd} does not exist") from exc
        raise MulluiError("collision check needs git on PATH; install git 2.38 or newer") from exc
    except subprocess.TimeoutExpired as exc:
        raise MulluiError(
            f"collision check: `git {args[0]}` in {cwd} took over {GIT_TIMEOUT_S:.0f}s; "
            "is the repository on a slow or locked filesystem?"
        ) from exc
    if proc.returncode not in ok:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit {proc.returncode}"
        raise MulluiError(f"collision check: `git {' '.join(args[:2])}` in {cwd} failed: {why}")
    return proc


def z_list(out: bytes) -> list[str]:
    """A NUL-separated list of paths (``-z`` output)."""
    return [p.decode(errors="surrogateescape") for p in out.split(b"\0") if p]


def branch_ref(branch: str) -> str:
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def objects_dir(cwd: Path) -> str | None:
    """The object directory of the repository ``cwd`` belongs to (worktrees share it)."""
    dotgit = cwd / ".git"
    try:
        if dotgit.is_dir():
            gitdir = dotgit
        else:
            text = dotgit.read_text(errors="replace").strip()
            if not text.startswith("gitdir: "):
                raise OSError("not a gitdir pointer")
            gitdir = (cwd / text[len("gitdir: ") :]).resolve()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        if (common / "objects").is_dir():
            return str(common / "objects")
    except OSError:
        pass
    try:  # a bare repository, a submodule, or something else unusual: ask git
        proc = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=cwd,
            env=git_env(),
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return str(Path(proc.stdout.decode().strip()) / "objects")


_T = TypeVar("_T")
_R = TypeVar("_R")


def parallel(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``fn`` over ``items``, up to ``MAX_PARALLEL_GIT`` at once, results in order."""
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_GIT, len(items))) as pool:
        return list(pool.map(fn, items))
