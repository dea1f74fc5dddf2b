"""A keyed DataTable of agents that updates cells in place.

With 100 agents a full rebuild on every event would be visible as lag (and lose the
scroll position); here a change to one agent touches only the cells that differ, and the
rows are rebuilt only when agents are added, removed or reordered.

A row may stand for another agent (a chain's row stands for the step it is at): keys
in ``targets`` select their target, so every action works on a chain row too.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from mullui.tui import literal

Cell = str | Text
#: (key, label, width or None: as wide as the widest cell)
Column = tuple[str, str, int | None]


def _literal(cell: Cell) -> Text:
    return literal.text(cell) if isinstance(cell, str) else cell


#: Shown after the name when the agents come from several repositories.
REPO_COLUMN: Column = ("repo", "repo", None)
REPO_AT = 2


def with_repo(cells: tuple[Cell, ...], repo: Cell | None) -> tuple[Cell, ...]:
    """``cells`` with the repo cell after the name (``repo`` None: no repo column)."""
    return cells if repo is None else (*cells[:REPO_AT], repo, *cells[REPO_AT:])


class AgentRows(DataTable[Cell]):
    """Rows keyed by agent id; columns keyed by name."""

    BINDINGS = [
        Binding("j", "cursor_down", "down", show=False),
        Binding("k", "cursor_up", "up", show=False),
    ]
    DEFAULT_CSS = """
    AgentRows { height: auto; }
    """

    COLUMNS: Sequence[Column] = ()  # (key, label, width or None)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id,
            classes=classes,
            cursor_type="row",
            zebra_stripes=False,
            cursor_foreground_priority="renderable",
        )
        self._order: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._targets: dict[str, str] = {}
        self._columns: tuple[Column, ...] = ()
        self._keep: str | None = None  # the row under the cursor when columns changed

    def on_mount(self) -> None:
        self.set_columns(self.COLUMNS)

    @property
    def column_keys(self) -> list[str]:
        return [key for key, _, _ in self._columns]

    def show_repo_column(self, shown: bool) -> None:
        cols = list(self.COLUMNS)
        if shown:
            cols.insert(REPO_AT, REPO_COLUMN)
        self.set_columns(cols)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Show these columns (a repo column comes and goes); the rows are rebuilt by the
        next :meth:`set_rows`, the cursor kept on its row."""
        if tuple(columns) == self._columns:
            return
        at = self.cursor_row
        if 0 <= at < len(self._order):
            self._keep = self._order[at]
        self.clear(columns=True)
        self._columns = tuple(columns)
        self._order = []
        self._cells = {}
        for key, label, width in self._columns:
            self.add_column(label, key=key, width=width)

    @property
    def selected_id(self) -> str | None:
        """The agent the cursor is on (for a chain row: the step it stands for)."""
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self.target(self._order[self.cursor_row])

    def target(self, row_key: str) -> str:
        return self._targets.get(row_key, row_key)

    @property
    def ids(self) -> list[str]:
        """The agents with a row of their own, top to bottom."""
        if not self._targets:
            return list(self._order)
        return [k for k in self._order if k not in self._targets]

    @property
    def row_keys(self) -> list[str]:
        return list(self._order)

    def set_rows(
        self,
        rows: Sequence[tuple[str, tuple[Cell, ...]]],
        targets: dict[str, str] | None = None,
    ) -> bool:
        """Show ``rows`` (row key, cells); ``targets`` maps a row key that is not an
        agent to the agent it stands for.  Returns True when the rows were rebuilt."""
        self._targets = targets or {}
        # A DataTable parses a str cell as markup: agent text is shown literally instead.
        rows = [(rid, tuple(_literal(c) for c in cells)) for rid, cells in rows]
        order = [rid for rid, _ in rows]
        if order != self._order:
            at = self.cursor_row
            keep = self._order[at] if 0 <= at < len(self._order) else self._keep
            self._keep = None
            self.clear()
            self._order = order
            self._cells = {}
            for rid, cells in rows:
                self.add_row(*cells, key=rid)
                self._cells[rid] = cells
            if keep in self._cells:
                self.move_cursor(row=order.index(keep), animate=False)
            elif order and at > 0:
                # The row under the cursor left (acked, merged): the next one takes its
                # place, as in a mail client; clear() alone would jump back to the top.
                self.move_cursor(row=min(at, len(order) - 1), animate=False)
            # Textual 8.2: a widget caches its box model by layout generation, and a
            # DataTable that gains rows does not start a new one, so an auto-height parent
            # kept the old height and cut the last row off (seen at 120x30).
            self.call_after_refresh(self.refresh, layout=True)
            return True
        for rid, cells in rows:
            old = self._cells.get(rid)
            if old == cells:
                continue
            for (ckey, _, width), new, was in zip(self._columns, cells, old or (), strict=False):
                if new != was:
                    self.update_cell(rid, ckey, new, update_width=width is None)
            self._cells[rid] = cells
        return False

    def select(self, agent_id: str) -> bool:
        if agent_id not in self._order:
            return False
        self.move_cursor(row=self._order.index(agent_id), animate=False)
        return True
