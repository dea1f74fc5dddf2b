"""A running TUI drops the rows of agents folded into the history while it runs - by
another process (``mullui ls``, the watch) or by its own supervisor - and they stay in
``ls --all`` and the report.  Real shell agents in a real repository and tmux."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mullui import autostart as autostart_mod
from mullui import ledger
from mullui.model import State, utcnow
from mullui.store import Store
from mullui.tui.widgets.agent_table import AgentTable
from mullui.workspace import Workspace
from tests.support.agents import make_repo, wait_for
from tests.tui.conftest import make_app, until

ROOT = Path(__file__).resolve().parents[2]


def done_agent(tmp_path: Path, name: str) -> tuple[Workspace, str]:
    repo = make_repo(tmp_path / f"repo-{name}")
    ws = Workspace(cwd=repo)
    a = ws.spawn("echo finished", agent="shell", name=name)
    wait_for(lambda: Store(ws.paths).load(a.id).state is State.DONE, timeout=30)
    return ws, a.id


def rows(app: Any) -> list[str]:
    return list(app.screen.query_one(AgentTable).row_keys)


def short_history(mullui_home: Path) -> None:
    (mullui_home / "config.toml").write_text("[limits]\nhistory_after_s = 1\n")


def mullui(ws: Workspace, *args: str) -> str:
    """The real CLI in another process, in the agents' repository; its stdout."""
    r = subprocess.run(
        [sys.executable, "-m", "mullui", *args],
        cwd=ws.cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return r.stdout


def in_ls_all(ws: Workspace, agent_id: str) -> bool:
    return any(x["id"] == agent_id for x in json.loads(mullui(ws, "ls", "--all", "--json")))


async def test_a_fold_by_another_process_drops_the_row(mullui_home: Path, tmp_path: Path) -> None:
    ws, aid = done_agent(tmp_path, "finished-one")
    _, other = done_agent(tmp_path, "stays")
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow, supervise=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await until(pilot, lambda: aid in rows(app) and other in rows(app), timeout=10)
        short_history(mullui_home)
        time.sleep(1.2)  # both are due now
        # `mullui ls` in another process folds what is due (as the watch does).
        assert aid not in mullui(ws, "ls", "--json")
        await until(pilot, lambda: aid not in rows(app) and other not in rows(app), timeout=10)
        assert aid not in app.feed.agents
        assert not [n for n in app._notifications if "failed" in str(n.message)]
    assert {aid, other} <= ledger.folded_ids(ws.paths)
    assert in_ls_all(ws, aid)


async def test_a_fold_by_the_tuis_own_supervisor_drops_the_row(
    mullui_home: Path, tmp_path: Path
) -> None:
    ws, aid = done_agent(tmp_path, "finished-two")
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow, supervise=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await until(pilot, lambda: aid in rows(app), timeout=10)
        pipeline = await until(pilot, lambda: app.feed.pipeline and app.feed.pipeline.owner)
        short_history(mullui_home)
        # The supervisor follows the config file: its next pass folds with the new limit.
        actions: Any = app.actions
        await until(pilot, lambda: actions.config.limits.history_after_s == 1, timeout=10)
        time.sleep(1.2)
        assert aid in rows(app)
        app.feed.pipeline.poke()  # a pass (what its timer or any action of ours does)
        await until(pilot, lambda: aid not in rows(app), timeout=10)
        assert pipeline
    assert aid in ledger.folded_ids(ws.paths)
    assert in_ls_all(ws, aid)


async def test_a_fold_by_the_watch_a_following_tui_drops_the_row(
    autostart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As for a user: the TUI follows, the supervisor is a `mullui watch` process.
    monkeypatch.setenv("MULLUI_WATCH_IDLE_S", "0.5")  # the spawn's watch leaves soon
    ws, aid = done_agent(tmp_path, "finished-three")
    wait_for(lambda: not autostart_mod.held(ws.paths.state_dir), timeout=20, what="idle watch")
    app = make_app(ws.paths, cwd=ws.cwd, clock=utcnow, supervise=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await until(pilot, lambda: aid in rows(app), timeout=10)
        await until(pilot, lambda: app.feed.pipeline and app.feed.pipeline.supervisor)
        assert not app.feed.pipeline.owner
        short_history(autostart)
        time.sleep(1.2)
        mullui(ws, "watch", "--once")  # one pass of the real supervisor: it folds
        assert aid in ledger.folded_ids(ws.paths)
        await until(pilot, lambda: aid not in rows(app), timeout=10)
    assert in_ls_all(ws, aid)
