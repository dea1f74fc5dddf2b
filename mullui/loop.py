"""Making sure the loop runs: exactly one supervisor notifies at a time (the flock on
``supervisor.lock``), and :func:`ensure_running` starts a hidden ``mullui watch`` when none
holds it (race-free: :mod:`mullui.autostart`).  It stays while :func:`needs_supervisor`
and leaves after; the next event starts one again.

The faces (CLI, TUI, demo) call :func:`ensure_running`; no operation below them does
(agents' hooks use :func:`mullui.autostart.ensure_from_hook`).  Kept apart from the
supervisor itself so that a ``mullui spawn`` does not load it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from mullui import autostart
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.files import atomic_write, read_json
from mullui.model import RUNNING, Agent, State, utcnow
from mullui.store import Store


# ---- the lock ---------------------------------------------------------------------------
class SupervisorLock:
    """An flock on ``supervisor.lock`` holding the owner's pid.  Nothing ever takes it from
    its holder: a second TUI or watch follows, or leaves."""

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
        autostart.write_pid(fd, os.getpid())
        self.fd = fd
        return True

    def adopt(self, fd: int) -> None:
        """Hold the lock our starter took and passed on (``mullui watch --lock-fd``)."""
        os.set_inheritable(fd, False)  # agents and tmux servers started by us must not hold it
        autostart.write_pid(fd, os.getpid())
        self.fd = fd

    def holder(self) -> int | None:
        return autostart.holder(self.path.parent)

    def is_free(self) -> bool:
        """Nobody holds it (judged without taking it: see :func:`mullui.autostart.held`)."""
        if self.fd is not None:
            return False
        return not autostart.held(self.path.parent)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


# ---- what keeps a supervisor running ------------------------------------------------------
def keeps_a_supervisor(a: Agent) -> bool:
    """A running agent, or one on a host that is away (``unknown``): its changes still
    come, through a supervisor."""
    return a.state in RUNNING or a.state is State.UNKNOWN


def needs_supervisor(agents: Iterable[Agent], now: datetime | None = None) -> bool:
    """Is anything left for a supervisor: an agent live (local or remote: its host is
    linked), queued, or snoozed with a wake time still ahead."""
    now = now or utcnow()
    for a in agents:
        if a.removed:
            continue
        if keeps_a_supervisor(a) or a.state is State.QUEUED:
            return True
        if a.snoozed_until is not None and a.snoozed_until > now:
            return True
    return False


def work_left(ctx: Context) -> bool:
    """Does a supervisor have anything to do: :func:`needs_supervisor` over the records
    (brought up to date with their spools), or a journaled change not yet notified."""
    try:
        if needs_supervisor(Store(ctx.paths).all()):
            return True
    except MulluiError:
        return True
    from mullui import journal

    try:
        cursor = read_json(ctx.paths.notify_cursor) or {}
        told = int(cursor.get("offset", 0)) if isinstance(cursor, dict) else 0
        return journal.end_cursor(ctx.paths.changes_file) > told  # logical offsets
    except (OSError, ValueError, TypeError):
        return False


# ---- starting one -------------------------------------------------------------------------
#: What a hidden ``mullui watch`` started by an agent's hook gets of the environment of
#: the last command a human ran (the agent's own may have another HOME, no session bus).
WATCH_ENV = (
    "MULLUI_HOME",
    "MULLUI_TMUX_SOCKET",
    "MULLUI_NOTIFY",
    "MULLUI_STATE_DIR",
    "MULLUI_WATCH_IDLE_S",
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
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)


def watch_argv() -> list[str]:
    return [sys.executable, "-m", "mullui", "watch"]


def watch_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (ours by default) with this very mullui first on PYTHONPATH, so the watch
    runs the code that started it even from a checkout that is not installed."""
    import mullui

    out = dict(os.environ if env is None else env)
    root = str(Path(mullui.__file__).resolve().parent.parent)
    parts = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        out["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return out


def start_script(cwd: str, env: dict[str, str]) -> str:
    """``supervisor-start.sh``: how an agent's hook starts a supervisor like this command
    would have (``$1``: the descriptor holding the lock).  Every value shell-quoted."""
    import shlex

    keep = {k: v for k, v in env.items() if k in WATCH_ENV}
    keep[autostart.STARTED_BY_ENV] = "hook"
    assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(keep.items()))
    return (
        "#!/bin/sh\n"
        "# Written by mullui: how an agent's hook starts the supervisor when none runs, as\n"
        "# the last mullui command would have.  $1: the descriptor holding supervisor.lock.\n"
        f"cd {shlex.quote(cwd)} 2>/dev/null || cd /\n"
        f'exec env -i {assigns} {shlex.join(watch_argv())} --lock-fd "$1"\n'
    )


