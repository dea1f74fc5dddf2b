"""Git worktrees: one per agent, on its own branch, created serialized, removed safely
(removal.py), in a repository whose refs and bases repository.py reads.

Plain git through argv lists with an explicit ``cwd`` and timeouts; no knowledge of
mullui's records.  Paths in, facts out, :class:`MulluiError` with git's reason when git
refuses.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mullui.errors import MulluiError
from mullui.runtime import submodules
from mullui.runtime.git import CHECKOUT, clean_env

# The runner review and others call as ``worktrees.run_git`` (it lives in git.py).
from mullui.runtime.git import QUICK as QUICK
from mullui.runtime.git import git_reason as git_reason
from mullui.runtime.git import run_git as run_git

# Callers reach the repository queries and the safe removal as ``worktrees.X``.
from mullui.runtime.removal import Safety as Safety
from mullui.runtime.removal import commit_all as commit_all
from mullui.runtime.removal import lock as lock
from mullui.runtime.removal import remove as remove
from mullui.runtime.removal import safety as safety
from mullui.runtime.removal import unlock as unlock
from mullui.runtime.repository import NO_COMMITS as NO_COMMITS
from mullui.runtime.repository import Base as Base
from mullui.runtime.repository import branch_exists, common_dir
from mullui.runtime.repository import branch_of as branch_of
from mullui.runtime.repository import current_branch as current_branch
from mullui.runtime.repository import has_commits as has_commits
from mullui.runtime.repository import left_out as left_out
from mullui.runtime.repository import local_branches as local_branches
from mullui.runtime.repository import presence as presence
from mullui.runtime.repository import repo_root as repo_root
from mullui.runtime.repository import resolve_base as resolve_base
from mullui.runtime.repository import resolve_ref as resolve_ref
from mullui.runtime.repository import spawn_notes as spawn_notes
from mullui.runtime.repository import uncommitted as uncommitted
from mullui.runtime.repository import work_branch as work_branch

LOCK_WAIT = 300.0

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


_NO_SPACE = re.compile(r"No space left on device|ENOSPC|disk quota exceeded", re.I)


@dataclass(frozen=True)
class Worktree:
    """An agent's checkout: where, on which branch, started from which base."""

    path: Path
    branch: str
    base: str  # the ref as given (``main``, ``HEAD~2``, a sha)
    base_sha: str
    notes: tuple[str, ...] = ()  # one line each, for the user (submodules that failed)


def worktree_path(repo: Path, worktrees_dir: Path, slug: str, short_id: str) -> Path:
    """Where ``create`` puts an agent's worktree.  The repository's path is hashed into
    the parent so two clones named alike do not collide."""
    digest = hashlib.sha1(str(repo.resolve()).encode()).hexdigest()[:8]
    return worktrees_dir / f"{repo.name}-{digest}" / f"{slug}-{short_id}"


@contextmanager
def _repo_lock(repo: Path) -> Iterator[None]:
    """Serialize worktree creation per repository (across processes).

    Parallel ``git worktree add`` in one repository race on ``.git/worktrees/`` and
    ``.git/config.lock`` (seen with git 2.39, 20 at once without this lock: "fatal:
    failed to read .git/worktrees/par-t9/commondir: Success").  The lock lives in the
    common git dir, shared by every worktree of the repository.
    """
    lock_path = common_dir(repo) / "mullui-worktree.lock"
    with open(lock_path, "a") as fh:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MulluiError(
                        f"another mullui has been creating a worktree in {repo} for "
                        f"{LOCK_WAIT:.0f}s (lock {lock_path}): try again"
                    ) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def create(
    repo: Path,
    worktrees_dir: Path,
    slug: str,
    short_id: str,
    base: str,
    progress: Callable[[str], None] | None = None,
) -> Worktree:
    """Create branch ``mullui/<slug>-<short_id>`` at ``base`` and check it out in a new
    worktree under ``worktrees_dir``, its submodules initialised as in the main checkout.

    ``progress`` receives one line per step and git's checkout progress
    ("Updating files:  40% (1200/3000)").  On failure nothing is left behind: no
    directory, no branch, no registered worktree.  Submodules that cannot be initialised
    do not fail it: the returned ``notes`` say so.
    """
    for part in (slug, short_id):
        # Both end up in a path: no separators, no "..", nothing git or a shell minds.
        if not _NAME.fullmatch(part) or ".." in part:
            raise MulluiError(f"{part!r} cannot name a worktree: use letters, digits, . _ -")
    branch = branch_name(repo, slug, short_id)
    path = worktree_path(repo, worktrees_dir, slug, short_id)
    r = run_git(["check-ref-format", "--branch", branch], repo, check=False)
    if r.returncode != 0:
        raise MulluiError(f"{branch!r} is not a valid branch name: pick another --name")
    base_sha = resolve_ref(repo, base)
    if path.exists():
        raise MulluiError(f"worktree path already exists: {path} — remove it or pick a name")
    say = progress or (lambda _line: None)
    made_branch = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _repo_lock(repo):
            if branch_exists(repo, branch):
                raise MulluiError(f"branch {branch} already exists in {repo}: pick another name")
            say(f"creating branch {branch} at {base_sha[:12]} ({base})")
            # --no-checkout: the registration is what races; the checkout (the slow part
            # in a big repository) runs outside the lock, in parallel.  --no-track: the
            # branch must not follow the base (and skips a config write).
            r = run_git(
                ["worktree", "add", "--no-checkout", "--no-track", "-b", branch,
                 str(path), base_sha],
                repo, check=False,
            )  # fmt: skip
            made_branch = branch_exists(repo, branch)
            if r.returncode != 0:
                raise _failure("git worktree add", r.stderr, path)
        say(f"checking out {path}")
        _checkout(path, say)
        notes = submodules.init(path, common_dir(repo) / "modules", say, "")
    except BaseException:
        _undo(repo, path, branch if made_branch else None)
        raise
    return Worktree(path=path, branch=branch, base=base, base_sha=base_sha, notes=tuple(notes))


