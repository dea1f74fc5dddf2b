"""All agents: name, profile, state (colour + symbol), time in state, tokens, cost, branch.

Chains stay together (their steps in order) and read as one unit: ``plan ⛓1/2``.  A
collision with another agent shows as ``⚠`` (conflict) or ``≈`` (same files touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from mullui.model import Agent
from mullui.tui import cells
from mullui.tui.widgets.agent_rows import AgentRows, Cell


def chain_positions(agents: Sequence[Agent]) -> dict[str, tuple[int, int]]:
    """agent id -> (position from 1, steps) for agents in a chain."""
    groups: dict[str, list[Agent]] = {}
    for a in agents:
        if a.chain:
            groups.setdefault(a.chain, []).append(a)
    out: dict[str, tuple[int, int]] = {}
    for members in groups.values():
        members.sort(key=lambda a: (a.chain_step or 0, a.created_at, a.id))
        for i, a in enumerate(members, 1):
            out[a.id] = (i, len(members))
    return out


def table_order(agents: Sequence[Agent]) -> list[Agent]:
    """Creation order, except that a chain's steps follow its first step."""
    first: dict[str, tuple[datetime, str]] = {}
    for a in sorted(agents, key=lambda a: (a.created_at, a.id)):
        if a.chain and a.chain not in first:
            first[a.chain] = (a.created_at, a.id)

    def key(a: Agent) -> tuple[datetime, str, int, datetime, str]:
        if a.chain:
            t, i = first[a.chain]
            return (t, i, a.chain_step or 0, a.created_at, a.id)
        return (a.created_at, a.id, 0, a.created_at, a.id)

    return sorted(agents, key=key)


class AgentTable(AgentRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("profile", "profile", None),
        ("since", "for", 6),
        ("usage", "tokens · cost", None),
        ("branch", "branch", None),
    )

    def show(
        self, agents: Sequence[Agent], now: datetime, colours: dict[str, str], snoozed: set[str]
    ) -> bool:
        chains = chain_positions(agents)
        rows: list[tuple[str, tuple[Cell, ...]]] = []
        for a in table_order(agents):
            name = Text(cells.one_line(a.name, 28))
            if a.id in chains:
                pos, total = chains[a.id]
                name.append(f" ⛓{pos}/{total}", style="dim")
            if a.collisions:
                name.append(" ")
                name.append_text(cells.collision_marker(a))
            rows.append(
                (
                    a.id,
                    (
                        cells.state_cell(a.state, colours, snoozed=a.id in snoozed),
                        name,
                        a.profile,
                        cells.since(a, now),
                        cells.usage(a),
                        Text(cells.one_line(a.branch or "–", 40), style="dim"),
                    ),
                )
            )
        return self.set_rows(rows)
