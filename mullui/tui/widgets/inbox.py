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
from mullui.tui.widgets.agent_rows import AgentRows, Cell, with_repo


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class _ItemRows(AgentRows):
    """Inbox items: state, name, a time (``when``), why; a repo column when asked."""

    SNOOZED = False

    def when(self, a: Agent, now: datetime) -> str:
        raise NotImplementedError

    def show(
        self,
        agents: Sequence[Agent],
        now: datetime,
        colours: dict[str, str],
        why_width: int,
        repos: dict[str, str] | None = None,
    ) -> bool:
        """``repos``: the repo column's labels (``cells.repo_labels``; empty: no column)."""
        self.show_repo_column(bool(repos))
        rows: list[tuple[str, tuple[Cell, ...]]] = [
            (
                a.id,
                with_repo(
                    (
                        cells.inbox_state_cell(a, colours, snoozed=self.SNOOZED),
                        Text(cells.one_line(a.name, 24), style="" if self.SNOOZED else "bold"),
                        self.when(a, now),
                        clip(cells.why(a), why_width),
                    ),
                    cells.repo_cell(a, repos) if repos else None,
                ),
            )
            for a in agents
        ]
        return self.set_rows(rows)


class InboxTable(_ItemRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("waited", "waited", 6),
        ("why", "why", None),
    )

    def when(self, a: Agent, now: datetime) -> str:
        return cells.waited(a, now)


class SnoozedTable(_ItemRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("wakes", "wakes", None),
        ("why", "why", None),
    )
    SNOOZED = True

    def when(self, a: Agent, now: datetime) -> str:
        return cells.wake_time(a, now)
