"""Follow the config files of a long-running mullui (``mullui watch``, the TUI).

The user's ``config.toml``, the repository's ``.mullui.toml`` and the trust file are
followed with watchfiles (inotify on their directories, non-recursive: no polling timer),
so an edit, a file that appears after start, a removal and an editor's atomic rename are
all seen.  The trust file has a directory of its own (``state/trust/``), so the state
dir, which changes with every agent event, is not watched at all; what else changes in a
watched directory is filtered out before it reaches the follower's loop.  A change is
loaded and, when valid, swapped into the context's one
:class:`~mullui.context.ConfigSource`: every later decision (limits, budgets, chains,
profiles, hosts, notify, quiet hours, theme) reads it.  An invalid edit changes nothing -
the last good config stays in force - and its error is reported once per distinct
message; fixing the file clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from mullui.config import Config
from mullui.context import Context
from mullui.errors import MulluiError


@dataclass(frozen=True)
class ConfigChange:
    """What a reload did: the config before and after, and a line for the log."""

    old: Config
    new: Config
    message: str


#: called with the change after a valid reload swapped the config in
OnReload = Callable[[ConfigChange], None]
#: called with the one-line error of an invalid edit, and with None when it is fixed
OnError = Callable[[str | None], None]


def followed_files(ctx: Context, repos: set[Path] | frozenset[Path] = frozenset()) -> list[Path]:
    """The files whose content decides ``ctx.config`` and the configs of ``repos`` (the
    repositories of agents a ``mullui watch`` outside any repository supervises)."""
    files = [ctx.paths.config_file, ctx.paths.trust_file]
    repo = ctx.repo_or_none()
    if repo is not None:
        files.append(repo / ".mullui.toml")
    files += [r / ".mullui.toml" for r in sorted(repos) if r != repo]
    return files


def _summary(old: Config, new: Config, gone: list[Path]) -> str:
    changed = [
        name
        for name in (
            "default_agent",
            "theme",
            "limits",
            "profiles",
            "hosts",
            "chains",
            "notify",
            "prices",
            "collisions_interval_s",
            "collisions_notify",
            "collisions_guard",
            "watch_on_quit",
        )
        if getattr(old, name) != getattr(new, name)
    ]
    what = ", ".join(changed) if changed else "nothing that matters"
    if gone:
        removed = ", ".join(str(p) for p in gone)
        return f"config file removed ({removed}): back to defaults there; changed {what}"
    return f"config reloaded: {what}"


class ConfigFollower:
    """Reload ``ctx``'s config when one of its files changes; report errors once."""

    def __init__(
        self,
        ctx: Context,
        *,
        on_reload: OnReload | None = None,
        on_error: OnError | None = None,
        debounce_ms: int = 50,
    ) -> None:
        self.ctx = ctx
        self.on_reload = on_reload
        self.on_error = on_error
        self.debounce_ms = debounce_ms
        self.error: str | None = None  # the error in force (last good config kept)
        self.reloads = 0
        #: file events the watcher delivered (followed files or not): what woke us
        self.wakes = 0
        self.repos: set[Path] = set()
        self._errors: dict[Path | None, str] = {}  # None: ctx's own config
        self._files = followed_files(ctx)
        self._present = {p: p.exists() for p in self._files}
        self._stop = asyncio.Event()
        self._rewatch = asyncio.Event()

    def follow_repos(self, repos: set[Path]) -> None:
        """Also follow these repositories' ``.mullui.toml`` (new ones start a new watch)."""
        own = self.ctx.repo_or_none()
        new = {r for r in repos if r != own and r not in self.repos and r.is_dir()}
        if not new:
            return
        self.repos |= new
        self._files = followed_files(self.ctx, self.repos)
        for p in self._files:
            self._present.setdefault(p, p.exists())
        self._rewatch.set()

    def reload(self) -> ConfigChange | None:
        """Load the files now; swap a valid config in (None when nothing changed or the
        edit is invalid: then :attr:`error` says why and the old config stays)."""
        try:
            old = self.ctx.config
        except MulluiError:
            old = Config()
        gone = [p for p in self._files if self._present.get(p) and not p.exists()]
        self._present = {p: p.exists() for p in self._files}
        kept_out = False
        try:
            new = self.ctx.load_config(self.ctx.repo_or_none())
            self._set_error(None, None)
        except MulluiError as e:
            self._set_error(None, str(e))
            new = old
            kept_out = True
        others = False
        for repo in sorted(self.repos):
            before = self.ctx.config_source.last_good(repo)
            try:
                cfg = self.ctx.load_config(repo)
            except MulluiError as e:
                self._set_error(repo, str(e))
                continue
            self._set_error(repo, None)
            self.ctx.config_source.remember(repo, cfg)
            others = others or before != cfg
        if kept_out or new == old:
            if others:
                self.reloads += 1
                change = ConfigChange(old, old, "config reloaded: a repository's .mullui.toml")
                if self.on_reload is not None:
                    self.on_reload(change)
                return change
            return None
        self.ctx.config_source.replace(new)
        self.reloads += 1
        change = ConfigChange(old, new, _summary(old, new, gone))
        if self.on_reload is not None:
            self.on_reload(change)
        return change

    def _set_error(self, key: Path | None, message: str | None) -> None:
        before = self.error
        if message is None:
            self._errors.pop(key, None)
        else:
            self._errors[key] = message
        self.error = next(iter(self._errors.values()), None)
        if self.error != before and self.on_error is not None:
            self.on_error(self.error)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Follow the files' directories until :meth:`stop` (a new repository to follow
        restarts the watch on the new set of directories)."""
        first = True
        while not self._stop.is_set():
            self._rewatch.clear()
            up = asyncio.Event()
            waiter = asyncio.create_task(self._after_up(up, ready, reload=not first))
            try:
                await self._watch_once(up)
            finally:
                waiter.cancel()
            first = False
            if not self._rewatch.is_set():
                return

    async def _after_up(
        self, up: asyncio.Event, ready: asyncio.Event | None, *, reload: bool
    ) -> None:
        await up.wait()
        if reload:
            # A watch started anew (a new repository to follow): an edit made in the gap
            # between the two watchers counts too.
            self.reload()
        if ready is not None:
            ready.set()

    async def _watch_once(self, ready: asyncio.Event | None) -> None:
        dirs = sorted({p.parent for p in self._files})
        for d in dirs:
            with contextlib.suppress(OSError):
                d.mkdir(parents=True, exist_ok=True)
        dirs = [d for d in dirs if d.is_dir()]
        names = set(self._files)
        if not dirs:
            if ready is not None:
                ready.set()
            await self._rewatch.wait()
            return
        # watchfiles says nothing when its watcher is up: touch a sentinel in the first
        # directory until it comes through (as the supervisor does for the spool).
        sentinel = dirs[0] / f".mullui-config-ready-{id(self)}"

        async def probe() -> None:
            while ready is not None and not ready.is_set():
                with contextlib.suppress(OSError):
                    sentinel.touch()
                await asyncio.sleep(0.02)

        async def stop_on_rewatch() -> None:
            await self._rewatch.wait()
            stop.set()

        def followed(_change: Change, path: str) -> bool:
            self.wakes += 1
            return Path(path) in names or path == str(sentinel)

        stop = asyncio.Event()
        prober = asyncio.create_task(probe())
        relay = asyncio.create_task(stop_on_rewatch())
        relay_stop = asyncio.create_task(self._stop.wait())
        relay_stop.add_done_callback(lambda _t: stop.set())
        try:
            async for changes in awatch(
                *dirs,
                watch_filter=followed,
                stop_event=stop,
                debounce=self.debounce_ms,
                step=20,
                rust_timeout=10_000,
                recursive=False,
            ):
                if ready is not None and not ready.is_set():
                    ready.set()
                    with contextlib.suppress(OSError):
                        sentinel.unlink()
                if any(Path(path) in names for _c, path in changes):
                    self.reload()
        finally:
            for t in (prober, relay, relay_stop):
                t.cancel()
            with contextlib.suppress(OSError):
                sentinel.unlink()
            if ready is not None:
                ready.set()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        """For ``watch --status``: what is followed, the error in force, reloads done."""
        return {
            "files": [str(p) for p in self._files],
            "error": self.error,
            "reloads": self.reloads,
        }


__all__ = ["ConfigChange", "ConfigFollower", "followed_files"]
