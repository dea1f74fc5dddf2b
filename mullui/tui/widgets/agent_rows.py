"""A keyed DataTable of agents that updates cells in place.

With 100 agents a full rebuild on every event would be visible as lag (and lose the
scroll position); here a change to one agent touches only the cells that differ, and the
rows are rebuilt only when agents are added, removed or reordered.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

Cell = str | Text


class AgentRows(DataTable[Cell]):
    """Rows keyed by agent id; columns keyed by name."""

    BINDINGS = [
        Binding("j", "cursor_down", "down", show=False),
        Binding("k", "cursor_up", "up", show=False),
    ]
    DEFAULT_CSS = """
    AgentRows { height: auto; }
    """

    COLUMNS: Sequence[tuple[str, str, int | None]] = ()  # (key, label, width or None)

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

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    @property
    def selected_id(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    @property
    def ids(self) -> list[str]:
        return list(self._order)

    def set_rows(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> bool:
        """Show ``rows`` (agent id, cells); returns True when the rows were rebuilt."""
        order = [rid for rid, _ in rows]
        if order != self._order:
            keep = self.selected_id
            self.clear()
            self._order = order
            self._cells = {}
            for rid, cells in rows:
                self.add_row(*cells, key=rid)
                self._cells[rid] = cells
            if keep in self._cells:
                self.move_cursor(row=order.index(keep), animate=False)
            return True
        for rid, cells in rows:
            old = self._cells.get(rid)
            if old == cells:
                continue
            for (ckey, _, width), new, was in zip(self.COLUMNS, cells, old or (), strict=False):
                if new != was:
                    self.update_cell(rid, ckey, new, update_width=width is None)
            self._cells[rid] = cells
        return False

    def select(self, agent_id: str) -> bool:
        if agent_id not in self._order:
            return False
        self.move_cursor(row=self._order.index(agent_id), animate=False)
        return True
