"""Who takes part in the radar, and the collision engine called on their work."""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Iterable
from pathlib import Path

from mullui.collisions import ChangeSet, CollisionCache, Work, scan
from mullui.errors import MulluiError
from mullui.model import Agent, Collision


def eligible(a: Agent) -> bool:
    """A local agent with a branch whose work is not merged or removed."""
    return a.has_open_work() and Path(a.repo or "").is_dir()


def work_of(a: Agent) -> Work:
    assert a.branch and a.repo and a.base
    wt = Path(a.worktree) if a.worktree else None
    return Work(
        agent_id=a.id,
        repo=Path(a.repo),
        worktree=wt if wt is not None and wt.is_dir() else None,
        branch=a.branch,
        base=a.base,
    )


def _base_ok(w: Work) -> bool:
    r = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{w.base}^{{commit}}"],
        cwd=w.repo,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return r.returncode == 0


def find(
    works: list[Work], cache: CollisionCache | None, changed: Collection[str] | None
) -> tuple[list[Work], dict[str, list[Collision]], dict[str, ChangeSet]]:
    """The engine's scan (collisions and change sets), leaving out agents whose base ref
    is gone (deleted, renamed): one such agent must not blind the radar for everyone else."""
    try:
        return (works, *scan(works, cache, changed))
    except MulluiError:
        kept = [w for w in works if _base_ok(w)]
        if len(kept) == len(works):
            raise
        return (kept, *scan(kept, cache, changed))


def agents_with_work(agents: Iterable[Agent]) -> int:
    """How many agents take part in the radar (for callers deciding whether to bother)."""
    return sum(1 for a in agents if eligible(a))
