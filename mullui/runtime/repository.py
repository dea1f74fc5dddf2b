"""What a repository says about itself and its checkouts: its main worktree, branches,
refs, uncommitted paths, and where a new agent starts (its base).

Plain git through argv lists with an explicit ``cwd`` and timeouts; queries only, no
worktree is made or removed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mullui.errors import MulluiError
from mullui.runtime.git import run_git


@dataclass(frozen=True)
class Base:
    """Where a new agent starts, resolved in the directory the user stands in."""

    ref: str  # what the agent's record keeps: a branch name, a stable ref, or a sha
    sha: str
    note: str | None = None  # for the user: why it is a commit and not a branch


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


def common_dir(repo: Path) -> Path:
    """The git dir every worktree of ``repo`` shares (its ``.git``)."""
    out = run_git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo).stdout
    return Path(out.strip())


def branch_exists(repo: Path, branch: str) -> bool:
    """Whether ``repo`` has the local branch ``branch``."""
    r = run_git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], repo, check=False)
    return r.returncode == 0


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
    return there, branch is not None and branch_exists(repo, branch)
