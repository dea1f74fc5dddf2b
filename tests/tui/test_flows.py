"""The flows a human goes through, driven with Pilot against real records, a real tmux
server (for reply, attach and quit) and the real Supervisor."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mullui.model import State, utcnow
from mullui.paths import Paths
from mullui.store import Store
from mullui.tui.commands import MulluiCommands
from mullui.tui.screens.confirm import ConfirmScreen
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.reply import ReplyScreen
from mullui.tui.screens.snooze import SnoozeScreen
from mullui.tui.widgets.agent_table import AgentTable
from mullui.tui.widgets.inbox import InboxTable, SnoozedTable
from mullui.workspace import Workspace
from tests.conftest import wait_for
from tests.support.gitrepo import make_repo
from tests.tui.conftest import make_app, until
from tests.tui.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]


def inbox_ids(app: Any) -> list[str]:
    return list(app.screen.query_one(InboxTable).ids)


# ---- inbox: selection, snooze, wake, ack ------------------------------------------------
async def test_first_inbox_item_is_selected_on_start(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert inbox_ids(app) == ["a1", "a2", "a3"]  # blocked, failed, done
        assert app.main.selected_id == "a1"
        assert app.focused is app.screen.query_one(InboxTable)


async def test_snooze_hides_the_item_and_wake_brings_it_back(fleet: Paths) -> None:
    store = Store(fleet)
    app = make_app(fleet, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        before = utcnow()
        await pilot.press("s")
        a = await until(pilot, lambda: store.load("a1").snoozed_until)
        assert before + timedelta(minutes=29) < a < utcnow() + timedelta(minutes=31)
        await until(pilot, lambda: "a1" not in inbox_ids(app))
        snoozed = app.screen.query_one(SnoozedTable)
        assert "a1" in snoozed.ids
        assert app.screen.query_one("#snoozed-group").display

        # Wake it from the snoozed group (tab to the group's table; enter opens it).
        assert app.main.select_anywhere("a1")
        await pilot.pause()
        assert app.focused is snoozed
        await pilot.press("w")
        await until(pilot, lambda: store.load("a1").snoozed_until is None)
        await until(pilot, lambda: "a1" in inbox_ids(app))


async def test_snooze_picker_until_it_changes(fleet: Paths) -> None:
    store = Store(fleet)
    app = make_app(fleet, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("S")
        assert isinstance(app.screen, SnoozeScreen)
        await pilot.press("down", "down", "down", "down", "enter")
        await until(pilot, lambda: store.load("a1").snooze_until_change)
        assert store.load("a1").is_snoozed()


async def test_snooze_refuses_an_agent_not_in_the_inbox(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere("a4")  # working
        await pilot.press("s")
        await pilot.pause()
        assert Store(fleet).load("a4").snoozed_until is None
        assert any("Only inbox items" in str(n.message) for n in app._notifications)


async def test_ack_takes_the_item_out_of_the_inbox(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.main.select_anywhere("a3")
        await pilot.press("a")
        await until(pilot, lambda: Store(fleet).load("a3").is_acked())
        await until(pilot, lambda: "a3" not in inbox_ids(app))


# ---- stop asks first -----------------------------------------------------------------------
async def test_stop_asks_first_and_no_keeps_it_running(fleet: Paths) -> None:
    store = Store(fleet)
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.main.select_anywhere("a4")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        assert store.load("a4").state is State.WORKING  # nothing happened yet
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen)
        await pilot.pause(0.2)
        assert store.load("a4").state is State.WORKING

        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: store.load("a4").state is State.STOPPED)
        table = app.screen.query_one(AgentTable)
        await until(pilot, lambda: "stopped" in str(table.get_cell("a4", "state")))


# ---- reply, attach, quit: a real agent in a real tmux pane --------------------------------
@pytest.fixture
def live_agent(mullui_home: Path, tmp_path: Path) -> tuple[Workspace, str, Path]:
    """A real ``shell`` agent whose pane copies what it is sent into a file."""
    repo = make_repo(tmp_path / "live-repo")
    out = tmp_path / "received.txt"
    ws = Workspace(cwd=repo)
    a = ws.spawn(f"cat > {shlex.quote(str(out))}", agent="shell", name="echo")
    wait_for(lambda: Store(ws.paths).load(a.id).state in (State.WORKING, State.BLOCKED))
    return ws, a.id, out


def pane_alive(target: str) -> bool:
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    r = subprocess.run(
        ["tmux", "-L", sock, "list-panes", "-t", target, "-F", "#{pane_dead}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return r.returncode == 0 and r.stdout.strip() == "0"


async def test_reply_reaches_the_agents_pane(live_agent: tuple[Workspace, str, Path]) -> None:
    ws, agent_id, out = live_agent
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(agent_id)
        await pilot.press("r")
        assert isinstance(app.screen, ReplyScreen)
        await pilot.press(*"hello from the inbox", "enter")
        assert isinstance(app.screen, MainScreen)  # never left the TUI
        await until(pilot, lambda: out.exists() and "hello from the inbox\n" in out.read_text())


async def test_quit_leaves_agents_running(live_agent: tuple[Workspace, str, Path]) -> None:
    ws, agent_id, _ = live_agent
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("q")
    assert app.return_code == 0
    target = Store(ws.paths).load(agent_id).tmux_target
    assert target and pane_alive(target)
    assert Store(ws.paths).load(agent_id).state is State.WORKING


async def test_quit_says_notifications_continue(
    fleet: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(fleet)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
    err = capsys.readouterr().err
    assert "6 agents still running" in err and "mullui watch" in err
    assert Store(fleet).load("a4").state is State.WORKING


async def test_attach_without_a_terminal_says_what_to_do(
    live_agent: tuple[Workspace, str, Path],
) -> None:
    # Textual's headless driver (run_test) cannot suspend: the app must say what to run
    # instead, not crash.  The real suspend is tested in a tmux pane below.
    ws, agent_id, _ = live_agent
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(agent_id)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any(f"mullui attach {agent_id}" in str(n.message) for n in app._notifications),
        )
        assert isinstance(app.screen, MainScreen)


def test_attach_suspends_and_returns_in_a_real_terminal(fleet: Paths, tmp_path: Path) -> None:
    """Run the real app in a tmux pane; enter runs the attach command with the app
    suspended; when it exits (the user detached) the TUI is back and still running."""
    marker = tmp_path / "attached"
    home = Path(os.environ["MULLUI_HOME"])
    argv = f"sh -c 'echo ATTACHED-NOW; touch {marker}; sleep 0.5'"
    cmd = (
        f"cd {shlex.quote(str(tmp_path))} && PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m tests.tui.fleet_app {shlex.quote(str(home))} "
        f"--frozen --no-supervise --attach-argv {shlex.quote(argv)}; sleep 30"
    )
    with Terminal("attach", cmd, size=(100, 30)) as term:
        wait_for(lambda: "Inbox" in term.screen(), timeout=20)
        term.keys("Enter")
        wait_for(marker.exists, timeout=10)
        time.sleep(0.6)
        wait_for(lambda: "Inbox" in term.screen() and "fix-login" in term.screen(), timeout=10)
        # Still the TUI (not the shell after it): a key still answers.
        term.keys("?")
        wait_for(
            lambda: "every key" in term.screen().lower() or "Keys" in term.screen(), timeout=10
        )


# ---- live updates from the event pipeline --------------------------------------------------
async def test_changes_arrive_through_the_supervisor(fleet: Paths) -> None:
    store = Store(fleet)
    app = make_app(fleet, clock=utcnow, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "a5" not in inbox_ids(app)
        store.emit(
            "a5",
            "state",
            state="blocked",
            cause="hook:PermissionRequest",
            question="Write to /etc/hosts?",
        )
        await until(pilot, lambda: "a5" in inbox_ids(app), timeout=10)
        assert inbox_ids(app)[0] in ("a1", "a5")  # blocked items first
        cell = app.screen.query_one(InboxTable).get_cell("a5", "why")
        assert "Write to /etc/hosts?" in str(cell)


async def test_select_agent_from_a_notification(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert app.select_agent("a9")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.main.selected_id == "a9"
        assert app.focused is app.screen.query_one(AgentTable)


async def test_every_key_action_is_in_the_palette(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        # The palette's providers: ours (commands.py) and Textual's system commands.
        assert MulluiCommands in app.COMMANDS
        titles = {c.title for c in app.get_system_commands(app.screen)}
        titles |= {hit.text async for hit in MulluiCommands(app.screen).discover()}
        for needed in (
            "Attach",
            "Reply",
            "Snooze 30 minutes",
            "Snooze…",
            "Wake",
            "New agent",
            "Log",
            "Diff",
            "Ack",
            "Merge",
            "Stop",
            "Help",
            "Quit",
            "Theme",
            "Report",
            "Collisions",
            "Resume",
            "Resume interrupted agents",
        ):
            assert needed in titles
        keys = {b.key for _, b in app.screen._bindings}
        assert {
            "enter",
            "r",
            "s",
            "S",
            "w",
            "n",
            "l",
            "d",
            "a",
            "m",
            "x",
            "R",
            "question_mark",
            "q",
            "tab",
        } <= keys


async def test_first_item_to_land_is_selected_until_the_human_moves(paths: Paths) -> None:
    from tests.tui.fleet import new, state

    store = Store(paths)
    for aid in ("b1", "b2"):
        new(store, aid, aid, "shell", "make", 5)
        state(store, aid, State.WORKING, 4)
    app = make_app(paths)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.selected_id == "b1" and inbox_ids(app) == []
        app.feed.on_change(store.emit("b2", "state", state="blocked", question="ok?"), ())
        await until(pilot, lambda: app.main.selected_id == "b2")
        assert app.focused is app.screen.query_one(InboxTable)
        await pilot.press("k")  # the human takes over: later items don't steal focus
        app.feed.on_change(store.emit("b1", "state", state="blocked", question="and?"), ())
        await until(pilot, lambda: "b1" in inbox_ids(app))
        assert app.main.selected_id == "b2"


async def test_notifier_toasts_and_clicks_from_another_thread(fleet: Paths) -> None:
    import threading

    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        # dbus-fast and the notifier may call back from elsewhere: both must land safely.
        t = threading.Thread(
            target=lambda: (
                app.feed.notifier_toast("a7", "migrate blocked", "Edit migrations/0042_users.py?"),
                app.feed.notification_action("a9", "select"),
            )
        )
        t.start()
        t.join(5)
        await until(pilot, lambda: any("0042_users" in str(n.message) for n in app._notifications))
        await until(pilot, lambda: app.main.selected_id == "a9")


async def test_quit_delivers_popups_already_decided(fleet: Paths) -> None:
    # The supervisor's cursor counts a notice as told once it is handed to the notifier;
    # quitting must let that delivery finish (supervisor.finish_notifications).
    import asyncio

    delivered: list[str] = []

    async def slow_popup() -> None:
        await asyncio.sleep(0.3)
        delivered.append("a1")

    app = make_app(fleet, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        sup = await until(pilot, lambda: app.feed.pipeline and app.feed.pipeline.supervisor)
        await until(pilot, lambda: app.feed.pipeline.owner)
        sup._tasks.add(asyncio.ensure_future(slow_popup()))
        await pilot.press("q")
    assert delivered == ["a1"]


# ---- chains read as one unit -------------------------------------------------------------
async def test_a_chain_is_one_unit_with_its_steps_beneath(paths: Paths) -> None:
    from tests.tui.fleet import build_chains

    store = build_chains(paths)
    app = make_app(paths)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentTable)
        keys = table.row_keys
        # Each run: its own row, then its steps in order, nothing in between.
        for run, steps in (("pc-2", ["e1", "e2"]), ("pc-1", ["c1", "c2"])):
            i = keys.index(f"chain:{run}")
            assert keys[i + 1 : i + 1 + len(steps)] == steps
        i = keys.index("chain:bts-1")
        assert keys[i + 1 : i + 4] == ["d1", "d2", "d3"]

        def cell(key: str, col: str) -> str:
            return str(table.get_cell(key, col))

        assert "plan-critique 2/2" in cell("chain:pc-1", "name")
        assert "blocked" in cell("chain:pc-1", "state")
        assert "cache-2: Write: PLAN.md" in cell("chain:pc-1", "branch")  # the step, its ask
        assert "awaits review" in cell("chain:pc-2", "branch")
        assert "$0.41" in cell("chain:pc-1", "usage")  # the steps' costs added up
        # A stuck follow-up says why it will not start by itself.
        assert "predecessor ship-1 failed" in cell("d2", "branch")

        # The chain's row stands for the step it is at: actions work on it.
        table.focus()
        table.move_cursor(row=keys.index("chain:pc-1"))
        await until(pilot, lambda: app.main.selected_id == "c2")
        # The step is answered and finishes: the chain row moves on with it.
        app.feed.on_change(store.emit("c2", "state", state="done", message="critique done"), ())
        await until(pilot, lambda: "awaits review" in cell("chain:pc-1", "branch"))
        assert "done" in cell("chain:pc-1", "state")
        await pilot.press("a")
        await until(pilot, lambda: store.load("c2").is_acked())


# ---- new agent: after another, or a chain ------------------------------------------------
async def test_new_agent_after_another_is_queued_behind_it(fleet: Paths, tmp_path: Path) -> None:
    from textual.widgets import Select

    from mullui.tui.screens.new_agent import NewAgentScreen

    app = make_app(fleet, cwd=tmp_path / "repo")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        await pilot.press(*"write the release notes")
        after = screen.query_one("#after", Select)
        assert ("fix-login (blocked)", "a1") in screen.after
        after.value = "a1"
        await pilot.press("ctrl+s")
        new = await until(
            pilot,
            lambda: next(
                (a for a in app.agents.values() if a.task == "write the release notes"), None
            ),
            timeout=20,  # spawn runs git and may start `mullui watch`: slow on a loaded box
        )
        assert new.after == "a1" and new.state is State.QUEUED
        assert "waiting for fix-login" in str(
            app.screen.query_one(AgentTable).get_cell(new.id, "branch")
        )


async def test_new_agent_from_a_chain_shows_the_chain(paths: Paths, tmp_path: Path) -> None:
    from textual.widgets import Select

    from mullui.tui.screens.new_agent import NewAgentScreen

    (paths.config_file).write_text(
        "[chains.build-check]\n"
        'steps = [ { agent = "shell", task = "echo build {task}" },'
        ' { agent = "shell", task = "echo check" } ]\n'
    )
    repo = make_repo(tmp_path / "chain-repo")
    app = make_app(paths, cwd=repo, clock=utcnow)
    async with app.run_test(size=(160, 36)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        await pilot.press(*"docs")
        screen.query_one("#chain", Select).value = "build-check"
        await pilot.press("ctrl+s")
        table = app.screen.query_one(AgentTable)
        # The chain's row, then its two steps.
        await until(pilot, lambda: len(table.row_keys) == 3)
        key = table.row_keys[0]
        assert key.startswith("chain:")
        i = 0
        assert "build-check" in str(table.get_cell(key, "name"))
        steps = [app.agents[k] for k in table.row_keys[i + 1 :]]
        assert [s.task for s in steps] == ["echo build docs", "echo check"]


async def test_every_palette_command_runs_an_action_of_the_app(fleet: Paths) -> None:
    from textual.command import CommandPalette

    from mullui.tui.commands import COMMANDS
    from mullui.tui.screens.report import ReportScreen

    app = make_app(fleet)
    for _, _, action in COMMANDS:
        assert callable(getattr(app, f"action_{action.split('(')[0]}", None)), action
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"Report")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen))


async def test_new_agent_dialog_names_uncommitted_files_it_will_not_see(
    paths: Paths, tmp_path: Path
) -> None:
    from textual.widgets import Select

    from mullui.tui.screens.new_agent import NewAgentScreen

    repo = make_repo(tmp_path / "dirty-repo")
    (repo / "README.md").write_text("# changed, not committed\n")
    (repo / "draft.py").write_text("x = 1\n")
    app = make_app(paths, cwd=repo, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        screen = await until(pilot, lambda: isinstance(app.screen, NewAgentScreen) and app.screen)
        note = str(screen.query_one("#new-agent-notes").render())
        assert "will not see 2 uncommitted files here: README.md, draft.py" in note
        await pilot.press(*"echo hi")
        screen.query_one("#profile", Select).value = "shell"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(a.task == "echo hi" for a in app.agents.values()))
        # The spawn says it again, as the CLI does (a toast here).
        await until(
            pilot,
            lambda: any("2 uncommitted files" in str(n.message) for n in app._notifications),
        )
