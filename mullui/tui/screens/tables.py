"""The cost-to-deliver ledger (report), opened from the palette."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Label

from mullui.tui.widgets.key_bar import KeyBar


def cell(value: Any) -> str | Text:
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


class ReportScreen(Screen[None]):
    """The cost-to-deliver ledger: one row per dict, columns from the keys (first seen
    order), so it shows whatever ``mullui.report`` produces."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        title: str = "Report: cost to deliver",
        empty_text: str = "Nothing to report yet: no agent has run.",
    ) -> None:
        super().__init__()
        self.rows = list(rows)
        self.title_text = title
        self.empty_text = empty_text

    def compose(self) -> ComposeResult:
        yield Label(self.title_text, classes="screen-title")
        yield DataTable(id="report", cursor_type="row", zebra_stripes=True)
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#report", DataTable)
        columns: list[str] = []
        for r in self.rows:
            columns.extend(k for k in r if k not in columns)
        if not columns:
            table.add_column("")
            table.add_row(Text(self.empty_text, style="dim"))
        else:
            for c in columns:
                table.add_column(c.replace("_", " "), key=c)
            for r in self.rows:
                table.add_row(*[cell(r.get(c)) for c in columns])
        table.focus()

    def action_cursor_down(self) -> None:
        self.query_one("#report", DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one("#report", DataTable).action_cursor_up()
