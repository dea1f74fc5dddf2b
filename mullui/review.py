"""Review: merge an agent's branch into its base (``mullui merge``, ``m`` in the TUI).

Nothing is ever half-merged.  The merge is computed first, in the object store only, with
``git merge-tree --write-tree`` (git >= 2.38): a conflict is refused, naming the files,
before any ref or file changes.  The merge commit is then built with ``git commit-tree``
and the target branch moves to it in one step:

- target checked out in some worktree (usually the main repository): only when that
  worktree is clean and nothing is in progress there, by ``git merge --ff-only`` to the
  prepared commit, which updates the branch, the index and the files together and
  refuses (changing nothing) if the branch moved meanwhile;
- target checked out nowhere: ``git update-ref`` with the old value, so a concurrent
  change of the branch makes it fail instead of being overwritten.

The merge commit is a true merge (two parents, ``--no-ff`` shape) with a message that
names the agent and its task.  ``commit-tree`` runs no commit hooks (a hook that needs a
terminal must not hang a merge); ``post-merge`` runs as usual in a checked-out target.

Uncommitted changes in the agent's worktree are refused, not silently left behind: a
reviewer who merges expects everything the agent produced to land.  Commit them there, or
``mullui rm --force`` commits them to the branch first.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import RUNNING, Agent
from mullui.operations.locations import location_for
from mullui.runtime import worktrees

QUICK = 60.0
SHOWN = 8  # files named in a message before "and N more"


def _git(
    args: Sequence[str], cwd: Path, *, check: bool = True, timeout: float = QUICK
) -> subprocess.CompletedProcess[str]:
    """The runtime's git runner (clean repo env, C locale, no prompts, one-line errors),
    with git's merge editor off."""
    return worktrees.run_git(
        args, cwd, check=check, timeout=timeout, env={"GIT_MERGE_AUTOEDIT": "no"}
    )


