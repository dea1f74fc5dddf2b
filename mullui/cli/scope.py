"""What a command works on: the Workspace, the repository ``--here`` / ``--repo``
names, the live and recent agents."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mullui.cli.output import _notice

if TYPE_CHECKING:
    from mullui.workspace import Workspace


def _ws(*, notices: bool = True) -> Workspace:
    # Imported here, like every command's modules: `mullui hook` (run by agents on every
    # event) and `--help` must not load the workspace and everything under it.
    from mullui.workspace import Workspace

    ws = Workspace()
    if notices:  # what an untrusted .mullui.toml could not set, said on every command
        ws.notice = _notice
    ws.config  # noqa: B018 - a broken config is reported by every command, at once
    return ws


def _narrow(ws: Any, a: argparse.Namespace, agents: list[Any]) -> list[Any]:
    """``--here`` / ``--repo PATH``: only the agents of that repository."""
    repo = _repo_asked(ws, a)
    return agents if repo is None else [x for x in agents if x.repo == repo]


def _repo_asked(ws: Any, a: argparse.Namespace) -> str | None:
    """The repository ``--here`` / ``--repo PATH`` names, or None."""
    if not (a.here or a.repo):
        return None
    from pathlib import Path

    from mullui.runtime import worktrees

    where = ws.cwd if a.here else Path(a.repo).expanduser().absolute()
    return str(worktrees.repo_root(where))


def _live(ws: Any) -> list[Any]:
    """Live and recent agents; finished work moves to the history on the way (ledger)."""
    from mullui import ledger

    return ledger.live_and_recent(ws, ws.agents())
