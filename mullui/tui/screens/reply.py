"""Reply: one line typed into the agent's pane, without leaving the TUI."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.tui import cells, literal
from mullui.tui.host import Host


class ReplyScreen(ModalScreen[str | None]):
    """Dismisses with the line to send, or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent_name: str, question: str, hint: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.agent_name = agent_name
        self.question = question
        #: what y / n / other text do (the agent is on its CLI's permission dialog)
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="reply"):
            yield Label(literal.text(f"Reply to {self.agent_name}"), classes="dialog-title")
            if self.question:
                yield Label(literal.text(self.question, one_line=False), classes="dialog-detail")
            yield Input(placeholder="one line, sent with Enter", id="reply-input")
            if self.hint:
                yield Label(literal.text(self.hint), classes="dialog-hint", id="reply-keys")
            yield Label("enter send · escape cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def reply(host: Host, a: Agent) -> None:
    """r: ask for one line (showing the agent's question) and type it into its pane."""

    def send(text: str | None) -> None:
        if text is None:
            return
        if not text.strip():
            host.notify("Nothing sent: the reply was empty", severity="warning")
            return
        host.blocking(
            "reply",
            host.actions.send,
            a.id,
            text,
            agent_id=a.id,
            done=lambda _: f"sent to {a.name}",
        )

    question = cells.why(a) if a.state is State.BLOCKED else ""
    try:
        hint = host.actions.reply_hint(a)
    except MulluiError:
        hint = None
    host.quiet_for_dialog()
    host.show(ReplyScreen(a.name, question, hint), send)
