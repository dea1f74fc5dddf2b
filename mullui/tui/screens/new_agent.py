"""New agent: task, profile, base, name; optionally after another agent, or a chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.runtime import worktrees
from mullui.tui import literal
from mullui.tui.host import Host


@dataclass(frozen=True)
class NewAgent:
    task: str
    profile: str
    base: str | None
    name: str | None
    after: str | None = None  # predecessor agent id: starts when that one is done
    chain: str | None = None  # a [chains.NAME] of the config: its steps get the task


NONE = "none"


class NewAgentScreen(ModalScreen[NewAgent | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "start", "Start", priority=True),
    ]

    def __init__(
        self,
        profiles: list[str],
        default_profile: str,
        base: str | None,
        *,
        after: list[tuple[str, str]] | None = None,
        chains: list[str] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        """``after``: (label, agent id) of agents a new one may follow, newest first;
        ``notes``: what to know before starting (uncommitted files it will not see)."""
        super().__init__(classes="dialog-screen")
        self.profiles = profiles or [default_profile]
        self.default_profile = (
            default_profile if default_profile in self.profiles else self.profiles[0]
        )
        self.base = base
        self.after = after or []
        self.chains = chains or []
        self.notes = notes or []

    def compose(self) -> ComposeResult:
        # Scrolls when the terminal is too short for it (After/Chain on 80x24).
        with VerticalScroll(classes="dialog", id="new-agent"):
            yield Label("New agent", classes="dialog-title")
            yield Label("Task", classes="field-label")
            yield TextArea(id="task", soft_wrap=True, show_line_numbers=False)
            with Horizontal(classes="fields"):
                with Vertical(classes="field"):
                    yield Label("Profile", classes="field-label")
                    yield Select(
                        [(literal.text(p), p) for p in self.profiles],
                        value=self.default_profile,
                        allow_blank=False,
                        id="profile",
                    )
                with Vertical(classes="field"):
                    yield Label("Base", classes="field-label")
                    yield Input(value=self.base or "", placeholder="current branch", id="base")
                with Vertical(classes="field"):
                    yield Label("Name", classes="field-label")
                    yield Input(placeholder="from the task", id="name")
            if self.after or self.chains:
                with Horizontal(classes="fields"):
                    if self.after:
                        with Vertical(classes="field"):
                            yield Label("After (starts when it is done)", classes="field-label")
                            yield Select(
                                [
                                    ("no: start now", NONE),
                                    *[(literal.text(label), i) for label, i in self.after],
                                ],
                                value=NONE,
                                allow_blank=False,
                                id="after",
                            )
                    if self.chains:
                        with Vertical(classes="field"):
                            yield Label("Chain (its steps get the task)", classes="field-label")
                            yield Select(
                                [("no chain", NONE), *[(literal.text(c), c) for c in self.chains]],
                                value=NONE,
                                allow_blank=False,
                                id="chain",
                            )
            if self.notes:
                yield Static(
                    literal.text("\n".join(self.notes), one_line=False),
                    id="new-agent-notes",
                    classes="dialog-notes",
                )
            yield Label("", id="new-agent-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#task", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.dismiss(None)

    def action_start(self) -> None:
        task = self.query_one("#task", TextArea).text.strip()
        if not task:
            self.query_one("#new-agent-error", Label).update("A task is needed: what should it do?")
            self.query_one("#task", TextArea).focus()
            return
        profile = self.query_one("#profile", Select).value
        base = self.query_one("#base", Input).value.strip() or None
        name = self.query_one("#name", Input).value.strip() or None
        after = self._choice("#after")
        chain = self._choice("#chain")
        if after and chain:
            self.query_one("#new-agent-error", Label).update(
                "Pick either After or a Chain: a chain orders its own steps."
            )
            return
        self.dismiss(NewAgent(task, str(profile), base, name, after=after, chain=chain))

    def _choice(self, selector: str) -> str | None:
        found = self.query(selector)
        if not found:
            return None
        value = found.first(Select).value
        return None if value in (NONE, Select.BLANK) else str(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Defaults(NamedTuple):
    profiles: list[str]
    base: str | None  # the current branch
    chains: list[str]
    notes: list[str]  # worktrees.spawn_notes: what the agent will not see


def new_agent(host: Host) -> None:
    """n: the dialog (profiles, the current branch and chains read on a thread), then
    spawn; the new agent is shown selected."""
    host.blocking("new agent", new_agent_defaults, host.actions, then=lambda d: _open(host, d))


def new_agent_defaults(actions: Any) -> Defaults:
    """The profiles, the current branch, the config's chains and what a spawn from here
    would leave out (blocks: git, config)."""
    try:
        chains = sorted(actions.config.chains)
    except (AttributeError, MulluiError):
        chains = []  # a broken config is reported by spawn itself, in one line
    try:
        notes = worktrees.spawn_notes(actions.cwd, None)[1]
    except (AttributeError, MulluiError):
        notes = []  # not in a repository (or no commits): spawn says so itself
    return Defaults(actions.profile_names(), actions.current_branch(), chains, notes)


def _open(host: Host, defaults: Defaults) -> None:
    profiles, base, chains, notes = defaults
    # Newest first: a follow-up usually follows what was just started.
    after = [
        (f"{a.name} ({a.state.value})", a.id)
        for a in sorted(host.agents.values(), key=lambda a: a.created_at, reverse=True)
        if a.state not in (State.STOPPED,) and not a.removed
    ]

    def start(req: NewAgent | None) -> None:
        if req is None:
            return
        host.blocking(
            "new agent",
            host.actions.spawn,
            req.task,
            agent=None if req.chain else req.profile,
            name=req.name,
            base=req.base,
            after=req.after,
            chain=req.chain,
            then=host.started,
            done=_started_text,
        )

    host.show(
        NewAgentScreen(
            profiles, host.default_profile, base, after=after, chains=chains, notes=notes
        ),
        start,
    )


def _started_text(a: Agent) -> str:
    return f"started {a.name}" if a.state is not State.QUEUED else f"queued {a.name}: {a.cause}"
