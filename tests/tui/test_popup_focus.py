"""The watch's desktop popups and an open TUI: a real ``mullui watch`` on a private D-Bus
session bus with the stand-in notification server, real shell agents in tmux, and the TUI
following them (Pilot in-process, or the real app in a real terminal).

What a user sees: while they look at the TUI (its terminal reported focus) a finished
agent shows in the TUI's inbox and no popup comes; when they look elsewhere, or no TUI
runs (closed, or killed -9), the popup comes; clicking it selects the agent in the TUI.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual import events

from mullui import presence
from mullui.model import utcnow
from mullui.paths import Paths, get_paths
from mullui.store import Store
from mullui.supervisor import Cursor
from mullui.tui.widgets.inbox import InboxTable
from tests.conftest import ROOT, wait_for
from tests.support.agents import spawn, wait_state
from tests.support.watch_desktop import (  # the real watch and desktop, shared
    SETTLE_S,
    DesktopThread,
    Watch,
    bus,
    child_env,
    desktop,
    repo,
    start_watch,
)
from tests.tui.conftest import make_app, until
from tests.tui.terminal import Terminal

__all__ = ["bus", "desktop", "repo", "start_watch"]  # fixtures, imported for pytest

pytestmark = pytest.mark.timeout(120)

CLI = Callable[..., Any]


def inbox_ids(app: Any) -> list[str]:
    return list(app.screen.query_one(InboxTable).ids)


def told(agent_id: str) -> bool:
    """The watch decided on this agent's latest change (its cursor saves the seq only
    after the notifier is done with it: popup sent, or held back)."""
    paths = get_paths()
    a = Store(paths).get(agent_id)
    cur = Cursor.load(paths.notify_cursor)
    return a is not None and (cur.seqs or {}).get(agent_id, 0) >= a.seq


def titles(d: DesktopThread) -> list[str]:
    return [c.title for c in d.calls]


async def test_a_focused_tui_holds_the_popup_back_a_blurred_one_does_not_and_a_click_selects(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    start_watch()
    state_dir = get_paths().state_dir
    app = make_app(get_paths(), cwd=repo, clock=utcnow, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: presence.live(state_dir), timeout=10)
        assert not presence.tui_focused(state_dir)  # nothing reported yet: popups go
        app.post_message(events.AppFocus())  # what the driver posts on ESC [ I
        await until(pilot, lambda: presence.tui_focused(state_dir))
        status = await asyncio.to_thread(cli, "watch", "--status", cwd=repo)
        assert f"TUI open: pid {os.getpid()} (focused)" in status.stdout, status.stdout

        seen = await asyncio.to_thread(
            spawn, cli, repo, "true", name="seen-in-tui", env=child_env()
        )
        await until(pilot, lambda: seen in inbox_ids(app), timeout=30)
        await until(pilot, lambda: told(seen), timeout=15)
        await pilot.pause(SETTLE_S)
        assert titles(desktop) == []  # the inbox has it; the desktop does not

        app.post_message(events.AppBlur())  # ESC [ O: the human went to another window
        await until(pilot, lambda: presence.live(state_dir)[0].focus == presence.BLURRED)
        away = await asyncio.to_thread(
            spawn, cli, repo, "exit 3", name="while-away", env=child_env()
        )
        await until(pilot, lambda: titles(desktop) == ["while-away is failed"], timeout=30)
        await until(pilot, lambda: away in inbox_ids(app), timeout=10)

        # Clicking the popup brings the human to that agent in the TUI.
        assert app.main.select_anywhere(seen)
        await pilot.pause()
        assert app.main.selected_id == seen
        desktop.click(desktop.calls[0], "default")
        await until(pilot, lambda: app.main.selected_id == away, timeout=10)
        assert presence.clicks(state_dir) == []  # taken and removed

    assert presence.live(state_dir) == []  # a closed TUI holds nothing back


@pytest.mark.parametrize("attach_command", [False, True])
async def test_attach_on_a_popup_attaches_in_the_open_tui_unless_a_command_is_set(
    attach_command: bool,
    desktop: DesktopThread,
    start_watch: Callable[..., Watch],
    cli: CLI,
    repo: Path,
    mullui_home: Path,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "attach-command-ran"
    if attach_command:
        touch = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran')"
        argv = [sys.executable, "-c", touch, str(marker)]
        (mullui_home / "config.toml").write_text(f"[notify]\nattach_command = {json.dumps(argv)}\n")
    start_watch()
    state_dir = get_paths().state_dir
    app = make_app(get_paths(), cwd=repo, clock=utcnow, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: presence.live(state_dir), timeout=10)
        aid = await asyncio.to_thread(spawn, cli, repo, "exit 3", name="to-attach", env=child_env())
        call = await asyncio.to_thread(desktop.wait_title, "to-attach is failed", 30)
        desktop.click(call, "attach")
        if attach_command:
            await until(pilot, marker.exists, timeout=15)
        else:
            # The TUI selects it and attaches (Pilot runs headless: it cannot suspend, and
            # says how to attach instead, which proves the attach ran in this TUI).
            await until(
                pilot,
                lambda: any(f"mullui attach {aid}" in str(n.message) for n in app._notifications),
                timeout=15,
            )
            assert app.main.selected_id == aid
            assert not marker.exists()


def test_a_tui_killed_9_holds_no_popup_back(
    desktop: DesktopThread,
    start_watch: Callable[..., Watch],
    cli: CLI,
    repo: Path,
) -> None:
    """The real app in a real terminal (a tmux pane): the terminal's own focus report
    (ESC [ I, as a terminal sends it in mode 1004) reaches the presence file; a TUI killed
    with SIGKILL leaves its file behind, and the watch sees its pid dead."""
    # One popup per failure: on a quiet machine the steps below take less than the 1 s
    # burst window, and "after-kill" would be merged with "focus-unknown" into one summary.
    (get_paths().config_dir / "config.toml").write_text("[notify]\ncoalesce_ms = 0\n")
    start_watch()
    state_dir = get_paths().state_dir
    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in {
            "PYTHONPATH": str(ROOT),
            "MULLUI_HOME": os.environ["MULLUI_HOME"],
            "MULLUI_TMUX_SOCKET": os.environ["MULLUI_TMUX_SOCKET"],
        }.items()
    )
    cmd = f"cd {shlex.quote(str(repo))} && {env} {shlex.quote(sys.executable)} -m mullui; sleep 60"
    with Terminal("popup", cmd, size=(120, 36)) as term:
        [tui] = wait_for(lambda: presence.live(state_dir), timeout=30)
        assert b"mullui" in Path(f"/proc/{tui.pid}/cmdline").read_bytes()
        assert tui.focus == presence.UNKNOWN  # tmux sends no focus reports by itself

        # A terminal that never reported focus: the popup goes (better twice than never).
        spawn(cli, repo, "exit 3", name="focus-unknown", env=child_env())
        desktop.wait_title("focus-unknown is failed", timeout=30)

        term.keys("-H", *(f"{b:02x}" for b in b"\x1b[I"))  # focus-in
        wait_for(lambda: presence.tui_focused(state_dir), timeout=10)
        seen = spawn(cli, repo, "exit 4", name="seen-in-tui", env=child_env())
        wait_for(lambda: "seen-in-tui" in term.screen(), timeout=30)
        wait_state(seen, "failed", cli=cli, repo=repo, env=child_env())
        wait_for(lambda: told(seen), timeout=15)

        os.kill(tui.pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{tui.pid}").exists() or _zombie(tui.pid), timeout=10)
        assert presence.presence_file(state_dir, tui.pid).exists()  # nobody removed it
        spawn(cli, repo, "exit 5", name="after-kill", env=child_env())
        desktop.wait_title("after-kill is failed", timeout=30)
        assert not presence.presence_file(state_dir, tui.pid).exists()  # the watch did
        left = [p.name for p in presence.presence_dir(state_dir).iterdir()]
        assert not [n for n in left if str(tui.pid) in n], left  # nothing of it stays
    assert titles(desktop) == ["focus-unknown is failed", "after-kill is failed"]


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].startswith(b"Z")


def test_attaching_from_the_tui_counts_as_looking_away(fleet: Paths, tmp_path: Path) -> None:
    """Enter suspends the app for the attach command: while the human is in the agent's
    pane the TUI says it is not looked at (popups come), and says so again once back."""
    marker = tmp_path / "attached"
    home = Path(os.environ["MULLUI_HOME"])
    state_dir = get_paths().state_dir
    argv = f"sh -c 'touch {marker}; sleep 3'"
    cmd = (
        f"cd {shlex.quote(str(tmp_path))} && PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m tests.tui.fleet_app {shlex.quote(str(home))} "
        f"--frozen --attach-argv {shlex.quote(argv)}; sleep 30"
    )
    with Terminal("attach-focus", cmd, size=(100, 30)) as term:
        wait_for(lambda: "Inbox" in term.screen() and presence.live(state_dir), timeout=20)
        term.keys("-H", *(f"{b:02x}" for b in b"\x1b[I"))  # focus-in
        wait_for(lambda: presence.tui_focused(state_dir), timeout=10)
        term.keys("Enter")
        wait_for(marker.exists, timeout=10)
        [tui] = presence.live(state_dir)
        assert tui.focus == presence.BLURRED
        wait_for(lambda: presence.tui_focused(state_dir), timeout=15)  # detached: back
