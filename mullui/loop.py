"""Making sure the loop runs: exactly one supervisor notifies at a time (the flock on
``supervisor.lock``), and :func:`ensure_running` starts ``mullui watch`` in a hidden tmux
window when no supervisor holds it.

The faces (CLI, TUI, demo) call :func:`ensure_running`; no operation below them does.
Kept apart from the supervisor itself so that a ``mullui spawn`` does not load it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import RUNNING, Agent, State


# ---- the lock ---------------------------------------------------------------------------
class SupervisorLock:
    """An flock on ``supervisor.lock`` holding the owner's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, *, wait: float = 0.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return True

    def holder(self) -> int | None:
        try:
            txt = self.path.read_text().strip()
            return int(txt) if txt else None
        except (OSError, ValueError):
            return None

    def is_free(self) -> bool:
        if self.fd is not None:
            return False
        if self.acquire():
            self.release()
            return True
        return False

    def take_over(self, wait: float = 3.0) -> bool:
        """Acquire, asking the current holder (a ``mullui watch``) to exit first."""
        if self.acquire():
            return True
        pid = self.holder()
        if pid and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        return self.acquire(wait=wait)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


WATCH_SESSION = "mullui-supervisor"


#: What the hidden ``mullui watch`` needs from the spawning process's environment: tmux's
#: global environment is the one of whoever started the server, often long ago.
WATCH_ENV = (
    "MULLUI_HOME",
    "MULLUI_TMUX_SOCKET",
    "MULLUI_NOTIFY",
    "MULLUI_STATE_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "HOME",
    "PATH",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "LANG",
    "LC_ALL",
)


def ensure_running(ctx: Context) -> bool:
    """Start ``mullui watch`` in a hidden window of mullui's tmux server (session
    ``mullui-supervisor``) unless some supervisor already holds the lock.  Returns True
    when one was started.  Two callers racing may both start one: the second exits at
    once, finding the lock held."""
    from mullui.runtime.tmux import _fmt_literal

    lock = SupervisorLock(ctx.paths.supervisor_lock)
    if not lock.is_free():
        return False
    env = {k: v for k, v in os.environ.items() if k in WATCH_ENV}
    argv = [sys.executable, "-m", "mullui", "watch"]
    # In the repository when there is one, so its .mullui.toml ([notify], limits) applies.
    # tmux expands -c as a format: a "#(...)" in the path would run (hence _fmt_literal).
    cwd = str(ctx.repo_or_none() or Path.home())
    try:
        base = ctx.tmux.base_argv()
        envargs = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        has = subprocess.run(
            [*base, "has-session", "-t", f"={WATCH_SESSION}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if has.returncode == 0:
            cmd = [
                *base,
                "new-window",
                "-d",
                "-t",
                f"={WATCH_SESSION}:",
                "-n",
                "watch",
                "-c",
                _fmt_literal(cwd),
                *envargs,
                *argv,
            ]
        else:
            cmd = [
                *base,
                "new-session",
                "-d",
                "-s",
                WATCH_SESSION,
                "-n",
                "watch",
                "-c",
                _fmt_literal(cwd),
                *envargs,
                *argv,
            ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        if r.returncode != 0:
            raise MulluiError(r.stderr.strip() or "tmux refused")
    except (MulluiError, OSError, subprocess.SubprocessError) as e:
        print(f"mullui: could not start `mullui watch`: {e}", file=sys.stderr)
        return False
    return True


def remote_agents_live(agents: Iterable[Agent]) -> bool:
    """True when an agent on a host may still change: its mirror moves only through a
    supervisor's link to the host, so without one it would quietly keep a stale state."""
    return any(a.host and (a.state in RUNNING or a.state is State.UNKNOWN) for a in agents)
