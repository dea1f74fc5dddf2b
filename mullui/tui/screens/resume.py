"""Resume (``R``): a stopped or failed agent starts again in its own worktree, continuing
its conversation.  An agent its budget stopped asks for a higher budget first; on an
interrupted agent, when others were interrupted too, it offers to resume them all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.operations.location import Resume
from mullui.tui import literal
from mullui.tui.host import Host


class BudgetScreen(ModalScreen[float | None]):
    """Dismisses with the agent's new budget in dollars, or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, a: Agent, suggested: float) -> None:
        super().__init__(classes="dialog-screen")
        self.agent = a
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        a = self.agent
        with Vertical(classes="dialog", id="budget"):
            yield Label(
                literal.text(f"Resume {a.name} with a higher budget"), classes="dialog-title"
            )
            yield Label(literal.text(a.cause), classes="dialog-detail")
            yield Input(value=f"{self.suggested:.2f}", placeholder="dollars", id="budget-input")
            yield Label("enter resume with this budget · escape cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = float(event.value.strip().lstrip("$"))
        except ValueError:
            self.notify(f"not a number of dollars: {event.value!r}", severity="error")
            return
        spent = self.agent.cost_usd or 0.0
        if not value > spent:
            self.notify(f"give more than it spent (${spent:.2f})", severity="error")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ResumeAllScreen(ModalScreen[str | None]):
    """Dismisses with "all", "one" or None (escape)."""

    BINDINGS = [
        Binding("a", "answer('all')", "All"),
        Binding("o", "answer('one')", "Only this one"),
        Binding("escape,n", "answer(None)", "Cancel"),
    ]

    def __init__(self, a: Agent, others: Sequence[Agent]) -> None:
        super().__init__(classes="dialog-screen")
        self.agent = a
        self.count = len(others) + 1

    def compose(self) -> ComposeResult:
        n = self.count
        with Vertical(classes="dialog", id="resume-all"):
            yield Label(f"{n} agents were interrupted (a restart, a crash)", classes="dialog-title")
            yield Label(
                "Each continues its conversation in its own worktree; max_running holds "
                "(the rest wait queued).",
                classes="dialog-detail",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Resume all {n} (a)", variant="primary", id="all")
                yield Button(literal.text(f"Only {self.agent.name} (o)"), id="one")
                yield Button("Cancel (n)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in ("all", "one") else None)

    def action_answer(self, choice: str | None) -> None:
        self.dismiss(choice)


def _said(a: Agent) -> str:
    if a.state is State.QUEUED:
        return f"{a.name} queued to resume: {a.cause}"
    return f"{a.name} resumed" + (f" on {a.host}" if a.host else "")


def resume(host: Host, a: Agent) -> None:
    """R: start the selected stopped or failed agent again (a budget stop asks for a new
    budget first; an interrupted one offers to resume every interrupted agent)."""
    if a.state not in (State.FAILED, State.STOPPED) or a.removed:
        host.notify(
            f"Only a stopped or failed agent resumes: {a.name} is {a.state.value}",
            severity="warning",
        )
        return
    if a.is_over_budget():
        ask_budget(host, a)
        return
    others = (
        [x for x in interrupted(host.agents.values()) if x.id != a.id] if a.is_interrupted() else []
    )
    if not others:
        _resume_one(host, a, Resume())
        return

    def chosen(choice: str | None) -> None:
        if choice == "all":
            resume_all(host)
        elif choice == "one":
            _resume_one(host, a, Resume())

    host.quiet_for_dialog()
    host.show(ResumeAllScreen(a, others), chosen)


def ask_budget(host: Host, a: Agent) -> None:
    """The budget stop's question: how many dollars this agent may spend now."""
    spent = a.cost_usd or 0.0

    def answered(budget: float | None) -> None:
        if budget is not None:
            _resume_one(host, a, Resume(budget=budget))

    host.quiet_for_dialog()
    host.show(BudgetScreen(a, suggested=max(spent * 2, spent + 1.0)), answered)


def _resume_one(host: Host, a: Agent, how: Resume) -> None:
    host.blocking("resume", host.actions.resume, a.id, how, agent_id=a.id, done=_said)


def interrupted(agents: Any) -> list[Agent]:
    """Agents an interruption failed, oldest first."""
    return sorted((x for x in agents if x.is_interrupted()), key=lambda x: (x.created_at, x.id))


def resume_all(host: Host) -> None:
    """Palette / inbox: resume every interrupted agent (max_running queues the rest)."""
    ids = [x.id for x in interrupted(host.agents.values())]
    if not ids:
        host.notify("No interrupted agents: nothing to resume")
        return
    host.blocking("resume", resume_each, host.actions, ids, done=str, then=lambda _: None)


def resume_each(actions: Any, ids: Sequence[str]) -> str:
    """Resume each agent; one line saying how many resumed, queued, and refused why."""
    resumed = queued = 0
    refused: list[str] = []
    for agent_id in ids:
        try:
            a = actions.resume(agent_id, Resume())
        except MulluiError as e:
            refused.append(e.message)
            continue
        if a.state is State.QUEUED:
            queued += 1
        else:
            resumed += 1
    line = f"resumed {resumed}" + (f", {queued} queued for a free slot" if queued else "")
    if refused:
        line += f"; {len(refused)} refused: {refused[0]}"
    if not resumed and not queued and refused:
        raise MulluiError(line)
    return line
