"""The inbox (agents that need the human) and the collapsible group of snoozed items.

Each row: state, name, how long it has waited, and why — the question, the tool call,
the last message, the exit code, what a stuck follow-up waits for, or the files a new
conflict with another agent is in (``⚠ conflict``).  Order comes from ``model.inbox``:
blocked first, then failed, stuck and conflicts, then done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from mullui.model import Agent
from mullui.tui import cells
from mullui.tui.widgets.agent_rows import AgentRows, Cell


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class InboxTable(AgentRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("waited", "waited", 6),
        ("why", "why", None),
    )

    def show(
        self, agents: Sequence[Agent], now: datetime, colours: dict[str, str], why_width: int
    ) -> bool:
        rows: list[tuple[str, tuple[Cell, ...]]] = [
            (
                a.id,
                (
                    cells.inbox_state_cell(a, colours),
                    Text(cells.one_line(a.name, 24), style="bold"),
                    cells.waited(a, now),
                    clip(cells.why(a), why_width),
                ),
            )
            for a in agents
        ]
        return self.set_rows(rows)


class SnoozedTable(AgentRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("wakes", "wakes", None),
        ("why", "why", None),
    )

    def show(
        self, agents: Sequence[Agent], now: datetime, colours: dict[str, str], why_width: int
    ) -> bool:
        rows: list[tuple[str, tuple[Cell, ...]]] = [
            (
                a.id,
                (
                    cells.inbox_state_cell(a, colours, snoozed=True),
                    cells.one_line(a.name, 24),
                    cells.wake_time(a, now),
                    clip(cells.why(a), why_width),
                ),
            )
            for a in agents
        ]
        return self.set_rows(rows)
