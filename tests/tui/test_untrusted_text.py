"""Agent, git and file-name text is untrusted input (issue 20, item 1 and item 4 in the
TUI): it is shown literally everywhere, never parsed as markup, never clickable, and its
terminal escapes never reach the terminal.  Pilot against real records, and the real app
in a real tmux pane (its window title, its clipboard buffers, real mouse clicks)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.widgets import DataTable, Label
from textual.widgets._toast import Toast

from mullui.paths import Paths
from mullui.store import Store
from mullui.tui.screens.collisions import CollisionRow, CollisionsScreen
from mullui.tui.screens.confirm import ConfirmScreen
from mullui.tui.screens.help import HelpScreen
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.reply import ReplyScreen
from mullui.tui.screens.report import ReportScreen
from mullui.tui.screens.snooze import SnoozeScreen
from mullui.tui.screens.text_view import LogScreen
from mullui.tui.widgets.agent_table import AgentTable
from mullui.tui.widgets.inbox import InboxTable
from mullui.tui.widgets.key_bar import KeyBar
from mullui.tui.widgets.log_view import LogView
from tests.conftest import wait_for
from tests.tui.conftest import make_app, until
from tests.tui.fleet import BRACKETS, CLICK, LINK, OSC, OSC_SHOWN, build_hostile
from tests.tui.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
SIZE = (200, 40)


@pytest.fixture
def hostile(paths: Paths) -> Paths:
    build_hostile(paths)
    return paths


def cell(table: DataTable[Any], row: str, col: str) -> str:
    return str(table.get_cell(row, col))


def shown(widget: Any) -> str:
    return str(widget.render())


def no_action_or_link(value: Any) -> bool:
    """A rendered value carries no ``@click`` action and no link."""
    spans = getattr(value, "spans", ())
    for span in spans:
        style = span.style
        if isinstance(style, Style) and (style.link or style.meta):
            return False
    return True


def spy_screenshot(app: Any) -> list[tuple[Any, ...]]:
    """Record any run of ``app.screenshot`` (what the agent's text asks a click to do)."""
    ran: list[tuple[Any, ...]] = []
    app.action_screenshot = lambda *a, **k: ran.append((a, k))
    return ran


async def test_inbox_list_and_detail_show_agent_text_literally(hostile: Paths) -> None:
    Store(hostile).emit("h2", "note", text=f"submodule {LINK} is left empty")
    # `wrote [/tmp/out/report.md] and done` raised MarkupError on every start.
    app = make_app(hostile, title="mullui · [b]repo[/b] \x1b]0;PWNED\x07")
    ran = spy_screenshot(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        inbox = app.screen.query_one(InboxTable)
        assert inbox.ids[0] == "h2" and set(inbox.ids) == {"h1", "h2", "h3", "h4"}
        assert cell(inbox, "h1", "why") == BRACKETS
        assert cell(inbox, "h2", "why") == CLICK
        assert cell(inbox, "h3", "why") == LINK
        assert cell(inbox, "h4", "why") == OSC_SHOWN
        assert "[link=http://evil]linky" in cell(inbox, "h3", "name")
        agents = app.screen.query_one(AgentTable)
        assert "[link=http://evil]linky" in cell(agents, "h3", "name")
        assert cell(agents, "h2", "branch") == "mullui/[b]clicky[/b]"
        for table in (inbox, agents):
            for row in table.ids:
                for col in table.columns:
                    assert no_action_or_link(table.get_cell(row, col))
        status = shown(app.screen.query_one("#status"))
        assert "mullui · [b]repo[/b] \\x1b]0;PWNED\\x07" in status

        # The selected agent's detail: task, branch, collision files, all literal.
        assert app.main.selected_id == "h2"
        detail = shown(app.screen.query_one("#log-detail"))
        assert CLICK in detail and "⎇ mullui/[b]clicky[/b]" in detail
        assert f"ⓘ submodule {LINK} is left empty" in detail  # its start's notes too
        assert app.main.select_anywhere("h1")
        await pilot.pause()
        detail = shown(app.screen.query_one("#log-detail"))
        assert f"also touched by osc: {CLICK}, src/[red]x[/red].py" in detail

        # Clicking anywhere on the rows runs nothing.
        for y in range(1, 5):
            for x in range(0, inbox.size.width, 3):
                await pilot.click(InboxTable, offset=(x, y))
        await pilot.pause()
        assert ran == []
        assert isinstance(app.screen, MainScreen)
        # The control: a click on a key of the key bar does run its action.
        await pilot.click(KeyBar, offset=key_offset(app.screen.query_one(KeyBar), "help"))
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


def key_offset(bar: KeyBar, word: str) -> tuple[int, int]:
    lines = str(bar.render()).split("\n")
    for y, line in enumerate(lines):
        x = line.find(f" {word}")
        if x >= 0:
            return (x + 1 + 1, y)  # the padding column, then the word
    raise AssertionError(f"{word!r} not in the key bar: {lines}")


async def test_toasts_are_literal(hostile: Paths) -> None:
    store = Store(hostile)
    app = make_app(hostile)
    ran = spy_screenshot(app)
    # Toasts drawn as in a terminal (run_test leaves them out unless asked).
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        # A change to an inbox item: the app's own toast (no notifier in this test).
        for aid, last in (
            ("h2", {"state": "blocked", "question": CLICK}),
            ("h1", {"state": "done", "message": BRACKETS}),
        ):
            store.emit(aid, "state", state="working")
            app.feed.on_change(store.emit(aid, "state", **last), ())
        # The notifier's toast, from another thread, with the agent's text as its body.
        app.feed.notifier_toast("h3", f"{LINK} done", OSC)
        await until(pilot, lambda: len(app._notifications) >= 3)
        messages = {str(n.message) for n in app._notifications}
        assert {CLICK, BRACKETS, OSC_SHOWN} <= messages
        assert not any(n.markup for n in app._notifications)
        toasts = await until(pilot, lambda: list(app.screen.query(Toast)))
        rendered = "\n".join(shown(t) for t in toasts)
        assert CLICK in rendered and f"{LINK} done" in rendered
        assert "\x1b" not in rendered
        for t in toasts:
            assert no_action_or_link(t.render())
        assert ran == []


async def test_dialogs_report_and_log_title_are_literal(hostile: Paths) -> None:
    app = make_app(hostile)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.main.selected_id == "h2"
        await pilot.press("r")
        assert isinstance(app.screen, ReplyScreen)
        labels = [shown(label) for label in app.screen.query(Label)]
        assert "Reply to clicky" in labels and CLICK in labels
        await pilot.press("escape")
        await pilot.press("S")
        assert isinstance(app.screen, SnoozeScreen)
        await pilot.press("escape")

        assert app.main.select_anywhere("h3")
        await pilot.pause()
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        labels = [shown(label) for label in app.screen.query(Label)]
        assert "Stop [link=http://evil]linky[/link]?" in labels
        await pilot.press("n")

        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        title = shown(app.screen.query_one(".screen-title"))
        assert title.startswith("Log · [link=http://evil]linky[/link] · links")
        await pilot.press("escape")

        app.action_report()
        screen = await until(pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen)
        await pilot.pause()
        table = screen.query_one(DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert "[link=http://evil]linky[/link]" in names
        await pilot.press("escape")

        # Collisions: the records' pairs, then a radar answer naming hostile files.
        screen = CollisionsScreen(list(app.agents.values()))
        app.push_screen(screen)
        await pilot.pause()
        table = screen.query_one(DataTable)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == "report ↔ osc" and row[2] == f"{CLICK}, src/[red]x[/red].py"
        screen.show_report(
            ([CollisionRow(("h1", "h3"), f"report ↔ {LINK}", (CLICK,), True)], [OSC])
        )
        await pilot.pause()
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == f"report ↔ {LINK}" and row[2] == CLICK
        assert OSC_SHOWN in shown(screen.query_one("#merge-order"))
        screen.show_error(BRACKETS)
        await pilot.pause()
        assert BRACKETS in shown(screen.query_one("#merge-order"))


async def test_log_keeps_colours_and_drops_every_other_escape(hostile: Paths) -> None:
    app = make_app(hostile)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere("h4")
        log = app.screen.query_one(LogView)
        await until(pilot, lambda: log.lines is not None and log.lines.line_count() == 5)
        await pilot.pause()
        strips = [log.render_line(y) for y in range(5)]
        texts = ["".join(seg.text for seg in strip) for strip in strips]
        assert not any("\x1b" in t or "\x07" in t for t in texts)
        assert texts[0].startswith("green ok plain")
        assert texts[1].startswith("title  and clip  end")  # OSC 0 and 52 gone
        assert texts[2].startswith("see the docs here")
        assert texts[3].startswith("shown hidden after")
        assert texts[4].startswith(f"{CLICK} {LINK}")
        green = next(seg for seg in strips[0] if seg.text.startswith("green"))
        assert green.style is not None and green.style.color is not None  # colour kept
        for strip in strips:
            for seg in strip:
                style = seg.style
                assert style is None or not (style.link or style.conceal or style.meta)


# ---- the real TUI in a real terminal ------------------------------------------------------
def test_real_terminal_title_clipboard_and_clicks(hostile: Paths, tmp_path: Path) -> None:
    """In a tmux pane: the TUI starts and shows the agents' text literally; their OSC 0
    never becomes the pane's title and their OSC 52 never a clipboard buffer (tmux keeps
    both when an application sends them); mouse clicks on the text run nothing."""
    home = Path(os.environ["MULLUI_HOME"])
    user_home = tmp_path / "user-home"  # where app.screenshot would save its file
    user_home.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cmd = (
        f"cd {shlex.quote(str(run_dir))} && "
        f"HOME={shlex.quote(str(user_home))} "
        f"XDG_DOWNLOAD_DIR={shlex.quote(str(user_home))} LANG=C.UTF-8 "
        f"PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m tests.tui.fleet_app {shlex.quote(str(home))} "
        "--frozen --no-supervise 2>&1; echo EXITED $?; sleep 30"
    )
    # tmux takes a pane's OSC 52 into a paste buffer (set-clipboard on) and its OSC 0/2
    # as the pane title: the two places an escape that got through would show.
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g set-clipboard on\n")
    with Terminal("hostile", cmd, size=(200, 40), conf=conf) as term:
        wait_for(lambda: "Inbox" in term.screen(), timeout=30)
        text = term.screen()
        assert "EXITED" not in text and "Traceback" not in text, text
        assert BRACKETS in text and CLICK in text and LINK in text, text
        assert OSC_SHOWN[:30] in text
        # The "osc" agent's log: colours, an OSC 8 link, OSC 0/52, hidden text.
        term.keys("j", "j", "j")  # down the inbox to it (blocked first, then done)
        wait_for(lambda: "see the docs here" in term.screen(), timeout=10)
        assert "shown hidden after" in term.screen()

        # Click every few cells over the inbox rows (an SGR mouse press and release).
        lines = term.screen().splitlines()
        rows = [i for i, line in enumerate(lines) if any(w in line for w in ("clicky", "osc"))]
        assert rows, lines
        for y in rows[:4]:
            for x in range(2, 200, 4):
                term.click(x, y)
        wait_for(lambda: "Inbox" in term.screen(), timeout=5)
        assert "EXITED" not in term.screen()
        assert term.run("show-options", "-gv", "set-clipboard").strip() == "on"
        assert term.run("list-buffers", "-F", "#{buffer_name}").strip() == ""
        assert "PWNED" not in term.run("display-message", "-p", "-t", "0", "#{pane_title}")
        assert not any(p.is_file() for p in user_home.rglob("*")), list(user_home.rglob("*"))
        assert not any(p.is_file() for p in run_dir.rglob("*"))

        # The control: a click on the key bar's "help" does run an action.
        lines = term.screen().splitlines()
        y = max(i for i, line in enumerate(lines) if " help" in line)
        term.click(lines[y].index(" help") + 1, y)
        wait_for(lambda: "Keys" in term.screen(), timeout=10)
