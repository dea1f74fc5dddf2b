"""Collision engine: which agents' unmerged work touches the same files, and would it conflict.

Agents in separate worktrees cannot corrupt each other's files, but their branches can
still collide at merge time.  This package predicts that from git alone:

* a *change set* per agent (:mod:`.changes`): the files changed since its fork from the
  base, committed, uncommitted and untracked, plus a commit object that stands for the
  worktree's current state (a "snapshot", built through a temporary index; the worktree,
  its index and all refs are left untouched);
* for every pair of agents whose change sets intersect, ``git merge-tree --write-tree``
  between the two snapshots (:mod:`.merges`) says overlap (clean) or conflict
  (:mod:`.detect`);
* the same prediction against the moving base (``base_drift``) and for a sequence of
  merges into a target (``merge_order``, :mod:`.order`).

Everything is pure git subprocesses (:mod:`.git`); there are no timers and no threads left
running.  A ``CollisionCache`` (:mod:`.cache`) makes repeated calls cheap: with nothing
changed a recompute costs one ``git status`` per agent and one ref lookup per repository.

Tunables (timeouts, scratch limits, the merge search budget) live in the module that
uses them.  Layers inside, bottom up: model, git -> cache -> changes, merges -> detect, order.
"""

from __future__ import annotations

from mullui.collisions.cache import CollisionCache
from mullui.collisions.changes import change_set
from mullui.collisions.detect import base_drift, find_collisions, scan
from mullui.collisions.model import BaseDrift, Blocker, CacheStats, ChangeSet, MergeOrder, Work
from mullui.collisions.order import merge_order
from mullui.model import Collision

__all__ = [
    "BaseDrift",
    "Blocker",
    "CacheStats",
    "ChangeSet",
    "Collision",
    "CollisionCache",
    "MergeOrder",
    "Work",
    "base_drift",
    "change_set",
    "find_collisions",
    "merge_order",
    "scan",
]