def _names(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    more = len(paths) - SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _z(out: str) -> list[str]:
    return [p for p in out.split("\0") if p]


def _status_paths(worktree: Path, *, untracked: bool) -> list[str]:
    out = _git(
        ["status", "--porcelain=v1", "-z", f"--untracked-files={'all' if untracked else 'no'}"],
        worktree,
    ).stdout
    paths: list[str] = []
    entries = iter(out.split("\0"))
    for e in entries:
        if not e:
            continue
        if not untracked and e.startswith("??"):
            continue
        paths.append(e[3:])
        if e[0] in "RC":  # a rename/copy entry is followed by its source path
            next(entries, None)
    return paths


def _untracked(worktree: Path) -> list[str]:
    return _z(_git(["ls-files", "-z", "--others", "--exclude-standard"], worktree).stdout)


def _in_progress(worktree: Path) -> str | None:
    """A merge, rebase, cherry-pick or revert stopped half-way in ``worktree``."""
    for name, what in (
        ("MERGE_HEAD", "a merge"),
        ("rebase-merge", "a rebase"),
        ("rebase-apply", "a rebase"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("REVERT_HEAD", "a revert"),
    ):
        p = _git(["rev-parse", "--path-format=absolute", "--git-path", name], worktree).stdout
        if Path(p.strip()).exists():
            return what
    return None


def checked_out_in(repo: Path, branch: str) -> Path | None:
    """The worktree (main or linked) that has ``branch`` checked out, if any."""
    out = _git(["worktree", "list", "--porcelain"], repo).stdout
    for block in out.split("\n\n"):
        lines = block.splitlines()
        path = next((ln[9:] for ln in lines if ln.startswith("worktree ")), None)
        if path and f"branch refs/heads/{branch}" in lines and "bare" not in lines:
            return Path(path)
    return None


def _sha(repo: Path, ref: str) -> str | None:
    r = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def _has_identity(repo: Path) -> bool:
    return all(
        _git(["var", v], repo, check=False).returncode == 0
        for v in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")
    )


#: The repository's own config: a merge that changes it says so (a new content is not
#: trusted until the user says so: ``config.untrusted_part``).
REPO_CONFIG = ".mullui.toml"


@dataclass(frozen=True)
class MergePlan:
    """What ``merge`` would do, computed without changing anything (the TUI asks with it)."""

    agent: Agent
    target: str  # local branch name
    target_sha: str
    branch_sha: str
    tree: str  # the merged tree (only meaningful when no conflicts)
    files: tuple[str, ...]  # files the merge changes in the target
    conflicts: tuple[str, ...]
    checkout: Path | None  # where the target is checked out, if anywhere
    problem: str | None  # why it would be refused (None: it can go ahead)
    warning: str | None = None  # the agent's worktree is on another branch, or detached

    def question(self) -> str:
        """One line to confirm with: ``Merge fix-login (3 files) into main?``."""
        n = len(self.files)
        cfg = ", changes .mullui.toml" if REPO_CONFIG in self.files else ""
        return f"Merge {self.agent.name} ({n} file{'s' if n != 1 else ''}{cfg}) into {self.target}?"


def _predecessors(ctx: Context, a: Agent) -> list[Agent]:
    """The agents whose branch ``a`` started from (``--after``, a chain's earlier steps),
    nearest first."""
    out: list[Agent] = []
    cur = a
    while cur.after and len(out) < 100:
        prev = ctx.store.get(cur.after)
        if prev is None or not prev.branch or cur.base != prev.branch:
            break
        out.append(prev)
        cur = prev
    return out


def _root_base(ctx: Context, a: Agent) -> str | None:
    """Where a follow-up's work belongs.  A follow-up starts from its predecessor's
    branch, but merging it there would bury the whole chain in an agent branch: it goes
    where the first agent of the line came from (its commits include the earlier steps')."""
    line = _predecessors(ctx, a)
    return line[-1].base if line else a.base


def work_of(a: Agent) -> tuple[Agent, str | None]:
    """The agent with ``branch`` set to its work: the branch its worktree has checked out
    now (an agent may ``git checkout -b``), else the recorded one; plus a warning when
    they differ.  The one notion of "the agent's work" that merge, ack and diff share
    (diff and the report measure the worktree, which is on that branch)."""
    if a.host is not None or not a.branch:
        return a, None
    branch, warning = worktrees.work_branch(Path(a.worktree) if a.worktree else None, a.branch)
    if branch and branch != a.branch:
        a = dataclasses.replace(a, branch=branch)
    return a, warning


def _uncommitted(a: Agent) -> list[str]:
    if a.worktree and Path(a.worktree).is_dir():
        return _status_paths(Path(a.worktree), untracked=True)
    return []


def _uncommitted_problem(a: Agent, left: Sequence[str]) -> str:
    return (
        f"{a.name}'s work is uncommitted: {_names(left)} — `mullui merge --commit {a.name}` "
        f"commits it to {a.branch} first, then merges (or commit it in {a.worktree})"
    )


def plan(ctx: Context, agent: Agent, into: str | None = None) -> MergePlan:
    """Check everything ``merge`` needs; ``problem`` says why it would be refused.

    Raises ``MulluiError`` only when there is no merge to speak of (no branch, no such
    target branch, nothing to merge — uncommitted work is said as such, not as nothing)."""
    a, warning = work_of(agent)
    if a.host is not None:
        raise MulluiError(
            f"{a.name} runs on host {a.host!r}: merging remote agents' branches "
            "is not supported yet; fetch its branch and merge it with git"
        )
    if not a.branch or not a.repo:
        raise MulluiError(f"{a.name} has no branch yet ({a.state.value}): nothing to merge")
    repo = Path(a.repo)
    target = into or _root_base(ctx, a)
    if target is None:
        target = worktrees.current_branch(repo)
    target = target.removeprefix("refs/heads/")
    target_sha = _sha(repo, f"refs/heads/{target}")
    if target_sha is None:
        hint = "" if into else " (its base); give one with --into BRANCH"
        raise MulluiError(f"{target!r} is not a local branch{hint}: `git branch` lists them")
    if target == a.branch:
        raise MulluiError(f"cannot merge {a.branch} into itself: give --into BRANCH")
    # A remote agent's branch was fetched into a private ref (never refs/heads).
    merge_ref = a.extra.get("merge_ref")
    ref = merge_ref if isinstance(merge_ref, str) else f"refs/heads/{a.branch}"
    branch_sha = _sha(repo, ref)
    if branch_sha is None:
        raise MulluiError(f"{a.name}'s branch {a.branch} no longer exists: nothing to merge")
    ancestor = _git(["merge-base", "--is-ancestor", branch_sha, target_sha], repo, check=False)
    if ancestor.returncode == 0:
        left = _uncommitted(a)
        if left:
            raise MulluiError(_uncommitted_problem(a, left))
        if a.merged_into:
            raise MulluiError(f"{a.name} is already merged into {a.merged_into}")
        raise MulluiError(
            f"nothing to merge: {a.branch} has no commits that {target} lacks "
            f"— `mullui ack {a.name}` marks it handled"
        )
    r = _git(
        [
            "merge-tree",
            "--write-tree",
            "-z",
            "--name-only",
            "--no-messages",
            target_sha,
            branch_sha,
        ],
        repo,
        check=False,
    )
    if r.returncode not in (0, 1):
        raise MulluiError(f"git merge-tree failed in {repo}: {worktrees.git_reason(r.stderr)}")
    parts = _z(r.stdout)
    tree, conflicts = parts[0], tuple(dict.fromkeys(parts[1:]))
    files = tuple(_z(_git(["diff", "--name-only", "-z", target_sha, tree], repo).stdout))
    checkout = checked_out_in(repo, target)
    problem = _problem(a, target, conflicts, files, checkout, target_sha)
    return MergePlan(
        a, target, target_sha, branch_sha, tree, files, conflicts, checkout, problem, warning
    )


def _problem(
    a: Agent,
    target: str,
    conflicts: Sequence[str],
    files: Sequence[str],
    checkout: Path | None,
    target_sha: str,
) -> str | None:
    if a.state in RUNNING:
        return (
            f"{a.name} is still {a.state.value}: wait until it is done, or "
            f"`mullui stop {a.name}`, then merge"
        )
    left = _uncommitted(a)
    if left:
        return _uncommitted_problem(a, left)
    if conflicts:
        return (
            f"merging {a.name} into {target} would conflict in {_names(conflicts)}; "
            f"nothing was changed — bring {a.branch} up to date with {target} "
            "(or resolve by hand), then merge again"
        )
    if checkout is not None:
        busy = _in_progress(checkout)
        if busy:
            return (
                f"{target} is checked out in {checkout} with {busy} in progress: "
                "finish or abort it there, then merge again"
            )
        dirty = _status_paths(checkout, untracked=False)
        if dirty:
            return (
                f"{target} is checked out in {checkout} with uncommitted changes in "
                f"{_names(dirty)}: commit or stash them there, then merge again"
            )
        clobbered = sorted(set(files) & set(_untracked(checkout)))
        if clobbered:
            return (
                f"untracked files in {checkout} would be overwritten by the merge: "
                f"{_names(clobbered)} — move them away, then merge again"
            )
        head = _sha(checkout, "HEAD")
        if head != target_sha:
            return f"{target} moved while merging: merge again"
    return None


def _with_advice(ctx: Context, p: MergePlan, problem: str) -> str:
    """A conflict refusal plus, when another order of the pending merges into the target
    stays clean (collision radar), that order."""
    if not p.conflicts or "would conflict" not in problem:
        return problem
    # The radar and the collision engine (~25 ms to import): only a refused merge pays.
    from mullui import radar

    try:
        advice = radar.merge_advice(ctx, p.agent, p.target)
    except MulluiError:
        return problem  # the advice is a bonus; the refusal stands on its own
    return f"{problem}; {advice}" if advice else problem


def commit_work(ctx: Context, agent: Agent) -> str | None:
    """Commit the agent's uncommitted work to the branch its worktree is on (``merge
    --commit``); the new sha, or None when there was nothing to commit."""
    a, _ = work_of(agent)
    if a.state in RUNNING:
        raise MulluiError(
            f"{a.name} is still {a.state.value}: its files may still change — "
            f"`mullui stop {a.name}` first, then merge --commit"
        )
    if not a.worktree or not Path(a.worktree).is_dir():
        return None
    return worktrees.commit_all(
        Path(a.worktree), a.branch, f"mullui: commit the work of {a.name} before merging"
    )


def unmerged(ctx: Context, agent: Agent) -> str | None:
    """One line saying what of the agent's work is not merged anywhere yet: ``ack``
    marks the item handled but must not hide that (None: nothing left out)."""
    a, _ = work_of(agent)
    if a.host is not None or not a.repo or not a.branch or a.removed:
        return None
    repo = Path(a.repo)
    parts = []
    left = _uncommitted(a)
    if left:
        parts.append(f"uncommitted {_names(left)}")
    target = (_root_base(ctx, a) or "").removeprefix("refs/heads/")
    if target and _sha(repo, f"refs/heads/{target}") and _sha(repo, f"refs/heads/{a.branch}"):
        n = _git(["rev-list", "--count", f"refs/heads/{target}..refs/heads/{a.branch}"], repo)
        count = int(n.stdout.strip() or 0)
        if count:
            parts.append(f"{count} commit{'s' if count != 1 else ''} not in {target}")
    if not parts:
        return None
    return (
        f"{a.name} still has work that is not merged ({'; '.join(parts)}): it stays on "
        f"{a.branch}; `mullui merge{' --commit' if left else ''} {a.name}` when you want it"
    )


def merge(ctx: Context, agent: Agent, into: str | None = None, *, commit: bool = False) -> str:
    """Merge the agent's branch into its base (or ``into``); returns what was done.

    A follow-up (``--after``, a chain step) merges into the base of the first agent of its
    line, and its predecessors are marked merged with it.

    Refuses with ``MulluiError`` (naming the files) on a conflict, a dirty or busy target,
    or uncommitted work in the agent's worktree; the target is then untouched.  Records a
    ``merged`` event, which marks the inbox item handled.

    An agent on a host is merged from its branch fetched here (its location's
    ``branch_here``), like a local agent's.
    """
    agent = location_for(ctx, agent).branch_here(agent)
    saved = commit_work(ctx, agent) if commit else None
    p = plan(ctx, agent, into)
    if p.problem:
        raise MulluiError(_with_advice(ctx, p, p.problem))
    if p.warning and ctx.notice is not None:
        ctx.notice(f"{agent.name}: {p.warning}")
    a = p.agent
    repo = Path(a.repo or ".")
    ident = (
        []
        if _has_identity(repo)
        else ["-c", "user.name=mullui", "-c", "user.email=mullui@localhost"]
    )
    task = " ".join(a.task.split())
    task = task if len(task) <= 200 else task[:199] + "…"
    message = (
        f"Merge {a.branch} into {p.target}\n\nmullui agent {a.name} ({a.id}, {a.profile}): {task}\n"
    )
    sha = _git(
        [*ident, "commit-tree", p.tree, "-p", p.target_sha, "-p", p.branch_sha, "-m", message], repo
    ).stdout.strip()
    if p.checkout is not None:
        r = _git(["merge", "--ff-only", "--quiet", sha], p.checkout, check=False)
        if r.returncode != 0:
            raise MulluiError(
                f"{p.target} in {p.checkout} could not take the merge "
                f"({worktrees.git_reason(r.stderr)}); nothing was changed — merge again"
            )
    else:
        r = _git(
            [
                "update-ref",
                "-m",
                f"mullui: merge {a.name}",
                f"refs/heads/{p.target}",
                sha,
                p.target_sha,
            ],
            repo,
            check=False,
        )
        if r.returncode != 0:
            raise MulluiError(
                f"{p.target} moved while merging ({worktrees.git_reason(r.stderr)}); "
                "nothing was changed — merge again"
            )
    ctx.store.emit(a.id, "merged", into=p.target, sha=sha)
    # The predecessors' work landed with it (the follow-up's branch holds their commits).
    for prev in _predecessors(ctx, a):
        if prev.merged_into is None and prev.branch:
            prev_sha = _sha(repo, f"refs/heads/{prev.branch}")
            inside = (
                prev_sha
                and _git(
                    ["merge-base", "--is-ancestor", prev_sha, sha], repo, check=False
                ).returncode
                == 0
            )
            if inside:
                ctx.store.emit(prev.id, "merged", into=p.target, sha=sha)
    stat = _git(["diff", "--shortstat", p.target_sha, sha], repo).stdout.strip()
    after = (
        f"; its worktree can go: `mullui rm {a.name}`"
        if a.worktree and Path(a.worktree).is_dir()
        else ""
    )
    note = (
        f"; it changed {REPO_CONFIG}: until you read it and `mullui trust` it, its keys "
        "that can run code or loosen limits are ignored"
        if REPO_CONFIG in p.files
        else ""
    )
    done = f"merged {a.name} ({a.branch}) into {p.target} as {sha[:10]}: {stat}{after}{note}"
    if saved:
        return f"committed {a.name}'s uncommitted work to {a.branch} as {saved[:10]}; {done}"
    return done
