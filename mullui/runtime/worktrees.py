"""Git worktrees: one per agent, on its own branch, created serialized, removed safely.

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


@dataclass(frozen=True)
class Base:
    """Where a new agent starts, resolved in the directory the user stands in."""

    ref: str  # what the agent's record keeps: a branch name, a stable ref, or a sha
    sha: str
    note: str | None = None  # for the user: why it is a commit and not a branch


@dataclass(frozen=True)
class Safety:
    """What removing a worktree could lose."""

    uncommitted: list[str]  # paths with changes, untracked files included
    unique_commits: list[str]  # shas on the branch that no other branch holds

    @property
    def safe(self) -> bool:
        return not self.uncommitted and not self.unique_commits


def repo_root(cwd: Path) -> Path:
    """The main working tree of the repository containing ``cwd`` (also from inside a
    linked worktree, where ``--show-toplevel`` would name the linked one)."""
    r = run_git(["worktree", "list", "--porcelain"], cwd, check=False)
    if r.returncode != 0:
        raise MulluiError(f"not a git repository: {cwd} — run mullui inside a repository")
    # The first entry is always the main worktree.
    first = r.stdout.split("\n\n", 1)[0].splitlines()
    if "bare" in first:
        raise MulluiError(f"{cwd} is in a bare repository: run mullui in a checkout")
    for line in first:
        if line.startswith("worktree "):
            return Path(line[len("worktree ") :])
    raise MulluiError(f"not a git repository: {cwd} — run mullui inside a repository")


def current_branch(cwd: Path) -> str:
    """The branch checked out in the worktree that holds ``cwd`` (a linked worktree's
    own branch, not the main checkout's)."""
    branch = branch_of(cwd)
    if branch is None:
        raise MulluiError(f"detached HEAD in {cwd}: check out a branch or pass --base REF")
    return branch


def branch_of(worktree: Path) -> str | None:
    """The branch the worktree holding ``worktree`` has checked out; None when detached."""
    r = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], worktree, check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def has_commits(cwd: Path) -> bool:
    """False for a repository where nothing was ever committed."""
    if run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd, check=False).returncode == 0:
        return True
    r = run_git(["for-each-ref", "--count=1", "--format=%(objectname)"], cwd, check=False)
    return bool(r.stdout.strip())


