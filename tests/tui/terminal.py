"""The real TUI in a real terminal: a private tmux server running one command in a pane
of a given size, its screen read with ``capture-pane``, keys and mouse clicks sent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType


class Terminal:
    def __init__(self, name: str, cmd: str, *, size: tuple[int, int], conf: Path | None = None):
        self.tmux = ["tmux", "-L", f"mullui-tui-{name}-{os.getpid()}"]
        # COLUMNS/LINES from pytest's environment would pin the app at 80x24.
        subprocess.run(
            [*self.tmux, "-f", str(conf or "/dev/null"), "new-session", "-d"]
            + ["-x", str(size[0]), "-y", str(size[1]), f"unset COLUMNS LINES; {cmd}"],
            check=True,
            timeout=10,
        )

    def run(self, *args: str) -> str:
        return subprocess.run(
            [*self.tmux, *args], capture_output=True, text=True, timeout=10, check=False
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "0")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "0", *keys], check=True, timeout=10)

    def click(self, x: int, y: int) -> None:
        """A left click at column ``x``, row ``y`` (0-based), as a terminal reports it."""
        seq = f"\x1b[<0;{x + 1};{y + 1}M\x1b[<0;{x + 1};{y + 1}m"
        self.keys("-H", *(f"{b:02x}" for b in seq.encode()))

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, check=False, timeout=10)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
