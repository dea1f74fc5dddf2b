"""``R`` and the palette's resume, driven with Pilot against real shell agents in a real
tmux server: a stopped agent resumes; a budget stop asks for a higher budget; an
interrupted agent offers to resume every interrupted one, and the inbox says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from textual.widgets import Label

from mullui.model import State
from mullui.queue import enforce_budget
from mullui.store import Store
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.resume import BudgetScreen, ResumeAllScreen
from mullui.workspace import Workspace
from tests.conftest import wait_for
from tests.support.gitrepo import make_repo
from tests.tui.conftest import make_app, until


def workspace(mullui_home: Path, tmp_path: Path) -> Workspace:
    return Workspace(cwd=make_repo(tmp_path / "repo"))


def live(ws: Workspace, name: str) -> str:
    a = ws.spawn("sleep 300", agent="shell", name=name)
    wait_for(lambda: Store(ws.paths).load(a.id).state is State.WORKING, 20)
    return a.id


def kill_tmux() -> None:
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


async def test_r_resumes_a_stopped_agent(mullui_home: Path, tmp_path: Path) -> None:
    ws = workspace(mullui_home, tmp_path)
    a = live(ws, "one")
    ws.stop(a)
    store = Store(ws.paths)
    app = make_app(ws.paths, cwd=ws.cwd)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(a)
        await pilot.press("R")
        await until(pilot, lambda: store.load(a).state is State.WORKING, 20)
        assert isinstance(app.screen, MainScreen)
        assert ("starting", "resume:manual") in [
            (t.state.value, t.cause) for t in store.load(a).history
        ]


async def test_r_on_a_budget_stop_asks_for_a_higher_budget(
    mullui_home: Path, tmp_path: Path
) -> None:
    ws = workspace(mullui_home, tmp_path)
    a = live(ws, "spender")
    store = Store(ws.paths)
    store.emit(a, "usage", tokens_in=1, tokens_out=1, cost_usd=12.5)
    stopped = enforce_budget(ws, store.load(a))  # max_cost_usd 10 (the default)
    assert stopped is not None and stopped.cause == "over budget: $12.50 > $10.00"
    app = make_app(ws.paths, cwd=ws.cwd)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(a)
        await pilot.press("R")
        assert isinstance(app.screen, BudgetScreen)
        assert store.load(a).state is State.FAILED  # nothing yet
        await pilot.press(*["backspace"] * 10, *"9", "enter")  # not above its spend
        assert isinstance(app.screen, BudgetScreen)
        await pilot.press(*["backspace"] * 10, *"20", "enter")
        await until(pilot, lambda: store.load(a).state is State.WORKING, 20)
        assert store.load(a).extra["max_cost_usd"] == 20.0


async def test_r_on_an_interrupted_agent_offers_to_resume_them_all(
    mullui_home: Path, tmp_path: Path
) -> None:
    ws = workspace(mullui_home, tmp_path)
    ids = [live(ws, f"cut{i}") for i in range(2)]
    kill_tmux()
    ws.agents()  # reconciled: the dead server is seen
    store = Store(ws.paths)
    assert all(store.load(i).is_interrupted() for i in ids)
    app = make_app(ws.paths, cwd=ws.cwd)
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        title = str(app.screen.query_one("#inbox-title", Label).render())
        assert "2 agents were interrupted by a restart: R resumes them" in title
        assert app.main.select_anywhere(ids[0])
        await pilot.press("R")
        assert isinstance(app.screen, ResumeAllScreen)
        await pilot.press("a")
        await until(pilot, lambda: all(store.load(i).state is State.WORKING for i in ids), 30)


async def test_the_palette_resumes_every_interrupted_agent(
    mullui_home: Path, tmp_path: Path
) -> None:
    ws = workspace(mullui_home, tmp_path)
    ids = [live(ws, f"cut{i}") for i in range(2)]
    kill_tmux()
    ws.agents()
    store = Store(ws.paths)
    app = make_app(ws.paths, cwd=ws.cwd)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await app.run_action("resume_all")
        await until(pilot, lambda: all(store.load(i).state is State.WORKING for i in ids), 30)
