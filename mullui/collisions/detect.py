"""Detection: which agents' change sets intersect, whether merging them would conflict, and
how each branch stands against its moving base."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from mullui.collisions.cache import CollisionCache, session
from mullui.collisions.changes import change_sets, diff_names
from mullui.collisions.merges import merge_tree, merge_trees
from mullui.collisions.model import BaseDrift, ChangeSet, MergeResult, Work
from mullui.model import Collision


def find_collisions(
    works: Sequence[Work],
    cache: CollisionCache | None = None,
    changed: Collection[str] | None = None,
) -> dict[str, list[Collision]]:
    """Every agent's collisions with the others (symmetric; no collision maps to []).

    Pass *all* live agents: entries of agents left out are dropped from ``cache``.
    merge-tree runs only for pairs whose change sets intersect.  ``changed``: the agents
    an event says may have changed since the last call; the others are taken from the
    cache without even a ``git status`` (unless their base moved).  None checks everyone.
    """
    return scan(works, cache, changed)[0]


def scan(
    works: Sequence[Work],
    cache: CollisionCache | None = None,
    changed: Collection[str] | None = None,
) -> tuple[dict[str, list[Collision]], dict[str, ChangeSet]]:
    """``find_collisions`` and the change sets it was computed from (by agent id)."""
    with session(cache) as c:
        return _scan(works, c, changed)


def _scan(
    works: Sequence[Work], cache: CollisionCache, changed: Collection[str] | None
) -> tuple[dict[str, list[Collision]], dict[str, ChangeSet]]:
    sets = change_sets(works, cache, changed)
    result: dict[str, list[Collision]] = {w.agent_id: [] for w in works}
    repo_of = {w.agent_id: w.repo for w in works}
    touching: dict[tuple[Path, str], list[str]] = {}
    for w in works:
        for f in sets[w.agent_id].files:
            touching.setdefault((w.repo, f), []).append(w.agent_id)
    shared: dict[tuple[str, str], list[str]] = {}
    for (_, f), agents in touching.items():
        for i, a in enumerate(agents):
            for b in agents[i + 1 :]:
                shared.setdefault((a, b) if a < b else (b, a), []).append(f)

    pairs = sorted(shared)
    by_repo: dict[Path, list[tuple[str, str]]] = {}
    for a, b in pairs:
        by_repo.setdefault(repo_of[a], []).append((a, b))
    for repo, agent_pairs in by_repo.items():
        commit_pairs: list[tuple[str, str]] = []
        for a, b in agent_pairs:
            snap_a, snap_b = sets[a].snapshot, sets[b].snapshot
            assert snap_a is not None and snap_b is not None
            # Order by commit id so (a, b) and (b, a) share one cache entry.
            lo, hi = sorted((snap_a, snap_b))
            commit_pairs.append((lo, hi))
        merged_all = merge_trees(repo, commit_pairs, cache)
        for (a, b), merged in zip(agent_pairs, merged_all, strict=True):
            files = tuple(sorted(shared[(a, b)]))
            result[a].append(Collision(b, files, merged.conflict, merged.conflict_files))
            result[b].append(Collision(a, files, merged.conflict, merged.conflict_files))
    for lst in result.values():
        lst.sort(key=lambda c: c.agent)
    cache.prune(result)
    return result, sets


def base_drift(work: Work, cache: CollisionCache | None = None) -> BaseDrift:
    """How far the base moved since the agent forked, which of the agent's files it changed
    too, and whether merging into the base now would conflict."""
    with session(cache) as c:
        return _base_drift(work, c)


def _base_drift(work: Work, cache: CollisionCache) -> BaseDrift:
    cs = change_sets([work], cache)[work.agent_id]
    if cs.fork_point is None or cs.snapshot is None or cs.fork_point == cs.base_commit:
        return BaseDrift(work.agent_id, work.base, cs.base_commit, cs.fork_point, 0, (), False)
    key = (work.agent_id, cs.snapshot, cs.base_commit)
    hit = cache.drift(key)
    if hit is not None:
        return hit
    behind = int(
        cache.git(work.repo, ["rev-list", "--count", f"{cs.fork_point}..{cs.base_commit}"])
        .stdout.decode()
        .strip()
        or 0
    )
    overlap = diff_names(work.repo, cs.fork_point, cs.base_commit, cache) & set(cs.files)
    merged = MergeResult(False, "", ())
    if overlap:
        merged = merge_tree(work.repo, cs.base_commit, cs.snapshot, cache)
    drift = BaseDrift(
        work.agent_id,
        work.base,
        cs.base_commit,
        cs.fork_point,
        behind,
        tuple(sorted(overlap)),
        merged.conflict,
        merged.conflict_files,
    )
    cache.put_drift(key, drift)
    return drift