def branch_name(repo: Path, slug: str, short_id: str) -> str:
    """The agent's branch: ``mullui/<slug>-<id>``, or ``mullui-<slug>-<id>`` in a
    repository with a branch named ``mullui`` (git cannot have both ``mullui`` and
    ``mullui/x``: "cannot lock ref")."""
    if branch_exists(repo, "mullui"):
        return f"mullui-{slug}-{short_id}"
    return f"mullui/{slug}-{short_id}"


def _checkout(path: Path, say: Callable[[str], None]) -> None:
    """Fill the new worktree, streaming git's progress (``--progress`` forces it without
    a terminal; lines end in ``\\r``)."""
    proc = subprocess.Popen(
        ["git", "checkout", "--progress", "--force"],
        cwd=path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stderr is not None
    tail: list[str] = []
    buf = b""
    # A timer, not a check between reads: a stuck git prints nothing to wake us.
    timer = threading.Timer(CHECKOUT, proc.kill)
    timer.start()
    try:
        while chunk := os.read(proc.stderr.fileno(), 4096):
            buf += chunk
            *lines, buf = re.split(rb"[\r\n]", buf)
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                if line:
                    say(line)
                    tail = [*tail[-5:], line]
        rc = proc.wait(timeout=QUICK)
    finally:
        timer.cancel()
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc < 0:
        raise MulluiError(f"checkout of {path} took longer than {CHECKOUT:.0f}s")
    if rc != 0:
        raise _failure("git checkout", "\n".join([*tail, buf.decode(errors="replace")]), path)


def _failure(what: str, stderr: str, path: Path) -> MulluiError:
    # git 2.39's checkout says only "unable to write file X" when the disk is full, so
    # the free space is measured too (before the undo frees what was written).
    if _NO_SPACE.search(stderr) or _disk_nearly_full(path):
        return MulluiError(
            f"no space left on device for the worktree {path}: free disk space and retry"
        )
    return MulluiError(f"{what} failed: {git_reason(stderr)}")


def _disk_nearly_full(path: Path) -> bool:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1024 * 1024


def discard(repo: Path, worktree: Worktree) -> None:
    """Undo a :func:`create` whose agent never started (a later spawn step failed):
    worktree, registration and branch go.  Never for an agent that ran — use
    :func:`remove`, which keeps the branch."""
    _undo(repo, worktree.path, worktree.branch)


def _undo(repo: Path, path: Path, branch: str | None) -> None:
    """Remove what a failed ``create`` made; best effort, the original error wins."""
    run_git(["worktree", "remove", "--force", "--force", str(path)], repo, check=False)
    shutil.rmtree(path, ignore_errors=True)
    run_git(["worktree", "prune"], repo, check=False)
    if branch is not None:
        run_git(["branch", "-D", branch], repo, check=False)
    try:
        path.parent.rmdir()  # only when empty: the per-repository folder
    except OSError:
        pass


def diff(repo: Path, base: str, worktree: Path, color: bool = True) -> str:
    """The agent's changes since it forked from ``base``: commits, uncommitted edits and
    untracked files, as one patch.

    Untracked files are marked intent-to-add in a *copy* of the worktree's index
    (``GIT_INDEX_FILE``), so the worktree and its real index stay untouched.
    """
    r = run_git(["merge-base", base, "HEAD"], worktree, check=False)
    since = r.stdout.strip() if r.returncode == 0 else resolve_ref(repo, base)
    index = Path(run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"],
                      worktree).stdout.strip())  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mullui-diff-") as tmp:
        tmp_index = Path(tmp) / "index"
        try:
            shutil.copyfile(index, tmp_index)
        except FileNotFoundError:
            pass  # a fresh worktree may have no index yet; git starts an empty one
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise MulluiError("no space left on device for a temporary index") from e
            raise
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        untracked = run_git(["ls-files", "--others", "--exclude-standard", "-z"], worktree,
                         env=env).stdout  # fmt: skip
        if untracked:
            # core.splitIndex=false: with a split index (git 2.39) writing even a private
            # index drops a new sharedindex.* file into the worktree's git dir.
            run_git(
                [
                    "-c",
                    "core.splitIndex=false",
                    "add",
                    "--intent-to-add",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                worktree,
                env={**env, "GIT_LITERAL_PATHSPECS": "1"},
                stdin=untracked,
            )
        out = run_git(
            [
                "-c",
                "core.quotePath=false",
                "-c",
                "core.splitIndex=false",
                "diff",
                "--no-ext-diff",
                f"--color={'always' if color else 'never'}",
                since,
            ],
            worktree,
            env=env,
        ).stdout
    return out


def recreate(repo: Path, path: Path, branch: str) -> None:
    """Make the worktree ``path`` again on ``branch`` (its directory was removed by hand;
    the branch holds the committed work): forget the stale registration, check it out."""
    with _repo_lock(repo):
        run_git(["worktree", "unlock", str(path)], repo, check=False)
        run_git(["worktree", "prune"], repo, check=False)
        r = run_git(["worktree", "add", str(path), branch], repo, check=False)
        if r.returncode != 0:
            raise _failure(f"git worktree add {branch}", r.stderr, path)
