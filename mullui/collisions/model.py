"""What the collision engine takes and answers: plain frozen records, no git."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Work:
    """One agent's unmerged work."""

    agent_id: str
    repo: Path  # the main repository
    worktree: Path | None  # None once the worktree was removed: then the branch alone
    branch: str
    base: str  # the base ref name, e.g. "main"


@dataclass(frozen=True)
class ChangeSet:
    """What an agent changed since it forked from its base."""

    agent_id: str
    head: str | None  # the commit the worktree (or branch) is at; None: branch gone
    snapshot: str | None  # commit standing for the current state (== head when clean)
    base_commit: str
    fork_point: str | None  # merge-base(base, snapshot)
    files: tuple[str, ...]  # changed since the fork and still differing from the base
    dirty: bool  # uncommitted or untracked work in the worktree

    @property
    def has_work(self) -> bool:
        """False when there is nothing left to merge (e.g. the branch is in the base)."""
        return bool(self.files)


@dataclass(frozen=True)
class BaseDrift:
    """The branch against its moving base."""

    agent_id: str
    base: str
    base_commit: str
    fork_point: str | None
    behind: int  # commits on the base since the fork
    files: tuple[str, ...]  # files the base changed since the fork that the agent changed too
    conflict: bool  # merging into the base now would conflict
    conflict_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocker:
    """Why no clean merge order exists: an agent against the target (other None) or a pair."""

    agent: str
    other: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class MergeOrder:
    """Predicted merges of several agents into one target (``merge_order``)."""

    target: str
    target_commit: str
    order: tuple[str, ...] | None  # a sequence that merges cleanly; None when none found
    mergeable: tuple[str, ...]  # the longest clean sequence found (== order when found)
    noop: tuple[str, ...]  # agents with nothing to merge into the target (left out of order)
    blockers: tuple[Blocker, ...]  # filled when order is None
    exhausted: bool = False  # the search budget ran out before every order was tried


@dataclass
class CacheStats:
    """Counters for tests and the benchmark."""

    agent_hits: int = 0
    agent_misses: int = 0
    pair_hits: int = 0
    pair_misses: int = 0  # == merge-tree runs
    git_calls: int = 0


@dataclass(frozen=True)
class MergeResult:
    """One predicted ``git merge``: whether it conflicts, the merged tree, which files."""

    conflict: bool
    tree: str
    conflict_files: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """The cheap look at an agent's state that decides whether its cache entry is valid."""

    head: str | None
    dirty: tuple[str, ...]  # paths with uncommitted or untracked changes
    key: tuple[str, ...]
