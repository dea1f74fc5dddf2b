"""Which TUIs are open, whether the human is looking at one, and clicks handed to them.

The supervisor is a hidden ``mullui watch``; a TUI only follows.  So the watch, which
sends the desktop popups, cannot see the TUI's terminal.  Each open TUI says where it
stands in a small file, written atomically whenever that changes (never on a timer)::

    <state dir>/tui/<pid>.json   {"pid": 4242, "start": "123456", "focus": "focused", ...}

``focus`` is what the TUI's terminal reported (focus-in / focus-out, DEC mode 1004):
``focused``, ``blurred``, or ``unknown`` while the terminal has reported nothing (tmux
without ``focus-events on``, terminals that do not report focus).  Only ``focused``
holds a popup back: a terminal that never says where the human is must not swallow
notifications.

A file whose process is gone (``kill -9``: nobody removed it), or whose pid now belongs
to another process (its start time differs), counts as absent and is removed by the
first reader.

A clicked popup reaches a TUI as a request file ``<pid>.click-<ns>.json``
(``{"agent": ID, "action": "select"}``), one per click, which that TUI follows with
inotify (watchfiles), acts on and removes.

Standard library and :mod:`mullui.files` only: the watch reads these at every decision.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mullui.files import atomic_write

DIR_NAME = "tui"
FOCUSED, BLURRED, UNKNOWN = "focused", "blurred", "unknown"
FOCUS_VALUES = (FOCUSED, BLURRED, UNKNOWN)
CLICK_INFIX = ".click-"


@dataclass(frozen=True)
class Presence:
    """One open TUI, as its file says."""

    pid: int
    focus: str  # FOCUSED | BLURRED | UNKNOWN
    since: float  # time.time() of the last focus change (or of the start)
    start: str | None = None  # the process's start time (/proc/PID/stat field 22)

    @property
    def focused(self) -> bool:
        return self.focus == FOCUSED


def presence_dir(state_dir: Path) -> Path:
    return state_dir / DIR_NAME


def presence_file(state_dir: Path, pid: int) -> Path:
    return presence_dir(state_dir) / f"{pid}.json"


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22),
    or None where there is no /proc; with the pid it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc here (macOS): kill(0) is all we can ask
    after = stat[stat.rfind(b")") + 2 :].split()
    if after and after[0] == b"Z":
        return False  # killed, not yet reaped by its parent
    return start is None or (len(after) > 19 and after[19].decode() == start)


def write(state_dir: Path, focus: str, *, pid: int | None = None) -> Presence:
    """Say (atomically) that the TUI ``pid`` (default: this process) is open with
    ``focus``; returns what was written."""
    if focus not in FOCUS_VALUES:
        raise ValueError(f"focus must be one of {FOCUS_VALUES}, not {focus!r}")
    pid = os.getpid() if pid is None else pid
    p = Presence(pid=pid, focus=focus, since=time.time(), start=process_start(pid))
    body = {"pid": p.pid, "start": p.start, "focus": p.focus, "since": p.since}
    atomic_write(presence_file(state_dir, pid), json.dumps(body).encode())
    return p


def ready_file(state_dir: Path, pid: int) -> Path:
    """The file a TUI touches until its click follower sees a change (watchfiles says
    nothing when its watcher is up); removed once it is, or with the TUI's own files."""
    return presence_dir(state_dir) / f".ready-{pid}"


def remove(state_dir: Path, pid: int | None = None) -> None:
    """The TUI ``pid`` (default: this process) is closing: its file and any click it
    did not take go."""
    pid = os.getpid() if pid is None else pid
    _remove_all(presence_dir(state_dir), pid)


def _remove_all(folder: Path, pid: int) -> None:
    for own in (folder / f"{pid}.json", ready_file(folder.parent, pid)):
        with contextlib.suppress(OSError):
            own.unlink(missing_ok=True)
    for click in clicks(folder.parent, pid):
        with contextlib.suppress(OSError):
            click.unlink(missing_ok=True)


def _read(path: Path) -> Presence | None:
    try:
        raw = json.loads(path.read_bytes())
        focus = raw["focus"]
        start = raw.get("start")
        return Presence(
            pid=int(raw["pid"]),
            focus=focus if focus in FOCUS_VALUES else UNKNOWN,
            since=float(raw.get("since") or 0.0),
            start=None if start is None else str(start),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live(state_dir: Path) -> list[Presence]:
    """The open TUIs, most recently changed first.  Files of processes that are gone are
    removed on the way (with the clicks nobody will take)."""
    folder = presence_dir(state_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found: list[Presence] = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext != "json" or not stem.isdigit():
            continue
        p = _read(folder / name)
        if p is None or p.pid != int(stem):
            continue  # torn or foreign: its writer rewrites it at the next change
        if _alive(p.pid, p.start):
            found.append(p)
        else:
            _remove_all(folder, p.pid)
    found.sort(key=lambda p: p.since, reverse=True)
    return found


def tui_focused(state_dir: Path) -> bool:
    """Is the human looking at an open TUI right now (its terminal reported focus)?"""
    return any(p.focused for p in live(state_dir))


# ---- clicks handed to a TUI ------------------------------------------------------------------
def request_click(state_dir: Path, pid: int, agent_id: str, action: str) -> Path:
    """Hand a clicked popup to the TUI ``pid``: one new file it follows and removes."""
    path = presence_dir(state_dir) / f"{pid}{CLICK_INFIX}{time.time_ns()}.json"
    atomic_write(path, json.dumps({"agent": agent_id, "action": action}).encode())
    return path


def clicks(state_dir: Path, pid: int | None = None) -> list[Path]:
    """The click requests waiting for the TUI ``pid`` (default: this process), oldest
    first."""
    pid = os.getpid() if pid is None else pid
    prefix = f"{pid}{CLICK_INFIX}"
    try:
        names = os.listdir(presence_dir(state_dir))
    except OSError:
        return []
    picked = [n for n in names if n.startswith(prefix) and n.endswith(".json")]
    return [presence_dir(state_dir) / n for n in sorted(picked, key=_click_order)]


def _click_order(name: str) -> int:
    digits = name.rpartition(CLICK_INFIX)[2].removesuffix(".json")
    return int(digits) if digits.isdigit() else 0


def take_click(path: Path) -> tuple[str, str] | None:
    """Read and remove one click request: (agent id, action), or None when it is torn,
    foreign or already taken."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raw = None
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    if not isinstance(raw, dict):
        return None
    agent, action = raw.get("agent"), raw.get("action")
    if not isinstance(agent, str) or not isinstance(action, str):
        return None
    return agent, action


__all__ = [
    "BLURRED",
    "FOCUSED",
    "UNKNOWN",
    "Presence",
    "clicks",
    "live",
    "remove",
    "request_click",
    "take_click",
    "tui_focused",
    "write",
]
