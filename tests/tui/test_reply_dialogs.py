"""The TUI's reply (``r``) on the real Claude Code CLI's plan approval: the reply box says
what y / n / text do there, and the reply is mapped to the dialog's keys as ``mullui send``
maps it (tests/integration/test_claude_cli.py drives the same dialog from the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Label

from mullui.agents.claude import PLAN_DIALOG
from mullui.model import utcnow
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.reply import ReplyScreen
from mullui.workspace import Workspace
from tests.support.agents import wait_for
from tests.support.anthropic_stub import Turn
from tests.support.claude_dialogs import (
    Spawned,
    asks,
    blocked_on_plan,
    main_bodies,
    needs_claude,
    spawned,
)
from tests.tui.conftest import make_app, until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def planning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spawned]:
    """Claude Code spawned by the mullui CLI; this process (the TUI) sees the same
    MULLUI_HOME and tmux socket."""
    with spawned(tmp_path) as p:
        for key in ("MULLUI_HOME", "MULLUI_TMUX_SOCKET", "MULLUI_NOTIFY"):
            monkeypatch.setenv(key, p.pipe.env[key])
        yield p


@needs_claude
async def test_the_reply_box_refuses_a_plan_with_n(planning: Spawned) -> None:
    p = planning
    blocked = blocked_on_plan(p, Turn.say("Planning again."))
    before = len(p.stub.main_requests())
    ws = Workspace(cwd=p.pipe.repo)
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(blocked["id"])
        await pilot.press("r")
        assert isinstance(app.screen, ReplyScreen)
        hint = app.screen.query_one("#reply-keys", Label)
        assert str(hint.render()) == PLAN_DIALOG.hint
        await pilot.pause()
        box = app.screen.query_one("#reply").content_region
        assert hint.region.width <= box.width and hint.region.height >= 2  # wrapped, not cut
        # Typed as is, "n" + Enter would pick "1. Yes, and use auto mode".
        await pilot.press("n", "enter")
        assert isinstance(app.screen, MainScreen)
        await until(pilot, lambda: p.pipe.agent()["cause"] == "reply:denied", timeout=30)
    assert (
        asks(p)
        == "denied ExitPlanMode: approve the plan: # Plan: hello: waiting for what to do instead"
    )
    assert "plan mode on" in p.pipe.screen()
    wait_for(lambda: "User rejected Claude's plan" in p.pipe.screen(), 10, "the refusal drawn")
    assert len(p.stub.main_requests()) == before
    assert "User has approved" not in "".join(main_bodies(p.stub))