NO_COMMITS = "this repository has no commits yet: commit something first, then spawn"


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit sha ``ref`` names."""
    if not ref or ref.startswith("-"):
        raise MulluiError(f"base ref {ref!r} not found in {repo}")
    r = run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo, check=False)
    if r.returncode != 0:
        if not has_commits(repo):
            raise MulluiError(NO_COMMITS)
        raise MulluiError(f"base ref {ref!r} not found in {repo}")
    return r.stdout.strip()


def _common_dir(repo: Path) -> Path:
    out = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo).stdout
    return Path(out.strip())


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
    lock_path = _common_dir(repo) / "mullui-worktree.lock"
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


def _branch_exists(repo: Path, branch: str) -> bool:
    r = run_git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], repo, check=False)
    return r.returncode == 0


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
            if _branch_exists(repo, branch):
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
            made_branch = _branch_exists(repo, branch)
            if r.returncode != 0:
                raise _failure("git worktree add", r.stderr, path)
        say(f"checking out {path}")
        _checkout(path, say)
        notes = submodules.init(path, _common_dir(repo) / "modules", say, "")
    except BaseException:
        _undo(repo, path, branch if made_branch else None)
        raise
    return Worktree(path=path, branch=branch, base=base, base_sha=base_sha, notes=tuple(notes))


def branch_name(repo: Path, slug: str, short_id: str) -> str:
    """The agent's branch: ``mullui/<slug>-<id>``, or ``mullui-<slug>-<id>`` in a
    repository with a branch named ``mullui`` (git cannot have both ``mullui`` and
    ``mullui/x``: "cannot lock ref")."""
    if _branch_exists(repo, "mullui"):
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


def lock(repo: Path, path: Path, reason: str) -> None:
    """Protect the worktree from ``git worktree prune``/``remove``; idempotent."""
    r = run_git(["worktree", "lock", "--reason", reason, str(path)], repo, check=False)
    if r.returncode != 0 and "already locked" not in r.stderr:
        raise MulluiError(f"git worktree lock failed: {git_reason(r.stderr)}")


def unlock(repo: Path, path: Path) -> None:
    """Undo :func:`lock`; idempotent (also for a worktree git no longer knows)."""
    r = run_git(["worktree", "unlock", str(path)], repo, check=False)
    if r.returncode != 0 and not re.search(r"not locked|not a working tree", r.stderr):
        raise MulluiError(f"git worktree unlock failed: {git_reason(r.stderr)}")


def uncommitted(worktree: Path) -> list[str]:
    """Paths with uncommitted changes in ``worktree`` (untracked included, ignored not)."""
    # --no-optional-locks: no opportunistic index refresh, so a running agent's own git
    # commands never meet our index.lock.
    out = run_git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all",
         "--ignore-submodules=none"],
        worktree,
    ).stdout  # fmt: skip
    paths: list[str] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # a rename/copy is followed by its source path
            next(entries, None)
    return paths


def resolve_base(cwd: Path, ref: str | None) -> Base:
    """The base of a new agent, resolved where the user stands (``cwd``), once, at spawn.

    - None: the branch checked out in ``cwd``'s worktree; a detached HEAD gives its
      commit, with a note (there is no branch to merge into).
    - A name that means a local branch here (``main``, ``HEAD``, ``@``, ``@{-1}``): that
      branch.  Inside the agent's worktree ``HEAD`` would mean the agent's own branch.
    - A tag or remote-tracking branch: kept as given (it means the same everywhere).
    - Anything else (``HEAD~2``, ``main^``, a sha): the commit it names now, with a note.
    """
    if not has_commits(cwd):
        raise MulluiError(NO_COMMITS)
    if ref is None:
        branch = branch_of(cwd)
        if branch is not None:
            r = run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd, check=False)
            if r.returncode != 0:
                raise MulluiError(
                    f"branch {branch} has no commits yet: commit something on it first, "
                    "or pass --base REF"
                )
            return Base(branch, r.stdout.strip())
        sha = resolve_ref(cwd, "HEAD")
        return Base(sha, sha, _commit_note("HEAD (detached)", sha))
    sha = resolve_ref(cwd, ref)
    r = run_git(["rev-parse", "--symbolic-full-name", ref], cwd, check=False)
    full = r.stdout.strip() if r.returncode == 0 else ""
    if full.startswith("refs/heads/"):
        return Base(full[len("refs/heads/") :], sha)
    if full.startswith("refs/"):
        return Base(ref, sha)
    if re.fullmatch(r"[0-9a-f]{4,64}", ref) and sha.startswith(ref):
        return Base(sha, sha, _commit_note(ref[:12], sha))
    return Base(sha, sha, _commit_note(ref, sha))


def _commit_note(what: str, sha: str) -> str:
    return (
        f"{what} is commit {sha[:12]}, not a branch: the agent starts there, and "
        "`mullui merge` will need --into BRANCH"
    )


def left_out(cwd: Path, base: Base) -> str | None:
    """One line naming the uncommitted files of the checkout the user stands in that an
    agent starting from ``base`` will not see (it starts from the commit, not from the
    files on disk); None when there are none or the base is another commit anyway."""
    head = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd, check=False).stdout
    if head.strip() != base.sha:
        return None
    paths = uncommitted(cwd)
    if not paths:
        return None
    n = len(paths)
    shown = ", ".join(paths[:5]) + (f" and {n - 5} more" if n > 5 else "")
    return (
        f"the agent starts from {_short(base)} as committed and will not see "
        f"{n} uncommitted file{'s' if n != 1 else ''} here: {shown} (commit first to include)"
    )


def spawn_notes(cwd: Path, ref: str | None) -> tuple[Base, list[str]]:
    """The base a spawn from ``cwd`` with ``--base ref`` (None: none given) starts from,
    and the lines to tell the user before it does: a base that is a commit and not a
    branch, uncommitted files the agent will not see.  The CLI prints them; the TUI's
    new-agent dialog can show them before the user confirms."""
    base = resolve_base(cwd, ref)
    return base, [n for n in (base.note, left_out(cwd, base)) if n]


def _short(base: Base) -> str:
    return base.sha[:12] if base.ref == base.sha else base.ref


def _unique_commits(repo: Path, branch: str) -> list[str]:
    if not _branch_exists(repo, branch):
        return []
    # --exclude applies to the next --branches only, and for --branches its pattern is
    # the short name ("refs/heads/x" silently matches nothing).  Remote-tracking branches
    # count as another branch: pushed work is safe.
    out = run_git(
        ["rev-list", f"refs/heads/{branch}", "--not",
         f"--exclude={branch}", "--branches", "--remotes"],
        repo,
    ).stdout  # fmt: skip
    return out.split()


def safety(repo: Path, worktree: Path, branch: str) -> Safety:
    """What ``remove`` would lose: uncommitted paths (untracked included, ignored
    files not) and commits on ``branch`` that no other branch holds."""
    dirty = uncommitted(worktree) if worktree.is_dir() else []
    return Safety(uncommitted=dirty, unique_commits=_unique_commits(repo, branch))


def work_branch(worktree: Path | None, recorded: str | None) -> tuple[str | None, str | None]:
    """The agent's work: the branch its worktree has checked out now (an agent may run
    ``git checkout -b``), else the recorded one.  Returns ``(branch, warning)``; the
    warning says when the two differ or the worktree is detached.  Without a worktree
    (removed, by ``rm`` or by hand) the recorded branch is the work."""
    if worktree is None or not worktree.is_dir():
        return recorded, None
    now = branch_of(worktree)
    if now is None:
        at = run_git(["rev-parse", "--short=12", "HEAD"], worktree, check=False).stdout.strip()
        return recorded, (
            f"its worktree is on a detached HEAD ({at or 'unknown'}): using branch "
            f"{recorded}; commits made there are on no branch"
        )
    if recorded is not None and now != recorded:
        return now, f"its worktree has {now} checked out (it started on {recorded}): using {now}"
    return now, None


def local_branches(repo: Path) -> set[str]:
    """The names of the repository's local branches (one ``for-each-ref``)."""
    out = run_git(["for-each-ref", "--format=%(refname)", "refs/heads/"], repo).stdout
    return {line[len("refs/heads/") :] for line in out.splitlines() if line}


