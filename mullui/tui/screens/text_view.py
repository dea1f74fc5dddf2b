"""Full-screen views of text: the agent's diff against its base, and its full log."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Label, RichLog

from mullui.model import Agent
from mullui.tui import literal
from mullui.tui.host import Host
from mullui.tui.widgets.key_bar import KeyBar
from mullui.tui.widgets.log_view import LogView

MAX_DIFF_LINES = 20_000


def diff_line(line: str) -> Text:
    """Colour a plain unified-diff line (when the diff came without git's colours)."""
    line = literal.visible(line)
    if line.startswith(("+++", "---", "diff ", "index ")):
        return Text(line, style="bold")
    if line.startswith("+"):
        return Text(line, style="green")
    if line.startswith("-"):
        return Text(line, style="red")
    if line.startswith("@@"):
        return Text(line, style="cyan")
    return Text(line)


class DiffScreen(Screen[None]):
    """The agent's changes against its base, coloured (git's own colours)."""

    BINDINGS = [
        Binding("escape,q,d", "app.pop_screen", "Back"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
    ]

    def __init__(self, agent_name: str, title: str) -> None:
        super().__init__()
        self.agent_name = agent_name
        self.title_text = title
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Label(literal.text(self.title_text), classes="screen-title")
        yield RichLog(id="diff", max_lines=MAX_DIFF_LINES, wrap=False, auto_scroll=False)
        yield KeyBar()

    def show_diff(self, diff: str) -> None:
        view = self.query_one("#diff", RichLog)
        view.clear()
        self.loaded = True
        if not diff.strip():
            view.write(Text("No changes against the base yet.", style="dim"))
            return
        lines = diff.splitlines()
        coloured = "\x1b[" in diff
        for line in lines[:MAX_DIFF_LINES]:
            view.write(literal.from_ansi(line) if coloured else diff_line(line), scroll_end=False)
        if len(lines) > MAX_DIFF_LINES:
            view.write(
                Text(f"… {len(lines) - MAX_DIFF_LINES} more lines: use git diff", style="dim")
            )
        view.scroll_home(animate=False)

    def action_scroll(self, lines: int) -> None:
        view = self.query_one("#diff", RichLog)
        view.scroll_relative(y=lines, animate=False)


class LogScreen(Screen[None]):
    """The agent's full log, following the tail."""

    BINDINGS = [Binding("escape,q,l", "app.pop_screen", "Back")]

    def __init__(self, title: str, path: Path | None) -> None:
        super().__init__()
        self.title_text = title
        self.path = path

    def compose(self) -> ComposeResult:
        yield Label(literal.text(self.title_text), classes="screen-title")
        yield LogView(self.path, id="full-log", empty_text="No output yet.")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(LogView).focus()


def log(host: Host, a: Agent) -> None:
    """l: the agent's full log."""
    host.show(LogScreen(f"Log · {a.name} · {a.task[:80]}", host.log_path(a)))


def diff(host: Host, a: Agent) -> None:
    """d: the agent's diff against its base (git, on a thread; closed again on failure)."""
    screen = DiffScreen(
        a.name, f"Diff · {a.name} · {a.branch or '?'} against {a.base or 'its base'}"
    )
    host.show(screen)
    host.blocking(
        "diff",
        host.actions.diff,
        a.id,
        color=True,
        then=screen.show_diff,
        on_error=lambda: host.close(screen),
    )
