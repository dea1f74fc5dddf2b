"""The main screen: the inbox, the snoozed group, all agents, and the selected agent's log.

It only renders what the App hands down (``show``: the agents, the theme's colours, the
title; a function for an agent's log path) and turns keys into App actions; it never
calls tmux or git, and never imports the app (it posts a message when it needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Collapsible, DataTable, Label, Static

from mullui.model import Agent, State
from mullui.model import inbox as inbox_of
from mullui.model import snoozed as snoozed_of
from mullui.tui import cells
from mullui.tui.literal import visible
from mullui.tui.messages import RenderWanted
from mullui.tui.widgets.agent_rows import AgentRows
from mullui.tui.widgets.agent_table import AgentTable, chain_positions, table_order
from mullui.tui.widgets.inbox import InboxTable, SnoozedTable
from mullui.tui.widgets.key_bar import KeyBar
from mullui.tui.widgets.log_view import LogView
from mullui.tui.widgets.status_bar import StatusBar

#: How long the selection must rest before the log pane switches to it.
SELECT_SETTLE_S = 0.06

HOWTO = """\
[b]No agents yet.[/b]

  [b $accent]n[/]        start one here: a task, a profile, a base branch
  [b]mullui spawn "fix the flaky test" --agent claude[/]   from any shell in this repo
  [b]mullui demo[/]    a sandbox with scripted agents: see it all work, no API key