def presence(repo: Path, worktree: Path | None, branch: str | None) -> tuple[bool, bool]:
    """``(worktree there, branch there)``: what a user may have removed by hand."""
    there = worktree is not None and worktree.is_dir()
    return there, branch is not None and _branch_exists(repo, branch)


def _has_identity(worktree: Path) -> bool:
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        if run_git(["var", var], worktree, check=False).returncode != 0:
            return False
    return True


def commit_all(worktree: Path, branch: str | None, message: str) -> str | None:
    """Commit everything uncommitted in ``worktree`` (untracked files included, ignored
    ones not) to the branch it has checked out; the new sha, or None when nothing was
    uncommitted.  Refuses unless that branch is ``branch`` (when given): work must land
    where the caller will look for it."""
    if not uncommitted(worktree):
        return None
    on = run_git(["symbolic-ref", "--quiet", "HEAD"], worktree, check=False).stdout.strip()
    if not on or (branch is not None and on != f"refs/heads/{branch}"):
        raise MulluiError(
            f"{worktree} is not on {branch or 'a branch'} (HEAD: {on or 'detached'}): "
            "commit or discard its changes there by hand"
        )
    run_git(["add", "--all"], worktree)
    ident = [] if _has_identity(worktree) else [
        "-c", "user.name=mullui", "-c", "user.email=mullui@localhost",
    ]  # fmt: skip
    # --no-verify and no signing: saving work must not hang on a hook or a passphrase.
    run_git(
        [*ident, "-c", "commit.gpgsign=false", "commit", "--no-verify", "--quiet", "-m", message],
        worktree,
    )
    return run_git(["rev-parse", "HEAD"], worktree).stdout.strip()


