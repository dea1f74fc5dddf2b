"""Recompute collisions and write those that changed into the agents' records."""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from mullui import autostart
from mullui.collisions import ChangeSet, CollisionCache
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, Collision
from mullui.radar.index import publish
from mullui.radar.members import eligible, find, work_of


@dataclass(frozen=True)
class NewConflict:
    """A conflict the records did not know yet; ``agent`` (the newer one) holds its item."""

    agent: str
    other: str
    files: tuple[str, ...]


def refresh(
    ctx: Context,
    cache: CollisionCache | None = None,
    changed: Collection[str] | None = None,
    agents: Sequence[Agent] | None = None,
) -> list[NewConflict]:
    """Recompute every agent's collisions and write those that changed into the records.

    ``changed``: agents that may have changed since the last call with the same ``cache``
    (None: check everyone).  Returns the conflicts that are new.  With fewer than two
    agents that have work no git runs at all (stale markers are still cleared).
    """
    everyone = list(ctx.store.all() if agents is None else agents)
    local = [a for a in everyone if a.host is None]
    works = [work_of(a) for a in local if eligible(a)]
    found: dict[str, list[Collision]] = {}
    sets: dict[str, ChangeSet] = {}
    if len(works) >= 2:
        _, found, sets = find(works, cache, changed)
    elif cache is not None:
        cache.close()  # nothing to compare: drop what the cache holds
    new = record(ctx, local, found)
    publish(ctx, local, sets)
    return new


def record(
    ctx: Context, local: list[Agent], found: dict[str, list[Collision]]
) -> list[NewConflict]:
    by_id = {a.id: a for a in local}
    new: list[NewConflict] = []
    for a in local:
        now = tuple(Collision(c.agent, c.files, c.conflict) for c in found.get(a.id, ()))
        if now == a.collisions:
            continue
        before = {c.agent for c in a.collisions if c.conflict}
        item: dict[str, Any] | None = None
        for c in now:
            other = by_id.get(c.agent)
            if not c.conflict or c.agent in before or other is None:
                continue
            # One inbox item per conflict: the newer agent of the pair holds it (it is the
            # one that walked into the other's work).
            if (a.created_at, a.id) < (other.created_at, other.id):
                continue
            if other.collisions and any(x.agent == a.id and x.conflict for x in other.collisions):
                continue  # the other side already knew: not new
            if item is None:  # one item per agent; the rest stay visible as markers
                item = {"agent": other.id, "name": other.name, "files": list(c.files)}
            new.append(NewConflict(a.id, other.id, c.files))
        data: dict[str, Any] = {"collisions": [c.to_json() for c in now]}
        if item is not None:
            data["conflict"] = item
        ctx.store.emit(a.id, "collisions", **data)
    return new


def supervisor_alive(ctx: Context) -> bool:
    """A supervisor other than this process (TUI or ``mullui watch``) holds the lock, so it
    keeps the records' collisions fresh.  Asked of the kernel's lock table through
    :func:`mullui.autostart.held`, never by taking the lock (a probe holding it for an
    instant would make a watch starting then give up)."""
    return autostart.held_elsewhere(ctx.paths.state_dir)


def refresh_quietly(ctx: Context, agents: Sequence[Agent] | None = None) -> bool:
    """``refresh`` for ``ls``-like commands: a git problem is one line on stderr, never a
    failed listing.  True when something was recomputed."""
    try:
        refresh(ctx, agents=agents)
    except MulluiError as e:
        print(f"mullui: collisions not updated: {e}", file=sys.stderr)
        return False
    return True
