"""Pick how long to snooze an inbox item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from mullui.model import Agent
from mullui.tui import literal
from mullui.tui.host import Host


@dataclass(frozen=True)
class SnoozeChoice:
    """Exactly one of: minutes, until (a UTC time), until_change."""

    label: str
    minutes: int | None = None
    until: datetime | None = None
    until_change: bool = False


def tomorrow_nine(now: datetime) -> datetime:
    """9:00 tomorrow in the local time zone of ``now``."""
    local = now.astimezone()
    day = (local + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=local.tzinfo)


def choices(now: datetime) -> list[SnoozeChoice]:
    return [
        SnoozeChoice("15 minutes", minutes=15),
        SnoozeChoice("1 hour", minutes=60),
        SnoozeChoice("4 hours", minutes=240),
        SnoozeChoice(f"tomorrow 9:00 ({tomorrow_nine(now):%a %d %b})", until=tomorrow_nine(now)),
        SnoozeChoice("until it changes", until_change=True),
    ]


class SnoozeScreen(ModalScreen[SnoozeChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent_name: str, now: datetime) -> None:
        super().__init__(classes="dialog-screen")
        self.agent_name = agent_name
        self.options = choices(now)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="snooze"):
            yield Label(literal.text(f"Snooze {self.agent_name}"), classes="dialog-title")
            yield OptionList(
                *[Option(c.label, id=str(i)) for i, c in enumerate(self.options)],
                id="snooze-options",
            )
            yield Label("enter choose · escape cancel", classes="dialog-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.options[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


def snooze(host: Host, a: Agent, choice: SnoozeChoice) -> None:
    host.blocking(
        "snooze",
        host.actions.snooze,
        a.id,
        agent_id=a.id,
        minutes=choice.minutes,
        until=choice.until,
        until_change=choice.until_change,
        done=lambda _: f"{a.name} snoozed: {choice.label}",
    )


def pick_snooze(host: Host, a: Agent) -> None:
    """S: pick how long, then snooze."""

    def chosen(choice: SnoozeChoice | None) -> None:
        if choice is not None:
            snooze(host, a, choice)

    host.show(SnoozeScreen(a.name, host.now()), chosen)
