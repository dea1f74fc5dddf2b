"""Run the real TUI on a MULLUI_HOME full of agents: ``python -m tests.tui.fleet_app HOME``.

Used to try the app as a new user would (in tmux at 80x24 and 200x60) and by the tests
that need a real terminal (attach suspends the app).  ``--attach-argv`` makes attach run
that command instead of tmux (what the workspace would return).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mullui.paths import get_paths
from mullui.tui.app import MulluiApp
from mullui.workspace import Workspace
from tests.tui.fleet import NOW, build_fleet, write_log


class FleetWorkspace(Workspace):
    """The real workspace; attach can be pointed at another command (``--attach-argv``)."""

    def __init__(self, home: Path, attach: list[str] | None, cwd: Path | None = None) -> None:
        super().__init__(get_paths({"MULLUI_HOME": str(home)}), cwd=cwd)
        self.attach = attach

    def attach_argv(self, ref: str) -> list[str] | None:
        return self.attach if self.attach is not None else super().attach_argv(ref)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("--build", action="store_true", help="fill HOME with the test fleet")
    ap.add_argument("--extra", type=int, default=0)
    ap.add_argument("--attach-argv", default=None)
    ap.add_argument("--frozen", action="store_true", help="clock stopped at the fleet's NOW")
    ap.add_argument("--no-supervise", action="store_true", help="no supervisor (no queue)")
    ns = ap.parse_args()
    paths = get_paths({"MULLUI_HOME": str(ns.home)})
    if ns.build:
        build_fleet(paths, extra=ns.extra)
        write_log(paths, "a1", 400)
    attach = shlex.split(ns.attach_argv) if ns.attach_argv else None
    app = MulluiApp(
        paths=paths,
        actions=FleetWorkspace(ns.home, attach, cwd=Path.cwd()),
        supervise=not ns.no_supervise,
        clock=(lambda: NOW) if ns.frozen else None,
        title="mullui",
    )
    app.run()


if __name__ == "__main__":
    main()
