"""Reply: one line typed into the agent's pane, without leaving the TUI."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from mullui.tui import literal


class ReplyScreen(ModalScreen[str | None]):
    """Dismisses with the line to send, or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent_name: str, question: str) -> None:
        super().__init__(classes="dialog-screen")
        self.agent_name = agent_name
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="reply"):
            yield Label(literal.text(f"Reply to {self.agent_name}"), classes="dialog-title")
            if self.question:
                yield Label(literal.text(self.question, one_line=False), classes="dialog-detail")
            yield Input(placeholder="one line, sent with Enter", id="reply-input")
            yield Label("enter send · escape cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
