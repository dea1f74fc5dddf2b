"""Collisions in the TUI, from the real radar over real worktrees: markers in the list,
the conflict inbox item with its why, and the collisions view with the merge order."""

from __future__ import annotations

from typing import Any

from mullui.paths import Paths
from mullui.store import Store
from mullui.tui.screens.collisions import CollisionsScreen
from mullui.tui.screens.main import MainScreen
from mullui.tui.widgets.agent_table import AgentTable
from mullui.tui.widgets.inbox import InboxTable
from tests.tui.conftest import make_app, until


def text(table: Any, row: str, col: str) -> str:
    return str(table.get_cell(row, col))


async def test_markers_name_the_other_agent_and_the_conflict_is_an_inbox_item(
    colliding: Paths,
) -> None:
    app = make_app(colliding)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        agents = app.screen.query_one(AgentTable)
        assert "⚠refactor-db" in text(agents, "k1", "name")  # conflict
        assert "≈refactor-db" in text(agents, "k3", "name")  # overlap only
        assert "⚠fix-login +1" in text(agents, "k2", "name")  # worst first, and one more
        inbox = app.screen.query_one(InboxTable)
        # One item per conflict, held by the newer agent, saying with whom and where.
        assert inbox.ids == ["k2"]
        assert "conflict" in text(inbox, "k2", "state")
        assert text(inbox, "k2", "why") == "conflicts with fix-login on src/auth.py"
        detail = str(app.screen.query_one("#log-detail").render())
        assert "conflicts with fix-login: src/auth.py" in detail
        assert "also touched by perf-bench: src/db.py" in detail
        # Ack: the item leaves the inbox, the marker stays (the conflict is still there).
        await pilot.press("a")
        await until(pilot, lambda: Store(colliding).load("k2").conflict is None)
        await until(pilot, lambda: inbox.ids == [] or not inbox.display)
        assert "⚠fix-login" in text(agents, "k2", "name")


async def test_collisions_view_pairs_files_and_merge_order(colliding: Paths) -> None:
    app = make_app(colliding)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.action_collisions()
        screen = await until(pilot, lambda: isinstance(app.screen, CollisionsScreen) and app.screen)
        await until(pilot, lambda: screen.checked, timeout=20)
        rows = [(r.between, r.files, r.conflict) for r in screen.rows]
        assert rows == [
            ("fix-login ↔ refactor-db", ("src/auth.py",), True),
            ("refactor-db ↔ perf-bench", ("src/db.py",), False),
        ]
        assert screen.advice == [
            "no clean merge order into main: fix-login conflicts with refactor-db on src/auth.py"
        ]
        # enter: back to the main screen with the newer agent of the pair selected.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.main.selected_id == "k2"
