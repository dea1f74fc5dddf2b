"""Review from the TUI: ack and merge (asks first, refuses a conflict naming the files),
against a real git repository and a real ``shell`` agent that finished in tmux."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mullui.model import State
from mullui.paths import Paths
from mullui.store import Store
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.merge import MergeScreen
from mullui.tui.widgets.inbox import InboxTable
from mullui.workspace import Workspace
from tests.conftest import wait_for
from tests.support.gitrepo import commit_file, git, make_repo
from tests.tui.conftest import make_app, until


def inbox_ids(app: Any) -> list[str]:
    return list(app.screen.query_one(InboxTable).ids)


def messages(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.fixture
def finished(mullui_home: Path, tmp_path: Path) -> tuple[Workspace, str, Path]:
    """A real ``shell`` agent that committed ``feature.txt`` on its branch and exited 0."""
    repo = make_repo(tmp_path / "repo", {"README.md": "# sandbox\n", "app.py": "x = 1\n"})
    ws = Workspace(cwd=repo)
    a = ws.spawn(
        "echo 'def feature(): pass' > feature.txt && echo 'x = 2' > app.py"
        " && git add -A && git commit -qm 'add the feature'",
        agent="shell",
        name="feature",
    )
    wait_for(lambda: Store(ws.paths).load(a.id).state is State.DONE, timeout=20)
    return ws, a.id, repo


async def test_merge_asks_then_merges_the_branch(finished: tuple[Workspace, str, Path]) -> None:
    ws, agent_id, repo = finished
    before = git(repo, "rev-parse", "main").strip()
    app = make_app(ws.paths, cwd=repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(agent_id)
        await pilot.press("m")
        screen = await until(pilot, lambda: isinstance(app.screen, MergeScreen) and app.screen)
        # The question names the target and every file the merge changes.
        assert screen.q.question == "Merge feature (2 files) into main?"
        assert screen.q.files == ("app.py", "feature.txt")
        assert git(repo, "rev-parse", "main").strip() == before  # nothing happened yet

        await pilot.press("n")
        assert isinstance(app.screen, MainScreen)
        await pilot.pause(0.2)
        assert git(repo, "rev-parse", "main").strip() == before

        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen))
        await pilot.press("y")
        await until(pilot, lambda: Store(ws.paths).load(agent_id).merged_into == "main")
        # main has the agent's commit and the checkout moved with it; the item is handled.
        assert (repo / "feature.txt").read_text() == "def feature(): pass\n"
        assert git(repo, "status", "--porcelain").strip() == ""
        await until(pilot, lambda: agent_id not in inbox_ids(app))
        await until(pilot, lambda: any("main" in m for m in messages(app)))


async def test_merge_refuses_a_conflict_naming_the_files(
    finished: tuple[Workspace, str, Path],
) -> None:
    ws, agent_id, repo = finished
    commit_file(repo, "app.py", "x = 3\n", "main moved on")
    before = git(repo, "rev-parse", "main").strip()
    app = make_app(ws.paths, cwd=repo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(agent_id)
        await pilot.press("m")
        refusal = await until(
            pilot, lambda: next((m for m in messages(app) if "conflict" in m), None)
        )
        assert "app.py" in refusal and "feature.txt" not in refusal
        assert "\n" not in refusal  # one line
        assert isinstance(app.screen, MainScreen)  # no question when it cannot go ahead
        assert git(repo, "rev-parse", "main").strip() == before
        assert Store(ws.paths).load(agent_id).merged_into is None
        assert agent_id in inbox_ids(app)


async def test_merge_refuses_a_working_agent(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere("a1")  # blocked: its branch exists, it is not done
        await pilot.press("m")
        await until(pilot, lambda: any("still blocked" in m for m in messages(app)))
        assert isinstance(app.screen, MainScreen)


async def test_ack_takes_a_done_item_out_and_counts_it_reviewed(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(160, 36)) as pilot:
        await pilot.pause()
        status = app.screen.query_one("#status")
        assert "2 done await review" in str(status.render())
        app.main.select_anywhere("a3")
        await pilot.press("a")
        await until(pilot, lambda: Store(fleet).load("a3").is_acked())
        await until(pilot, lambda: "a3" not in inbox_ids(app))
        await until(pilot, lambda: "1 done await review" in str(status.render()))


async def test_after_ack_the_next_item_takes_its_place(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert inbox_ids(app) == ["a1", "a2", "a3"]
        await pilot.press("j")  # a2, the failure
        await until(pilot, lambda: app.main.selected_id == "a2")
        await pilot.press("a")
        await until(pilot, lambda: inbox_ids(app) == ["a1", "a3"])
        # Like a mail client: the cursor stays put and a3 moved up under it.
        await until(pilot, lambda: app.main.selected_id == "a3")
        await pilot.press("a")
        await until(pilot, lambda: inbox_ids(app) == ["a1"])
        await until(pilot, lambda: app.main.selected_id == "a1")


async def test_ack_of_unmerged_work_says_it_is_not_merged(
    finished: tuple[Workspace, str, Path],
) -> None:
    # ack takes the item out of the inbox but never hides work that is not merged: the
    # workspace's one line (the CLI prints it) is a toast here.
    ws, agent_id, _ = finished
    app = make_app(ws.paths, cwd=ws.cwd)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert app.main.select_anywhere(agent_id)
        await pilot.press("a")
        await until(pilot, lambda: Store(ws.paths).load(agent_id).is_acked())
        await until(
            pilot, lambda: any("still has work that is not merged" in m for m in messages(app))
        )
        (line,) = [m for m in messages(app) if "not merged" in m]
        assert "1 commit not in main" in line and "mullui merge feature" in line
