"""Make sure a supervisor runs: a lock test, and a start only when none runs.

Every path that makes an agent live or changes what it waits on calls :func:`ensure`
(spawn, a queued agent's start, send, an agent's own hook event, a remote mirror), so it
must cost nothing in the common case - a supervisor already runs: one ``open`` and one
refused ``flock`` (~20 µs).  Standard library only (``json`` and ``subprocess`` are
imported only when one must be started), so a hook script that imports nothing else of
mullui can use it too.

Race-free: the starter takes ``supervisor.lock`` itself and hands the locked descriptor to
the ``mullui watch`` it starts (``--lock-fd``; an flock belongs to the open file, which the
child shares), so the lock is never free in between.  Of twenty starters racing, exactly
one wins the lock and starts a supervisor; the others see it held and return.

Checking whether one runs *without* taking the lock (``mullui watch --status``, the ``ls``
footer, the TUI's status line) reads ``/proc/locks``: a probe that took the lock for an
instant would make a starter racing with it believe one runs, and start none.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Mapping, Sequence

LOCK_NAME = "supervisor.lock"
#: How a hook starts a supervisor: a ``sh`` script that runs ``mullui watch --lock-fd "$1"``
#: with the directory and environment of the last command a human ran (the agent's own
#: environment may have another HOME, no session bus).  Written by mullui's commands and
#: the TUI while autostart is on, removed while it is off.  A hook with the lock held on
#: descriptor N runs ``sh supervisor-start.sh N`` (see :func:`ensure_from_hook`; the POSIX
#: ``sh`` hook does the same with ``flock -n 9``).
START_SPEC_NAME = "supervisor-start.sh"
#: Where the supervisor's stdout and stderr go (terminal notifications, warnings).
LOG_NAME = "watch.log"
LOG_KEEP_BYTES = 1 << 20
#: ``0`` (or ``false``/``no``/``off``): never start a supervisor by itself; you run
#: ``mullui watch`` yourself (a service manager, a terminal).  The test suite sets it.
AUTOSTART_ENV = "MULLUI_WATCH_AUTOSTART"
#: Tells the started watch who started it (``mullui watch --status`` shows it).
STARTED_BY_ENV = "MULLUI_WATCH_STARTED_BY"
#: What a started watch inherits from whoever starts it; never an agent's identity.
DROP_ENV = ("MULLUI_AGENT_ID", "MULLUI_AGENT_TOKEN", "MULLUI_EVENTS", "TMUX", "TMUX_PANE")


def enabled(env: Mapping[str, str] | None = None) -> bool:
    e = os.environ if env is None else env
    return e.get(AUTOSTART_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def try_lock(state_dir: str | os.PathLike[str]) -> int | None:
    """The supervisor lock's descriptor, locked by us; None when some supervisor holds it."""
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def held(state_dir: str | os.PathLike[str]) -> bool:
    """Does some process hold the supervisor lock?  Never takes it (see the module doc)."""
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        ino = os.stat(path).st_ino
    except OSError:
        return False
    try:
        with open("/proc/locks", "rb") as f:
            table = f.read()
    except OSError:
        return _holder_alive(path)  # no /proc (macOS): the pid written in the file
    needle = f":{ino} ".encode()
    return any(b"FLOCK" in line and needle in line for line in table.splitlines())


def held_elsewhere(state_dir: str | os.PathLike[str]) -> bool:
    """A supervisor other than this process (a TUI or ``mullui watch``) holds the lock."""
    return held(state_dir) and holder(state_dir) != os.getpid()


def holder(state_dir: str | os.PathLike[str]) -> int | None:
    """The pid written in the lock file (the supervisor's, while one runs)."""
    try:
        with open(os.path.join(state_dir, LOCK_NAME), "rb") as f:
            text = f.read(32).strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _holder_alive(path: str) -> bool:
    pid = holder(os.path.dirname(path))
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_pid(fd: int, pid: int) -> None:
    """The supervisor's pid as the lock file's whole content.  A descriptor opened for
    appending (a hook's ``sh`` opens it with ``>>``) is switched off appending first:
    starter and watch both write the same pid, at offset 0."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if flags & os.O_APPEND:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_APPEND)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(pid).encode(), 0)


def _detach(
    fd: int,
    state_dir: str | os.PathLike[str],
    argv: list[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``argv`` in its own session (no terminal's SIGHUP or agent's process group
    reaches it), output appended to ``watch.log``, handed our locked ``fd``; the lock
    file then names its pid.  Closes our ``fd`` either way.  Returns the pid."""
    import subprocess

    try:
        log = os.open(
            os.path.join(state_dir, LOG_NAME),
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            p = subprocess.Popen(
                argv,
                pass_fds=(fd,),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            os.close(log)
        write_pid(fd, p.pid)
        return p.pid
    finally:
        os.close(fd)  # the child holds the lock now (or, if it never started, nobody)


def start(
    fd: int,
    state_dir: str | os.PathLike[str],
    argv: Sequence[str],
    *,
    cwd: str | None,
    env: Mapping[str, str],
    started_by: str,
) -> int:
    """Start ``argv --lock-fd FD`` detached, output to ``watch.log``; hands it our locked
    ``fd`` and closes ours.  Returns its pid."""
    log_path = os.path.join(state_dir, LOG_NAME)
    with contextlib.suppress(OSError):
        if os.stat(log_path).st_size > LOG_KEEP_BYTES:
            os.replace(log_path, log_path + ".1")
    child_env = {k: v for k, v in env.items() if k not in DROP_ENV}
    child_env[STARTED_BY_ENV] = started_by
    return _detach(
        fd,
        state_dir,
        [*argv, "--lock-fd", str(fd)],
        cwd=cwd if cwd and os.path.isdir(cwd) else None,
        env=child_env,
    )


def ensure_from_hook(state_dir: str | os.PathLike[str]) -> bool:
    """After an agent's event: unless a supervisor runs, start one the way the last human
    command would have (``supervisor-start.sh``, handed the locked descriptor).  True when
    one was started."""
    if not enabled():
        return False
    spec = os.path.join(state_dir, START_SPEC_NAME)
    if not os.path.isfile(spec):
        return False  # autostart off, or no human command ever said how
    fd = try_lock(state_dir)
    if fd is None:
        return False
    # The watch execs in that process and writes its pid again.
    _detach(fd, state_dir, ["/bin/sh", spec, str(fd)])
    return True
