"""Several repositories, one mullui (issue 19 items 14 and 15, the TUI's part): the title
names the repository the TUI was started in (its top level, not the subdirectory), and
when agents come from more than one repository every list shows which."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from mullui.paths import Paths
from mullui.tui.app import title_for
from mullui.tui.widgets.agent_table import AgentTable
from mullui.tui.widgets.inbox import InboxTable
from mullui.workspace import Workspace
from tests.conftest import wait_for
from tests.support.gitrepo import git, make_repo
from tests.tui.conftest import make_app
from tests.tui.fleet import build_repos
from tests.tui.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]


def test_title_names_the_repository_from_a_subdirectory_or_a_linked_worktree(
    paths: Paths, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "project", {"src/deep/x.py": "x = 1\n"})
    assert title_for(Workspace(paths, cwd=repo / "src" / "deep"), repo / "src" / "deep") == (
        "mullui · project"
    )
    linked = tmp_path / "elsewhere"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    assert title_for(Workspace(paths, cwd=linked), linked) == "mullui · project"
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    assert title_for(Workspace(paths, cwd=plain), plain) == "mullui · not-a-repo"


def test_real_mullui_started_in_a_subdirectory_names_the_repository(
    paths: Paths, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "project", {"src/deep/x.py": "x = 1\n"})
    cmd = (
        f"cd {shlex.quote(str(repo / 'src' / 'deep'))} && "
        f"MULLUI_HOME={shlex.quote(os.environ['MULLUI_HOME'])} "
        f"MULLUI_TMUX_SOCKET={shlex.quote(os.environ['MULLUI_TMUX_SOCKET'])} "
        f"PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m mullui; "
        "sleep 30"
    )
    with Terminal("title", cmd, size=(120, 30)) as term:

        def top() -> str:
            lines = term.screen().splitlines()
            return lines[0] if lines else ""

        wait_for(lambda: "mullui · " in top(), timeout=30)
        assert "mullui · project " in top() and "deep" not in top()
        term.keys("q")


async def test_agents_of_several_repositories_show_their_repository(
    paths: Paths, tmp_path: Path
) -> None:
    alpha = make_repo(tmp_path / "alpha")
    beta = make_repo(tmp_path / "beta")
    store = build_repos(paths, [alpha, beta])
    app = make_app(paths, title="mullui · alpha")
    async with app.run_test(size=(160, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentTable)
        assert table.column_keys[:3] == ["state", "name", "repo"]
        assert {k: str(table.get_cell(k, "repo")) for k in table.ids} == {
            "r00": "alpha",
            "r01": "alpha",
            "r10": "beta",
        }
        inbox = app.screen.query_one(InboxTable)
        assert inbox.column_keys[:3] == ["state", "name", "repo"]
        assert str(inbox.get_cell("r00", "repo")) == "alpha"
        assert str(inbox.get_cell("r10", "repo")) == "beta"
        assert "mullui · alpha (2 repos)" in str(app.screen.query_one("#status").render())

        # The other repository's agents leave: one repository, no column.
        for aid in ("r10",):
            store.emit(aid, "removed")
            app.feed.apply([store.load(aid)])
        await pilot.pause()
        assert "repo" not in table.column_keys and "repo" not in inbox.column_keys
        assert table.ids == ["r00", "r01"]
        assert "(2 repos)" not in str(app.screen.query_one("#status").render())


async def test_repositories_of_the_same_name_are_told_apart_by_path(
    paths: Paths, tmp_path: Path
) -> None:
    one = make_repo(tmp_path / "one" / "app")
    two = make_repo(tmp_path / "two" / "app")
    build_repos(paths, [one, two])
    app = make_app(paths)
    async with app.run_test(size=(200, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentTable)
        assert str(table.get_cell("r00", "repo")) == str(one)
        assert str(table.get_cell("r10", "repo")) == str(two)