Agents that finish or need a decision land in the [b]inbox[/] at the top,
blocked first.  [b $accent]?[/] shows every key, [b $accent]ctrl+p[/] every command.
Quitting ([b $accent]q[/]) never stops agents."""


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "app.attach", "attach", priority=True),
        Binding("r", "app.reply", "reply"),
        Binding("s", "app.snooze", "snooze 30m"),
        Binding("S", "app.snooze_pick", "snooze…"),
        Binding("w", "app.wake", "wake"),
        Binding("n", "app.new_agent", "new"),
        Binding("l", "app.log", "log"),
        Binding("d", "app.diff", "diff"),
        Binding("a", "app.ack", "ack"),
        Binding("m", "app.merge", "merge"),
        Binding("x", "app.stop", "stop"),
        Binding("R", "app.resume", "resume"),
        Binding("tab", "app.focus_next", "focus", show=True),
        Binding("shift+tab", "app.focus_previous", "focus back", show=False),
        Binding("question_mark", "app.help", "help"),
        Binding("ctrl+p", "app.command_palette", "commands"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self, log_path: Callable[[Agent], Path | None]) -> None:
        """``log_path(agent)``: where its log is (None: nowhere to read)."""
        super().__init__(id="main")
        self.log_path = log_path
        self.selected_id: str | None = None
        self._colours: dict[str, str] = dict(cells.FALLBACK_COLOURS)
        self._agents: dict[str, Agent] = {}
        self._shown_log: str | None = None
        self._first_show = True
        self._detail_timer: Timer | None = None
        self._await_first_item = False
        self._touched = False  # the human pressed a key or clicked here

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Container(id="body"):
            with Vertical(id="left"):
                yield Label("Inbox", id="inbox-title", classes="section-title")
                yield InboxTable(id="inbox")
                yield Static("", id="inbox-empty", classes="hint")
                with Collapsible(title="snoozed (0)", id="snoozed-group", collapsed=True):
                    yield SnoozedTable(id="snoozed")
                yield Label("Agents", id="agents-title", classes="section-title")
                yield AgentTable(id="agents")
                yield Static(HOWTO, id="howto")
            with Vertical(id="log-pane"):
                yield Label("Log", id="log-title", classes="section-title")
                yield Static("", id="log-detail", classes="hint")
                yield LogView(id="log", empty_text="Select an agent to follow its output.")
        yield KeyBar()

    def on_mount(self) -> None:
        # A render asked for before the screen was composed was skipped: draw now.
        self.post_message(RenderWanted())

    # ---- rendering ------------------------------------------------------------------
    def show(
        self, agents: Sequence[Agent], now: datetime, colours: dict[str, str], title: str
    ) -> None:
        """Render ``agents`` (all of them, current) with the theme's state ``colours``;
        cheap when little changed."""
        self._colours = colours
        self._agents = {a.id: a for a in agents}
        items = inbox_of(agents, now)
        sleeping = snoozed_of(agents, now)
        snoozed_ids = {a.id for a in sleeping}
        empty = not agents
        self.set_class(empty, "-empty")

        repos = cells.repo_labels(agents)
        if repos:
            title = f"{title} ({len(repos)} repos)"
        self.query_one(StatusBar).show(agents, now, colours, title, self.size.width)

        inbox = self.query_one(InboxTable)
        why_width = max(20, self.query_one("#left").size.width - 40)
        if repos:
            why_width = max(20, why_width - 2 - max(len(r) for r in repos.values()))
        inbox.show(items, now, colours, why_width, repos)
        inbox.display = bool(items)
        title = f"Inbox {len(items)}" if items else "Inbox"
        cut = sum(1 for a in items if a.is_interrupted())
        if cut:  # one line for all of them, and the key that resumes them
            were = "agent was" if cut == 1 else "agents were"
            title += f" · {cut} {were} interrupted by a restart: R resumes them"
        self.query_one("#inbox-title", Label).update(title)
        working = sum(1 for a in agents if a.state in (State.WORKING, State.STARTING))
        hint = "Nothing needs you right now."
        if working:
            hint += f" {working} working; they land here when they finish or ask."
        self.query_one("#inbox-empty", Static).update(hint)
        self.query_one("#inbox-empty").display = not items and not empty

        group = self.query_one("#snoozed-group", Collapsible)
        group.display = bool(sleeping)
        group.title = f"snoozed ({len(sleeping)})"
        self.query_one(SnoozedTable).show(sleeping, now, colours, why_width, repos)

        table = self.query_one(AgentTable)
        table.show(agents, now, colours, snoozed_ids, repos)
        if table.has_focus and table.selected_id not in (None, self.selected_id):
            # The cursor rests on a chain's row and the chain moved on to its next step.
            self.select(table.selected_id)
        self.query_one("#agents-title", Label).update(
            f"Agents {len(agents)}" if agents else "Agents"
        )

        if self._first_show and agents and not items and not self._touched:
            # Agents were just started (the demo, a fresh spawn): until the human moves,
            # the first item to land in the inbox is selected as if it had been there.
            self._first_show = False
            self._await_first_item = True
        if self._await_first_item and items and not self._touched:
            self._await_first_item = False
            self._first_show = True
        if self._first_show and agents:
            self._first_show = False
            # SPEC: on start, when the inbox holds items, the first one is selected.
            if items:
                inbox.focus()
                inbox.move_cursor(row=0)
                self.select(items[0].id, now=True)
            else:
                table.focus()
                self.select(table_order(agents)[0].id, now=True)
        elif self.selected_id and self.selected_id not in self._agents:
            self.selected_id = None
            self._show_selected()
        else:
            self._show_detail()

    def select(self, agent_id: str | None, *, now: bool = False) -> None:
        if agent_id == self.selected_id:
            return
        self.selected_id = agent_id
        # Holding j through 100 agents must not re-layout the log pane on every row:
        # the cursor moves at once, the log and details follow when the keys pause.
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if now:
            self._show_selected()
        else:
            self._detail_timer = self.set_timer(SELECT_SETTLE_S, self._show_selected)

    def select_anywhere(self, agent_id: str) -> bool:
        """Move the cursor to ``agent_id`` (inbox first, then the agents table)."""
        for table_type in (InboxTable, SnoozedTable, AgentTable):
            table = self.query_one(table_type)
            if table.display and agent_id in table.ids:
                table.select(agent_id)
                if table_type is SnoozedTable:
                    # A collapsed group's table cannot take focus until it is laid out.
                    self.query_one("#snoozed-group", Collapsible).collapsed = False
                    self.call_after_refresh(table.focus)
                else:
                    table.focus()
                self.select(agent_id, now=True)
                return True
        return False

    def _show_selected(self) -> None:
        self._detail_timer = None
        a = self._agents.get(self.selected_id) if self.selected_id else None
        log = self.query_one(LogView)
        if a is None:
            log.show_file(None, "Select an agent to follow its output.")
        else:
            log.show_file(self.log_path(a), f"No output from {visible(a.name)} yet.")
        self._show_detail()

    def _show_detail(self) -> None:
        a = self._agents.get(self.selected_id) if self.selected_id else None
        title = self.query_one("#log-title", Label)
        detail = self.query_one("#log-detail", Static)
        if a is None:
            title.update("Log")
            detail.update("")
            return
        title.update(Text.assemble("Log · ", (visible(a.name), "bold"), f"  {visible(a.profile)}"))
        detail.update(self.describe(a))

    def describe(self, a: Agent) -> Text:
        """The selected agent in a few lines: task, state and cause, notes, chain,
        collisions."""
        t = Text()
        t.append_text(cells.state_cell(a.state, self._colours))
        t.append(f" {visible(a.cause)}", style="dim")
        if a.branch:
            t.append(f"  ⎇ {visible(a.branch)}", style="dim")
        t.append("\n")
        t.append(cells.one_line(a.task, 300))
        for note in a.notes:  # how it started: told here too, for one started from the queue
            t.append(f"\nⓘ {cells.one_line(note, 300)}", style="italic")
        if a.chain:
            members = [m for m in self._agents.values() if m.chain == a.chain]
            pos = chain_positions(members)
            members.sort(key=lambda m: pos[m.id][0])
            t.append(f"\n⛓ {visible(a.chain_name or 'chain')}: ", style="bold")
            for i, m in enumerate(members):
                if i:
                    t.append(" → ")
                style = "bold underline" if m.id == a.id else ""
                t.append(f"{cells.SYMBOL[m.state]} {visible(m.name)}", style=style)
        if a.collisions:
            names = {m.id: m.name for m in self._agents.values()}
            for c in a.collisions:
                kind = "⚠ conflicts with" if c.conflict else "≈ also touched by"
                files = ", ".join(c.files[:3]) + (" …" if len(c.files) > 3 else "")
                t.append(
                    f"\n{kind} {visible(names.get(c.agent, c.agent))}: {visible(files)}",
                    style="bold red" if c.conflict else "yellow",
                )
        return t

    # ---- events -----------------------------------------------------------------------
    def on_key(self) -> None:
        self._touched = True

    def on_click(self) -> None:
        self._touched = True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if isinstance(table, AgentRows) and table.has_focus and event.row_key.value:
            self.select(table.target(str(event.row_key.value)))

    def on_descendant_focus(self) -> None:
        focused = self.focused
        if isinstance(focused, AgentRows) and focused.selected_id:
            self.select(focused.selected_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # A mouse click on a row selects it; a second click (or enter) attaches.
        event.stop()

    def on_resize(self) -> None:
        self.post_message(RenderWanted())

    def log_visible_path(self) -> Path | None:
        return self.query_one(LogView).path
