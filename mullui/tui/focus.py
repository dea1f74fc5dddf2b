"""The TUI's side of :mod:`mullui.presence`: say whether the human is looking at this
TUI, and act on popups clicked in the desktop.

The supervisor is a hidden ``mullui watch``; it reads this TUI's presence file when it
decides on a popup.  The file is rewritten only when what it says changes: the terminal
reported focus-in or focus-out (Textual's ``AppFocus`` / ``AppBlur``), a key came after a
focus-out, the app was suspended (attach, ctrl+z) or resumed.  Clicks come back as
request files in the same directory, followed with inotify (watchfiles), never polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from watchfiles import awatch

from mullui import presence
from mullui.errors import MulluiError

#: ``on_click(agent_id, action)``: "select" (the popup itself) or "attach".
OnClick = Callable[[str, str], None]


class TerminalFocus:
    """Where this TUI stands (focused / blurred / unknown / suspended) and the clicks the
    watch hands it.  Call everything from the app's thread."""

    def __init__(self, state_dir: Path, on_click: OnClick) -> None:
        self.state_dir = state_dir
        self.on_click = on_click
        #: what the terminal last reported; None until it reports anything (many never do)
        self.reported: bool | None = None
        self.suspended = False
        self.written: str | None = None  # what the presence file says now
        self._open = False  # the file is written only while the click follower runs
        self._stop = asyncio.Event()

    @property
    def focus(self) -> str:
        if self.suspended or self.reported is False:
            return presence.BLURRED
        return presence.UNKNOWN if self.reported is None else presence.FOCUSED

    def terminal_reported(self, focused: bool) -> None:
        """The terminal said focus-in (True) or focus-out (False)."""
        self.reported = focused
        self._write()

    def key_after_blur(self) -> None:
        """A key or click came while we believed the terminal unfocused: the human is
        here (Textual sets ``app_focus`` then; some terminals drop a focus-in)."""
        if self.reported is False:
            self.reported = True
            self._write()

    def set_suspended(self, suspended: bool) -> None:
        """The app left the terminal to another program (attach) or came back."""
        self.suspended = suspended
        self._write()

    def _write(self) -> None:
        focus = self.focus
        if not self._open or focus == self.written:
            return
        try:
            presence.write(self.state_dir, focus)
        except MulluiError as e:
            # Without the file the watch pops up as if no TUI were open: nothing is lost.
            print(f"mullui: {e.message}", file=sys.stderr)
            return
        self.written = focus

    async def run(self) -> None:
        """Follow this TUI's click requests until :meth:`close`; the presence file is
        written once the follower is up, so no click can come before it listens."""
        folder = presence.presence_dir(self.state_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(f"mullui: cannot follow notification clicks in {folder}: {e}", file=sys.stderr)
            return
        for stale in presence.clicks(self.state_dir):  # a dead process with our pid
            stale.unlink(missing_ok=True)
        ready = asyncio.Event()
        # watchfiles (1.x) says nothing when its watcher is up: touch a sentinel until the
        # first change comes through (as the supervisor does for the spool).
        sentinel = presence.ready_file(self.state_dir, os.getpid())

        async def probe() -> None:
            while not ready.is_set():
                with contextlib.suppress(OSError):
                    sentinel.touch()
                await asyncio.sleep(0.02)

        prober = asyncio.create_task(probe())
        try:
            await self._follow(folder, ready)
        except Exception as e:  # inotify limits, a vanished directory: popups still go
            print(f"mullui: not following notification clicks: {e!r}", file=sys.stderr)
            self._open = False
            presence.remove(self.state_dir)
        finally:
            prober.cancel()
            sentinel.unlink(missing_ok=True)

    async def _follow(self, folder: Path, ready: asyncio.Event) -> None:
        async for _changes in awatch(
            folder,
            stop_event=self._stop,
            debounce=50,
            step=20,
            rust_timeout=10_000,
            recursive=False,
        ):
            if not ready.is_set():
                ready.set()
                # gone now, not at close: a TUI killed -9 leaves no sentinel behind
                presence.ready_file(self.state_dir, os.getpid()).unlink(missing_ok=True)
                self._open = True
                self._write()
            self._take_clicks()

    def _take_clicks(self) -> None:
        for path in presence.clicks(self.state_dir):
            click = presence.take_click(path)
            if click is not None:
                self.on_click(*click)

    def close(self) -> None:
        """The TUI is closing: the watch pops up again from now on."""
        self._stop.set()
        self._open = False
        presence.remove(self.state_dir)
        self.written = None
