"""What ``mullui collisions`` shows: pairs, conflicts with moved bases, merge orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mullui.collisions import (
    BaseDrift,
    ChangeSet,
    CollisionCache,
    MergeOrder,
    Work,
    base_drift,
    merge_order,
)
from mullui.context import Context
from mullui.model import Agent, Collision, GuardHit, iso
from mullui.radar.index import publish
from mullui.radar.members import eligible, find, work_of
from mullui.radar.refresh import record

SHOWN_FILES = 5  # files named in one line of text before "and N more"


@dataclass(frozen=True)
class Pair:
    """Two agents whose change sets share files."""

    a: Agent
    b: Agent
    files: tuple[str, ...]
    conflict: bool
    #: what the collision guard did about this pair: (the agent that was about to edit, hit)
    guard: tuple[tuple[Agent, GuardHit], ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "agents": [self.a.id, self.b.id],
            "names": [self.a.name, self.b.name],
            "files": list(self.files),
            "conflict": self.conflict,
            "base": None,
        }
        if self.guard:
            d["guard"] = [
                {"agent": who.id, "file": g.file, "action": g.action, "at": iso(g.at)}
                for who, g in self.guard
            ]
        return d

    def guard_text(self) -> str:
        """`` (guard: beta warn on src/app.py)`` or nothing."""
        if not self.guard:
            return ""
        said = ", ".join(f"{who.name} {g.action} on {g.file}" for who, g in self.guard)
        return f" (guard: {said})"


@dataclass
class Report:
    """What ``mullui collisions`` shows: pairs, conflicts with moved bases, merge orders."""

    pairs: list[Pair] = field(default_factory=list)
    drifts: list[tuple[Agent, BaseDrift]] = field(default_factory=list)
    plans: list[tuple[list[Agent], MergeOrder]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """Pairs of agents, then each agent against its base where merging would conflict
        (``agents`` holds one id, ``base`` names the base, ``behind`` counts its commits
        since the fork)."""
        out = [p.to_json() for p in self.pairs]
        for a, d in self.drifts:
            out.append(
                {
                    "agents": [a.id],
                    "names": [a.name],
                    "files": list(d.conflict_files or d.files),
                    "conflict": d.conflict,
                    "base": d.base,
                    "behind": d.behind,
                }
            )
        return out

    def to_text(self) -> str:
        if not self.pairs and not self.drifts:
            return "no collisions: no two agents touch the same files"
        lines: list[str] = []
        for p in self.pairs:
            kind = "CONFLICT" if p.conflict else "overlap"
            lines.append(f"{kind:8}  {p.a.name} <-> {p.b.name}: {_names(p.files)}{p.guard_text()}")
        for a, d in self.drifts:
            moved = f"{d.behind} commit{'s' if d.behind != 1 else ''} ahead"
            lines.append(
                f"{'CONFLICT':8}  {a.name} <-> {d.base} ({moved}): "
                f"{_names(d.conflict_files or d.files)}"
            )
        for members, plan in self.plans:
            lines.append(advice(members, plan))
        return "\n".join(lines)


def _names(files: Sequence[str]) -> str:
    more = len(files) - SHOWN_FILES
    shown = ", ".join(files[:SHOWN_FILES])
    return f"{shown} and {more} more" if more > 0 else shown


def collisions_report(ctx: Context) -> Report:
    """Refresh the records and describe every pair, base conflict and merge order."""
    local = [a for a in ctx.store.all() if a.host is None]
    members = [a for a in local if eligible(a)]
    cache = CollisionCache()
    try:
        works = [work_of(a) for a in members]
        found: dict[str, list[Collision]] = {}
        sets: dict[str, ChangeSet] = {}
        if works:
            works, found, sets = find(works, cache, None)
        record(ctx, local, found)
        publish(ctx, local, sets)
        by_id = {a.id: a for a in members}
        rep = Report()
        for a in members:
            for c in found.get(a.id, ()):
                if a.id < c.agent:
                    pa, pb = sorted((a, by_id[c.agent]), key=lambda x: (x.created_at, x.id))
                    rep.pairs.append(Pair(pa, pb, c.files, c.conflict, _hits(pa, pb)))
        paired = {frozenset((p.a.id, p.b.id)) for p in rep.pairs}
        for a in members:  # guarded pairs the radar finds no overlap for (an edit refused)
            for other in dict.fromkeys(g.agent for g in a.guarded):
                if other in by_id and frozenset((a.id, other)) not in paired:
                    paired.add(frozenset((a.id, other)))
                    pa, pb = sorted((a, by_id[other]), key=lambda x: (x.created_at, x.id))
                    hits = _hits(pa, pb)
                    files = tuple(sorted({g.file for _, g in hits}))
                    rep.pairs.append(Pair(pa, pb, files, False, hits))
        rep.pairs.sort(key=lambda p: (not p.conflict, p.a.name, p.b.name))
        for w in works:
            d = base_drift(w, cache)
            if d.conflict:
                rep.drifts.append((by_id[w.agent_id], d))
        involved = {p.a.id for p in rep.pairs} | {p.b.id for p in rep.pairs}
        involved |= {a.id for a, _ in rep.drifts}
        groups: dict[tuple[Path, str], list[Work]] = {}
        for w in works:
            groups.setdefault((w.repo, w.base), []).append(w)
        for (_, base), group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            if len(group) < 2 or not any(w.agent_id in involved for w in group):
                continue
            plan = merge_order(group, base, cache)
            rep.plans.append(([by_id[w.agent_id] for w in group], plan))
        return rep
    finally:
        cache.close()


def _hits(a: Agent, b: Agent) -> tuple[tuple[Agent, GuardHit], ...]:
    """What the guard did between ``a`` and ``b``, in time order."""
    hits = [(a, g) for g in a.guarded if g.agent == b.id]
    hits += [(b, g) for g in b.guarded if g.agent == a.id]
    return tuple(sorted(hits, key=lambda h: h[1].at))


def advice(members: Sequence[Agent], plan: MergeOrder) -> str:
    """One line: the merge order into the target that stays clean, or why there is none."""
    names = {a.id: a.name for a in members}
    if plan.order is not None:
        order = ", ".join(names.get(i, i) for i in plan.order)
        return f"merge order into {plan.target} that stays clean: {order or '(nothing to merge)'}"
    if plan.blockers:
        b = plan.blockers[0]
        other = names.get(b.other, b.other) if b.other else plan.target
        why = f"{names.get(b.agent, b.agent)} conflicts with {other} on {_names(b.files)}"
    elif plan.exhausted:
        why = "too many agents to try every order"
    else:
        why = "every order conflicts"
    more = len(plan.blockers) - 1
    tail = f" (and {more} more)" if more > 0 else ""
    return f"no clean merge order into {plan.target}: {why}{tail}"


def merge_advice(ctx: Context, agent: Agent, target: str) -> str | None:
    """For a refused merge of ``agent`` into ``target``: the order of the pending merges
    into ``target`` (this agent's included) that stays clean, when one exists and it is
    not simply "this one first".  None when there is no better order to propose."""
    pending = [
        a
        for a in ctx.store.all()
        if eligible(a) and a.repo == agent.repo and (a.base == target or a.id == agent.id)
    ]
    if len(pending) < 2 or agent.id not in {a.id for a in pending}:
        return None
    plan = merge_order([work_of(a) for a in pending], target)
    if plan.order is None or not plan.order or plan.order[0] == agent.id:
        return None
    if agent.id not in plan.order:
        return None
    return advice(pending, plan)
