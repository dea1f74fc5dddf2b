"""The one place the TUI meets the core.

``AgentActions`` is the part of ``mullui.workspace.Workspace`` the TUI calls (all blocking:
the app calls them from thread workers).  ``ChangeFeed`` is the part of
``mullui.supervisor.Supervisor`` it runs: an async loop that calls ``on_change`` for every
agent whose record changed.

While the core's ``Workspace`` / ``Supervisor`` are not importable (they land in parallel
with this module) :class:`StoreActions` and :class:`SpoolFeed` stand in for them, built
on ``Store`` and one ``watchfiles`` watch of the spool directory.  Switching is
:func:`open_actions` / :func:`open_feed` and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mullui.config import BUILTIN_PROFILES
from mullui.errors import MulluiError
from mullui.model import Agent, Transition, iso
from mullui.paths import Paths, get_paths, tmux_socket
from mullui.store import Store

OnChange = Callable[[Agent, "Transition | None"], None]


class AgentActions(Protocol):
    """What the TUI asks of the workspace.  Every method may raise MulluiError."""

    def agents(self) -> list[Agent]: ...

    def spawn(
        self,
        task: str,
        *,
        agent: str | None = None,
        name: str | None = None,
        base: str | None = None,
        after: str | None = None,
        chain: str | None = None,
        host: str | None = None,
    ) -> Agent: ...

    def send(self, ref: str, text: str) -> None: ...

    def attach_argv(self, ref: str) -> list[str] | None: ...

    def stop(self, ref: str) -> Any: ...

    def snooze(
        self,
        ref: str,
        *,
        minutes: int | None = None,
        until: datetime | None = None,
        until_change: bool = False,
    ) -> Any: ...

    def wake(self, ref: str) -> Any: ...

    def ack(self, ref: str) -> Any: ...

    def merge(self, ref: str, into: str | None = None) -> str: ...

    def diff(self, ref: str, color: bool = True) -> str: ...

    def log_path(self, ref: str) -> Path: ...

    def profile_names(self) -> list[str]: ...

    def current_branch(self) -> str | None: ...


class ChangeFeed(Protocol):
    async def run(self) -> None: ...

    async def stop(self) -> None: ...


class StoreActions:
    """Stand-in for ``Workspace`` until it lands: record-level actions via the Store,
    pane input via tmux; spawn, merge and diff refuse with a clear message."""

    def __init__(self, paths: Paths | None = None, cwd: Path | None = None) -> None:
        self.paths = paths or get_paths()
        self.store = Store(self.paths)
        self.cwd = cwd or Path.cwd()

    def agents(self) -> list[Agent]:
        return [a for a in self.store.all() if not a.removed]

    def spawn(self, task: str, **_: Any) -> Agent:
        raise MulluiError("starting agents needs mullui.workspace (not installed yet)")

    def _tmux(self, *args: str) -> None:
        import subprocess

        proc = subprocess.run(
            ["tmux", "-L", tmux_socket(), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if proc.returncode != 0:
            raise MulluiError(f"tmux {args[0]} failed: {proc.stderr.strip() or proc.returncode}")

    def send(self, ref: str, text: str) -> None:
        a = self.store.resolve(ref)
        if not a.tmux_target:
            raise MulluiError(f"{a.name} has no tmux pane: `mullui ls` shows its state")
        # -l: literal text, so "Enter" or "C-c" typed by the user is not a key name.
        self._tmux("send-keys", "-t", a.tmux_target, "-l", text)
        self._tmux("send-keys", "-t", a.tmux_target, "Enter")

    def attach_argv(self, ref: str) -> list[str] | None:
        a = self.store.resolve(ref)
        if not a.tmux_target:
            raise MulluiError(f"{a.name} has no tmux pane to attach to")
        return ["tmux", "-L", tmux_socket(), "attach-session", "-t", a.tmux_target]

    def stop(self, ref: str) -> Agent:
        a = self.store.resolve(ref)
        return self.store.emit(a.id, "stop")

    def snooze(
        self,
        ref: str,
        *,
        minutes: int | None = None,
        until: datetime | None = None,
        until_change: bool = False,
    ) -> Agent:
        from datetime import timedelta

        from mullui.model import utcnow

        a = self.store.resolve(ref)
        if until_change:
            return self.store.emit(a.id, "snooze", until_change=True)
        if until is None:
            until = utcnow() + timedelta(minutes=minutes or 30)
        return self.store.emit(a.id, "snooze", until=iso(until))

    def wake(self, ref: str) -> Agent:
        return self.store.emit(self.store.resolve(ref).id, "wake")

    def ack(self, ref: str) -> Agent:
        return self.store.emit(self.store.resolve(ref).id, "ack")

    def merge(self, ref: str, into: str | None = None) -> str:
        raise MulluiError("merging needs mullui.workspace (not installed yet): use git merge")

    def diff(self, ref: str, color: bool = True) -> str:
        raise MulluiError("diffs need mullui.workspace (not installed yet): use git diff")

    def log_path(self, ref: str) -> Path:
        return self.paths.log_file(self.store.resolve(ref).id)

    def profile_names(self) -> list[str]:
        return list(BUILTIN_PROFILES)

    def current_branch(self) -> str | None:
        return None


class SpoolFeed:
    """Stand-in for ``Supervisor``: one ``watchfiles`` watch on the spool directory (inotify,
    no polling) and a Store catch-up of each agent whose spool grew."""

    def __init__(self, paths: Paths, on_change: OnChange) -> None:
        self.paths = paths
        self.store = Store(paths)
        self.on_change = on_change
        self._stop = asyncio.Event()

    async def run(self) -> None:
        from watchfiles import awatch

        self.paths.spool_dir.mkdir(parents=True, exist_ok=True)
        async for changes in awatch(self.paths.spool_dir, stop_event=self._stop, debounce=50):
            ids = {Path(p).stem for _, p in changes if p.endswith(".jsonl")}
            for agent_id in sorted(ids):
                a = await asyncio.to_thread(self.store.get, agent_id)
                if a is not None:
                    self.on_change(a, None)

    async def stop(self) -> None:
        self._stop.set()


def open_actions(paths: Paths, cwd: Path | None = None) -> AgentActions:
    """The core's ``Workspace`` when it is importable, else the stand-in."""
    try:
        from mullui.workspace import Workspace  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return StoreActions(paths, cwd)
    ws: AgentActions = Workspace(paths=paths, cwd=cwd)
    return ws


def open_feed(actions: AgentActions, paths: Paths, on_change: OnChange) -> ChangeFeed:
    """The core's ``Supervisor`` when it is importable, else the stand-in."""
    if not isinstance(actions, StoreActions):
        with contextlib.suppress(ImportError):
            from mullui.supervisor import Supervisor  # type: ignore[import-not-found,unused-ignore]

            feed: ChangeFeed = Supervisor(actions, on_change=on_change)
            return feed
    return SpoolFeed(paths, on_change)


def inside_tmux_server(socket: str) -> bool:
    """True when this process runs inside a pane of mullui's own tmux server (``$TMUX`` is
    ``<socket path>,<pid>,<session>``)."""
    tmux = os.environ.get("TMUX", "")
    return bool(tmux) and Path(tmux.split(",", 1)[0]).name == socket
