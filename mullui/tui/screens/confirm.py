"""Ask before something that cannot be taken back: stop (merge has its own dialog)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from mullui.model import LIVE, Agent
from mullui.tui import literal
from mullui.tui.host import Host


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (y / the confirm button) or False (n / escape)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, detail: str, confirm: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.detail = detail
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label(literal.text(self.title_text), classes="dialog-title")
            yield Label(literal.text(self.detail, one_line=False), classes="dialog-detail")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def stop(host: Host, a: Agent) -> None:
    """x: ask, then stop the agent (its worktree and branch stay)."""
    if a.state not in LIVE:
        host.notify(f"{a.name} is already {a.state.value}", severity="warning")
        return

    def confirmed(yes: bool | None) -> None:
        if yes:
            host.blocking(
                "stop",
                host.actions.stop,
                a.id,
                agent_id=a.id,
                done=lambda _: f"stopped {a.name}",
            )

    host.show(
        ConfirmScreen(f"Stop {a.name}?", "Its process ends; its worktree and branch stay.", "Stop"),
        confirmed,
    )
