"""Keeping an agent's work when its worktree goes: git's worktree lock, what removal
could lose (uncommitted paths, commits on no other branch), saving it as a commit, and
the removal itself, which always keeps the branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mullui.errors import MulluiError
from mullui.runtime.git import git_reason, run_git
from mullui.runtime.repository import branch_exists, branch_of, uncommitted


@dataclass(frozen=True)
class Safety:
    """What removing a worktree could lose."""

    uncommitted: list[str]  # paths with changes, untracked files included
    unique_commits: list[str]  # shas on the branch that no other branch holds

    @property
    def safe(self) -> bool:
        return not self.uncommitted and not self.unique_commits


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


def _unique_commits(repo: Path, branch: str) -> list[str]:
    if not branch_exists(repo, branch):
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
    if not branch_exists(repo, branch) and branch_of(worktree) == branch:
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
