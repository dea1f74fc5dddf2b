"""Collisions: pairs of agents whose work touches the same files (conflict or overlap),
agents whose base moved under them into a conflict, and the merge order that stays clean.

It opens at once with what the records know (the supervisor's radar keeps them current),
then asks the radar again (git, in a thread worker) and shows its full answer; the app
hears of it (:class:`~mullui.tui.messages.CollisionsChecked`) and catches up with the
records the radar refreshed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from mullui.errors import MulluiError
from mullui.model import Agent
from mullui.tui import literal
from mullui.tui.messages import CollisionsChecked, SelectAgent
from mullui.tui.widgets.key_bar import KeyBar

FILES_SHOWN = 6


@dataclass(frozen=True)
class CollisionRow:
    """One line of the view: two agents (or an agent and its moved base)."""

    agent_ids: tuple[str, ...]
    between: str  # "fix-login ↔ refactor-db", "api-tests ↔ main (3 commits ahead)"
    files: tuple[str, ...]
    conflict: bool


#: The radar's answer as the view shows it: rows, and merge-order advice per target.
Found = tuple[list[CollisionRow], list[str]]


def rows_from_records(agents: Sequence[Agent]) -> list[CollisionRow]:
    """The pairs the agents' records hold (``Agent.collisions``), each pair once."""
    by_id = {a.id: a for a in agents}
    seen: set[frozenset[str]] = set()
    rows: list[CollisionRow] = []
    for a in sorted(agents, key=lambda a: (a.created_at, a.id)):
        for c in a.collisions:
            key = frozenset((a.id, c.agent))
            if key in seen:
                continue
            seen.add(key)
            other = by_id.get(c.agent)
            rows.append(
                CollisionRow(
                    (a.id, c.agent),
                    f"{a.name} ↔ {other.name if other else c.agent}",
                    tuple(c.files),
                    c.conflict,
                )
            )
    return sorted(rows, key=lambda r: (not r.conflict, r.between))


def rows_from_report(rep: Any) -> Found:
    """``radar.collisions_report``: its pairs and base conflicts as rows, and one line of
    merge-order advice per target (the clean order, or why there is none)."""
    from mullui import radar  # import weight (~40 ms): only this view loads the radar

    rows = [
        CollisionRow((p.a.id, p.b.id), f"{p.a.name} ↔ {p.b.name}", tuple(p.files), p.conflict)
        for p in rep.pairs
    ]
    for a, d in rep.drifts:
        moved = f"{d.behind} commit{'s' if d.behind != 1 else ''} ahead"
        rows.append(
            CollisionRow(
                (a.id,),
                f"{a.name} ↔ {d.base} ({moved})",
                tuple(d.conflict_files or d.files),
                bool(d.conflict),
            )
        )
    advice = [radar.advice(members, plan) for members, plan in rep.plans]
    return rows, advice


def check_with_radar(actions: Any) -> Found:
    """Ask the radar (git merge-tree over every agent's work) for its full answer; blocks."""
    from mullui import radar  # import weight: only this view loads the radar

    return rows_from_report(radar.collisions_report(actions))


def files_cell(files: Sequence[str]) -> str:
    shown = ", ".join(files[:FILES_SHOWN])
    return shown + (f" … and {len(files) - FILES_SHOWN} more" if len(files) > FILES_SHOWN else "")


class CollisionsScreen(Screen[None]):
    """``enter`` on a row goes back to the main screen with that agent selected."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "back"),
        # Priority: the table's own enter (select_cursor) would hide this from the key bar.
        Binding("enter", "select_agent", "select agent", priority=True),
        Binding("j", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", "up", show=False),
    ]

    def __init__(self, agents: Sequence[Agent], check: Callable[[], Found] | None = None) -> None:
        """``check``: asks the radar (blocking: run on a thread), None: records only."""
        super().__init__()
        self.check = check
        self.rows = rows_from_records(agents)
        self.advice: list[str] = []
        self.checked = False  # the radar's own answer is shown

    def compose(self) -> ComposeResult:
        yield Label("Collisions: agents whose work touches the same files", classes="screen-title")
        yield DataTable(id="collisions", cursor_type="row", zebra_stripes=True)
        yield Static("", id="merge-order", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#collisions", DataTable)
        table.add_column("kind", key="kind")
        table.add_column("between", key="between")
        table.add_column("files", key="files")
        self._fill()
        self.query_one("#merge-order", Static).update(
            Text("checking with git for conflicts and a clean merge order…", style="dim italic")
        )
        table.focus()
        if self.check is not None:
            self.run_worker(self._check, thread=True, exclusive=True, group="collisions")

    def _check(self) -> None:
        assert self.check is not None
        try:
            found = self.check()
        except Exception as e:
            # A refusal is one line; anything else is a bug, shown, not a crashed TUI.
            msg = e.message if isinstance(e, MulluiError) else f"internal error: {e!r} (a bug)"
            self.app.call_from_thread(self.show_error, msg)
            return
        self.app.call_from_thread(self._checked, found)

    def _checked(self, found: Found) -> None:
        self.show_report(found)
        # The report refreshed the records (collisions, conflict items): show them now.
        self.post_message(CollisionsChecked())

    def _fill(self) -> None:
        table = self.query_one("#collisions", DataTable)
        table.clear()
        if not self.rows:
            table.add_row(
                Text("none", style="dim"),
                Text("no two agents touch the same files", style="dim"),
                "",
            )
            return
        for r in self.rows:
            kind = (
                Text("⚠ conflict", style="bold red")
                if r.conflict
                else Text("≈ overlap", style="yellow")
            )
            table.add_row(kind, literal.text(r.between), literal.text(files_cell(r.files)))

    def show_report(self, report: Found) -> None:
        """The radar's answer (from a worker): rows, merge order advice."""
        if not self.is_attached:
            return  # closed before git answered
        self.rows, self.advice = report
        self.checked = True
        self._fill()
        text = Text()
        for i, line in enumerate(self.advice):
            if i:
                text.append("\n")
            clean = "stays clean" in line
            text.append("✓ " if clean else "⚠ ", style="green" if clean else "bold red")
            literal.append(text, line)
        if not self.advice:
            if any(r.conflict for r in self.rows):
                hint = "Merge one, then bring the other up to date with it (or resolve by hand)."
            elif self.rows:
                hint = "The overlaps above merge cleanly in any order."
            else:
                hint = "Nothing to order: no two agents' work shares a file."
            text.append(hint, style="dim")
        self.query_one("#merge-order", Static).update(text)

    def show_error(self, message: str) -> None:
        if not self.is_attached:
            return
        self.query_one("#merge-order", Static).update(
            literal.text(f"could not check with git: {message}", "bold red")
        )

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#collisions", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_select_agent(self) -> None:
        table = self.query_one("#collisions", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return
        self.post_message(SelectAgent(self.rows[table.cursor_row].agent_ids[-1]))