def record_start_spec(ctx: Context, cwd: str, env: dict[str, str]) -> None:
    """Keep ``supervisor-start.sh`` current while autostart is on; none while it is off."""
    path = ctx.paths.state_dir / autostart.START_SPEC_NAME
    if not autostart.enabled():
        with contextlib.suppress(OSError):
            path.unlink()
        return
    text = start_script(cwd, env).encode()
    try:
        if path.read_bytes() == text:
            return
    except OSError:
        pass
    with contextlib.suppress(MulluiError, OSError):
        atomic_write(path, text)


def ensure_running(
    ctx: Context,
    *,
    started_by: str = "mullui",
    force: bool = False,
    start: bool = True,
    record: bool = True,
) -> bool:
    """Make sure a supervisor runs: when none holds the lock, start a hidden ``mullui
    watch`` (detached, its own session; output to ``watch.log``) and hand it the lock.
    Costs one refused flock when one runs; race-free (:mod:`mullui.autostart`).  Returns
    True when this call started one.  ``MULLUI_WATCH_AUTOSTART=0`` turns it off unless
    ``force``.  ``record`` (default) first notes how this command would start one, for
    agents' hooks; ``start=False`` only records."""
    state = ctx.paths.state_dir
    cwd = str(ctx.repo_or_none() or Path.home())
    env = watch_env()
    if record:
        record_start_spec(ctx, cwd, env)
    if not start or (not force and not autostart.enabled()):
        return False
    fd = autostart.try_lock(state)
    if fd is None:
        return False
    try:
        autostart.start(fd, state, watch_argv(), cwd=cwd, env=env, started_by=started_by)
    except OSError as e:
        print(f"mullui: could not start `mullui watch`: {e.strerror or e}", file=sys.stderr)
        return False
    return True


class Standby:
    """No gap when the supervisor dies: a thread blocked in ``flock`` on the supervisor
    lock (an open TUI runs one).  The moment the holder goes (``kill -9``, SIGTERM, a
    crash) it holds the lock; when :func:`work_left`, it hands the lock to a new hidden
    ``mullui watch`` at once, with no agent event needed; else it lets go and sleeps until
    :meth:`wake` (something became live)."""

    def __init__(self, ctx: Context, *, started_by: str = "tui") -> None:
        import threading

        self.ctx = ctx
        self.started_by = started_by
        self.started = 0  # watches this standby started
        self._wanted = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mullui-standby", daemon=True)

    def start(self) -> Standby:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wanted.set()

    def close(self) -> None:
        """Stop taking over (the thread may stay blocked in flock until the process
        ends: it is a daemon and holds nothing meanwhile)."""
        self._closed = True
        self._wanted.set()

    def _run(self) -> None:
        state = self.ctx.paths.state_dir
        cwd = str(self.ctx.repo_or_none() or Path.home())
        while not self._closed:
            try:
                state.mkdir(parents=True, exist_ok=True)
                fd = os.open(
                    self.ctx.paths.supervisor_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            except OSError:
                time.sleep(1.0)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # sleeps while a supervisor runs
            except OSError:
                os.close(fd)
                time.sleep(1.0)
                continue
            if not self._closed and autostart.enabled() and work_left(self.ctx):
                try:
                    autostart.start(
                        fd, state, watch_argv(), cwd=cwd, env=watch_env(), started_by="takeover"
                    )
                    self.started += 1
                except OSError as e:
                    print(f"mullui: could not start `mullui watch`: {e}", file=sys.stderr)
                    time.sleep(1.0)
                continue
            os.close(fd)
            # Look again with the lock let go: a spawn or hook that found it held by us
            # wrote its event before it looked, so it is seen now (or it started one).
            if not self._closed and autostart.enabled() and work_left(self.ctx):
                continue
            self._wanted.wait()
            self._wanted.clear()


def remote_agents_live(agents: Iterable[Agent]) -> bool:
    """True when an agent on a host may still change: its mirror moves only through a
    supervisor's link to the host, so without one it would quietly keep a stale state."""
    return any(a.host is not None and keeps_a_supervisor(a) for a in agents)
