"""TUI fixtures: a MULLUI_HOME full of agents (made the real way), the real Workspace,
and the app with its clock stopped so snapshots are stable."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from mullui.model import State
from mullui.paths import Paths, get_paths
from mullui.store import Store
from mullui.tui.app import MulluiApp
from mullui.workspace import Workspace
from tests.support.gitrepo import commit_file, git, make_repo
from tests.tui.fleet import NOW, build_fleet, write_log


@pytest.fixture(autouse=True)
def away_from_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workspace acts on the repository of the current directory: never ours."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wake times and "tomorrow 9:00" are shown in local time: pin it for snapshots."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def paths(mullui_home: Path) -> Paths:
    return get_paths()


@pytest.fixture
def fleet(paths: Paths, tmp_path: Path) -> Paths:
    """The busy fleet; fix-login's branch really exists, so its diff is git's own."""
    build_fleet(paths)
    write_log(paths, "a1", 60)
    repo = make_repo(tmp_path / "repo", {"src/auth.py": "def login():\n    return redirect('/')\n"})
    wt = tmp_path / "wt-fix-login"
    git(repo, "worktree", "add", "-q", "-b", "mullui/fix-login", str(wt))
    commit_file(wt, "src/auth.py", "def login(next_url):\n    return redirect(next_url)\n")
    (wt / "NOTES.md").write_text("redirect loop: next_url was dropped\n")  # untracked
    from mullui.store import Store

    Store(paths).emit(
        "a1", "update", fields={"repo": str(repo), "base": "main", "worktree": str(wt)}
    )
    return paths


def make_app(paths: Paths, cwd: Path | None = None, **kw: Any) -> MulluiApp:
    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("supervise", False)
    kw.setdefault("title", "mullui")
    return MulluiApp(paths=paths, actions=Workspace(paths, cwd=cwd), **kw)


async def until(pilot: Pilot[Any], pred: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Let the app run until ``pred()`` holds (workers finish, timers fire)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


Step = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture
def colliding(paths: Paths, tmp_path: Path) -> Paths:
    """Three agents with real worktrees: fix-login and refactor-db change the same lines
    of src/auth.py (a conflict); refactor-db and perf-bench change src/db.py far apart
    (an overlap).  Records as the radar last wrote them."""
    from tests.support.collide_repo import add_worktree, commit_all, lines, write
    from tests.support.collide_repo import make_repo as make_collide_repo
    from tests.tui.fleet import new, state

    repo = make_collide_repo(
        tmp_path / "repo", {"src/auth.py": lines(10), "src/db.py": lines(40), "README.md": "x\n"}
    )
    changes = {
        "fix-login": {"src/auth.py": lines(10, L3="redirect(next_url)")},
        "refactor-db": {
            "src/auth.py": lines(10, L3="session = Session()"),
            "src/db.py": lines(40, L2="engine = create_engine(url)"),
        },
        "perf-bench": {"src/db.py": lines(40, L38="cache = {}"), "bench.py": "run()\n"},
    }
    store = Store(paths)
    for i, (name, files) in enumerate(changes.items(), 1):
        wt = add_worktree(repo, tmp_path / f"wt-{name}", f"mullui/{name}")
        for rel, text in files.items():
            write(wt, rel, text)
        commit_all(wt, name)
        new(
            store,
            f"k{i}",
            name,
            "claude",
            f"work on {name}",
            60 - i * 10,
            repo=str(repo),
            worktree=str(wt),
            base="main",
        )
        state(store, f"k{i}", State.WORKING, 59 - i * 10)
    from mullui import radar
    from mullui.workspace import Workspace

    radar.refresh(Workspace(paths, cwd=repo))
    return paths