def _last_head(worktree: Path) -> str | None:
    """The last commit the worktree's HEAD was at, from its reflog (which outlives the
    branch: ``git update-ref -d`` only appends a line)."""
    log = run_git(["rev-parse", "--path-format=absolute", "--git-path", "logs/HEAD"], worktree)
    try:
        lines = Path(log.stdout.strip()).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        parts = line.split(" ", 2)
        if len(parts) > 1 and re.fullmatch(r"[0-9a-f]{40,64}", parts[1]) and parts[1].strip("0"):
            r = run_git(["cat-file", "-e", f"{parts[1]}^{{commit}}"], worktree, check=False)
            if r.returncode == 0:
                return parts[1]
    return None


def _restore_branch(
    repo: Path, worktree: Path, branch: str, *, force: bool, agent_name: str
) -> None:
    """The agent's branch was deleted by hand while its worktree still has it checked out
    (``git update-ref -d``): every file would look uncommitted.  Say so; with ``force``,
    recreate the branch where the worktree's HEAD last was, so that the usual safe
    removal saves exactly the agent's uncommitted work on top of its commits."""
    last = _last_head(worktree)
    at = f" (it was at {last[:12]})" if last else ""
    if not force:
        raise MulluiError(
            f"{agent_name}'s branch {branch} was deleted by hand{at} but its worktree "
            f"{worktree} still holds the agent's files: --force restores {branch}, saves "
            "uncommitted work to it and removes the worktree"
        )
    if last is not None:
        # Old value zero: only if nobody recreated the branch meanwhile.
        run_git(["update-ref", "-m", "mullui: restore the agent's branch",
                 f"refs/heads/{branch}", last, "0" * len(last)], repo)  # fmt: skip


def remove(repo: Path, worktree: Path, branch: str, *, force: bool, agent_name: str) -> str | None:
    """Remove the agent's worktree; the branch always stays.

    Refuses while the worktree holds uncommitted changes or the branch holds commits no
    other branch has.  With ``force``, uncommitted work (untracked files included,
    ignored ones not) is first committed to the branch.  Returns that commit's sha, or
    None when nothing needed saving.  Stop the agent first: files it writes after the
    check are not saved.
    """
    if not worktree.is_dir():
        # Deleted by hand: only git's registration is left (prune skips locked ones).
        unlock(repo, worktree)
        run_git(["worktree", "prune"], repo)
        return None
    if not _branch_exists(repo, branch) and branch_of(worktree) == branch:
        _restore_branch(repo, worktree, branch, force=force, agent_name=agent_name)
    s = safety(repo, worktree, branch)
    if not force and not s.safe:
        problems = []
        if s.uncommitted:
            shown = ", ".join(s.uncommitted[:5])
            more = f" and {len(s.uncommitted) - 5} more" if len(s.uncommitted) > 5 else ""
            problems.append(f"uncommitted changes in {shown}{more}")
        if s.unique_commits:
            n = len(s.unique_commits)
            problems.append(f"{n} commit{'s' if n != 1 else ''} on no other branch")
        raise MulluiError(
            f"{agent_name} has {' and '.join(problems)}: "
            f"--force commits uncommitted work to {branch} first; the branch is kept"
        )
    saved: str | None = None
    if s.uncommitted:
        saved = commit_all(
            worktree, branch, f"mullui: save uncommitted work of {agent_name} before removal"
        )
    unlock(repo, worktree)
    r = run_git(["worktree", "remove", "--force", str(worktree)], repo, check=False)
    if r.returncode != 0:
        raise MulluiError(f"git worktree remove failed: {git_reason(r.stderr)}")
    run_git(["worktree", "prune"], repo)
    return saved


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
