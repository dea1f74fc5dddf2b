"""Merge order: a sequence in which several agents' branches merge into a target cleanly,
or the agents and pairs that stand in the way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mullui.collisions import git
from mullui.collisions.cache import CollisionCache, session
from mullui.collisions.changes import change_sets, resolve
from mullui.collisions.merges import merge_tree
from mullui.collisions.model import Blocker, MergeOrder, MergeResult, Work
from mullui.errors import MulluiError

# merge_order gives up searching (and says so) after this many predicted merges.
MERGE_SEARCH_BUDGET = 400


@dataclass
class _Search:
    repo: Path
    cache: CollisionCache
    snaps: dict[str, str]
    budget: int = MERGE_SEARCH_BUDGET
    dead: set[tuple[str, frozenset[str]]] = field(default_factory=set)
    best: tuple[str, ...] = ()
    exhausted: bool = False
    commits: dict[tuple[str, str], str] = field(default_factory=dict)

    def step(self, state: str, agent: str) -> tuple[MergeResult, str]:
        """Predict merging ``agent`` into ``state``; return the result and the new state."""
        self.budget -= 1
        merged = merge_tree(self.repo, state, self.snaps[agent], self.cache)
        if merged.conflict:
            return merged, state
        key = (state, self.snaps[agent])
        if key not in self.commits:
            # An unreferenced merge commit so the next prediction sees the right merge base.
            self.commits[key] = (
                self.cache.git(
                    self.repo,
                    [
                        "commit-tree",
                        "--no-gpg-sign",
                        merged.tree,
                        "-p",
                        state,
                        "-p",
                        self.snaps[agent],
                        "-m",
                        "mullui: predicted merge",
                    ],
                    env=git.git_env(git.SYNTHETIC_COMMIT_ENV),
                )
                .stdout.decode()
                .strip()
            )
        return merged, self.commits[key]

    def run(
        self, state: str, tree: str, remaining: tuple[str, ...], done: tuple[str, ...]
    ) -> tuple[str, ...] | None:
        if len(done) > len(self.best):
            self.best = done
        if not remaining:
            return done
        # Same tree, same agents left: treated as the same dead end even when the history
        # (and so a later merge base) differs; a rare miss, and it keeps the search small.
        dead_key = (tree, frozenset(remaining))
        if dead_key in self.dead:
            return None
        for agent in remaining:
            if self.budget <= 0:
                self.exhausted = True
                return None
            merged, new_state = self.step(state, agent)
            if merged.conflict:
                continue
            rest = tuple(a for a in remaining if a != agent)
            found = self.run(new_state, merged.tree, rest, (*done, agent))
            if found is not None:
                return found
        if not self.exhausted:
            self.dead.add(dead_key)
        return None


def merge_order(
    works: Sequence[Work], target: str, cache: CollisionCache | None = None
) -> MergeOrder:
    """Predict merging every agent into ``target``: a clean order when one exists (the
    given order is tried first), else None and the agents or pairs that block."""
    with session(cache) as c:
        return _merge_order(works, target, c)


def _merge_order(works: Sequence[Work], target: str, cache: CollisionCache) -> MergeOrder:
    repos = {w.repo for w in works}
    if len(repos) > 1:
        raise ValueError(f"merge_order needs agents of one repository, got {sorted(repos)}")
    if not works:
        raise ValueError("merge_order needs at least one agent")
    repo = next(iter(repos))
    target_commit = resolve(repo, [target], cache).get(target)
    if target_commit is None:
        raise MulluiError(f"merge target '{target}' is not a commit in {repo}")
    sets = change_sets(works, cache)
    snaps = {a: cs.snapshot for a, cs in sets.items() if cs.snapshot is not None}
    search = _Search(repo, cache, snaps)
    target_tree = (
        cache.git(repo, ["rev-parse", f"{target_commit}^{{tree}}"]).stdout.decode().strip()
    )
    noop: list[str] = []
    candidates: list[str] = []
    for w in works:
        if w.agent_id not in snaps:
            noop.append(w.agent_id)
            continue
        alone = merge_tree(repo, target_commit, snaps[w.agent_id], cache)
        (noop if not alone.conflict and alone.tree == target_tree else candidates).append(
            w.agent_id
        )
    order = search.run(target_commit, target_tree, tuple(candidates), ())
    blockers: list[Blocker] = []
    if order is None:
        clean_alone: list[str] = []
        for a in candidates:
            alone = merge_tree(repo, target_commit, snaps[a], cache)
            if alone.conflict:
                blockers.append(Blocker(a, None, alone.conflict_files))
            else:
                clean_alone.append(a)
        for i, a in enumerate(clean_alone):
            for b in clean_alone[i + 1 :]:
                if not set(sets[a].files) & set(sets[b].files):
                    continue
                _, after_a = search.step(target_commit, a)
                _, after_b = search.step(target_commit, b)
                ab = merge_tree(repo, after_a, snaps[b], cache)
                ba = merge_tree(repo, after_b, snaps[a], cache)
                if ab.conflict and ba.conflict:
                    files = tuple(sorted(set(ab.conflict_files) | set(ba.conflict_files)))
                    blockers.append(Blocker(a, b, files))
    return MergeOrder(
        target=target,
        target_commit=target_commit,
        order=order,
        mergeable=order if order is not None else search.best,
        noop=tuple(noop),
        blockers=tuple(blockers),
        exhausted=search.exhausted,
    )
