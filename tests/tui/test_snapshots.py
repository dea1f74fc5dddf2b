"""What the human sees, pinned: each screen at a fixed size with the clock stopped.

Review changed SVGs like code (``pytest --snapshot-update`` rewrites them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Collapsible

from mullui.paths import Paths
from mullui.tui import themes
from mullui.tui.screens.new_agent import NewAgentScreen
from mullui.tui.screens.text_view import DiffScreen
from mullui.tui.widgets.log_view import LogView
from tests.tui.conftest import make_app, until

WIDE = (120, 36)
SMALL = (80, 24)


def test_empty_state_is_a_howto(paths: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(paths), terminal_size=WIDE)


def test_empty_state_small_terminal(paths: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(paths), terminal_size=SMALL)


def test_busy_dashboard_inbox_with_each_kind(fleet: Paths, snap_compare: Any) -> None:
    # blocked (the question), failed (the exit code), done (the last message); a chain,
    # a collision, a queued and a stopped agent in the list; the log of the first item.
    assert snap_compare(make_app(fleet), terminal_size=WIDE)


def test_busy_dashboard_small_terminal(fleet: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(fleet), terminal_size=SMALL)


def test_busy_dashboard_wide_terminal(fleet: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(fleet), terminal_size=(200, 60))


def test_snoozed_group_open(fleet: Paths, snap_compare: Any) -> None:
    async def open_group(pilot: Pilot[Any]) -> None:
        pilot.app.screen.query_one("#snoozed-group", Collapsible).collapsed = False
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=WIDE, run_before=open_group)


def test_help(fleet: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(fleet), terminal_size=WIDE, press=["question_mark"])


def test_new_agent_dialog(fleet: Paths, snap_compare: Any) -> None:
    async def open_dialog(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewAgentScreen))
        await pilot.press(*"Add a --dry-run flag")
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=WIDE, run_before=open_dialog)


def test_new_agent_dialog_small_terminal(fleet: Paths, snap_compare: Any) -> None:
    # Every field and both buttons on 80x24, "after" included.
    async def open_dialog(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewAgentScreen))
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=SMALL, run_before=open_dialog)


def test_snooze_picker(fleet: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(fleet), terminal_size=WIDE, press=["S"])


def test_log_view(fleet: Paths, snap_compare: Any) -> None:
    assert snap_compare(make_app(fleet), terminal_size=WIDE, press=["l"])


def test_diff_view(fleet: Paths, snap_compare: Any) -> None:
    async def open_diff(pilot: Pilot[Any]) -> None:
        await pilot.press("d")
        await until(
            pilot, lambda: isinstance(pilot.app.screen, DiffScreen) and pilot.app.screen.loaded
        )
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=WIDE, run_before=open_diff)


def test_light_theme(fleet: Paths, snap_compare: Any) -> None:
    themes.remember_theme(fleet, "mullui-light")
    assert snap_compare(make_app(fleet), terminal_size=WIDE)


def test_dark_theme_stop_confirm(fleet: Paths, snap_compare: Any) -> None:
    themes.remember_theme(fleet, "mullui-dark")
    assert snap_compare(make_app(fleet), terminal_size=WIDE, press=["x"])


def test_report_screen(fleet: Paths, snap_compare: Any) -> None:
    async def report(pilot: Pilot[Any]) -> None:
        from mullui.tui.screens.report import ReportScreen

        pilot.app.action_report()
        await until(pilot, lambda: isinstance(pilot.app.screen, ReportScreen))
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=WIDE, run_before=report)


def test_report_screen_small_terminal(fleet: Paths, snap_compare: Any) -> None:
    async def report(pilot: Pilot[Any]) -> None:
        from mullui.tui.screens.report import ReportScreen

        pilot.app.action_report()
        await until(pilot, lambda: isinstance(pilot.app.screen, ReportScreen))
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=SMALL, run_before=report)


def test_collisions_screen(colliding: Paths, snap_compare: Any) -> None:
    # Real worktrees: a conflict, an overlap, and the radar's verdict on the merge order.
    async def collisions(pilot: Pilot[Any]) -> None:
        from mullui.tui.screens.collisions import CollisionsScreen

        pilot.app.action_collisions()
        await until(
            pilot,
            lambda: isinstance(pilot.app.screen, CollisionsScreen) and pilot.app.screen.checked,
            timeout=20,
        )
        await pilot.pause()

    assert snap_compare(make_app(colliding), terminal_size=WIDE, run_before=collisions)


def test_conflict_in_the_inbox(colliding: Paths, snap_compare: Any) -> None:
    # The conflict item with its why; markers naming the other agent in the list.
    assert snap_compare(make_app(colliding), terminal_size=SMALL)


def test_chains_as_one_unit(paths: Paths, snap_compare: Any) -> None:
    # At step 2/2 and blocked; stuck behind a failed first step (the reason shown);
    # all done and awaiting review.
    from tests.tui.fleet import build_chains

    build_chains(paths)
    assert snap_compare(make_app(paths), terminal_size=(160, 36))


def test_merge_confirm(fleet: Paths, snap_compare: Any) -> None:
    async def ask(pilot: Pilot[Any]) -> None:
        from mullui.tui.screens.merge import MergeQuestion, MergeScreen

        files = ("src/auth.py", "src/session.py", *(f"tests/test_{i}.py" for i in range(9)))
        q = MergeQuestion(
            "a3",
            "docs-refresh",
            f"Merge docs-refresh ({len(files)} files) into main?",
            "mullui/docs-refresh",
            "main",
            files,
            Path("/home/me/src/project"),
        )
        pilot.app.push_screen(MergeScreen(q))
        await pilot.pause()

    assert snap_compare(make_app(fleet), terminal_size=SMALL, run_before=ask)


def test_hostile_agent_text_is_literal(paths: Paths, snap_compare: Any) -> None:
    # Markup, a click action, a link and OSC 0/52 in what agents said, their names,
    # branches and files: all shown as typed (controls as \\x1b); the log of the OSC agent
    # keeps its colours and shows no link, no hidden text and no escape.
    from tests.tui.fleet import build_hostile

    build_hostile(paths)

    async def select_osc(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        assert pilot.app.main.select_anywhere("h4")
        log = pilot.app.screen.query_one(LogView)
        await until(pilot, lambda: log.lines is not None and log.lines.line_count() == 5)
        await pilot.pause()

    assert snap_compare(make_app(paths), terminal_size=(160, 36), run_before=select_osc)


def test_agents_of_two_repositories(paths: Paths, tmp_path: Path, snap_compare: Any) -> None:
    # One mullui, two repositories: a repo column in the inbox and the list, the count
    # in the title.
    from tests.support.gitrepo import make_repo
    from tests.tui.fleet import build_repos

    build_repos(paths, [make_repo(tmp_path / "alpha"), make_repo(tmp_path / "beta")])
    assert snap_compare(make_app(paths, title="mullui · alpha"), terminal_size=(160, 36))


def test_snapshot_dir_is_in_the_repo() -> None:
    # syrupy writes next to this file; CI compares against the committed SVGs.
    assert (Path(__file__).parent / "__snapshots__").is_dir()
