"""The event spool: one append-only JSON-lines file per agent.

Writers (``mullui hook``, the runtime, the CLI) append whole lines with one ``write`` on an
``O_APPEND`` descriptor under an advisory lock, so concurrent hooks never interleave.
Readers consume complete lines only: a line still being written (no newline yet) is left
for the next read, a complete line that is not JSON is reported once and skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from mullui.errors import MulluiError
from mullui.model import iso, utcnow
from mullui.paths import Paths

Event = dict[str, Any]

#: Largest event line kept; bigger payloads are clipped field by field (a 1 MB hook
#: payload must not bloat every replay).
MAX_LINE = 256 * 1024
MAX_FIELD = 16 * 1024


def new_event(kind: str, **data: Any) -> Event:
    """An event with a unique id and a timestamp."""
    ev: Event = {"eid": uuid.uuid4().hex, "kind": kind, "at": iso(utcnow())}
    ev.update(data)
    return ev


def _clip(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD else value[:MAX_FIELD] + "…[clipped]"
    if depth > 6:
        return None
    if isinstance(value, dict):
        return {str(k)[:200]: _clip(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list):
        return [_clip(v, depth + 1) for v in value[:200]]
    return value


def encode(ev: Event) -> bytes:
    line = json.dumps(ev, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(line) > MAX_LINE:
        line = json.dumps(_clip(ev), ensure_ascii=False, separators=(",", ":"), default=str)
    if len(line) > MAX_LINE:
        slim: Event = {
            k: ev[k] for k in ("eid", "kind", "at", "agent", "state", "cause") if k in ev
        }
        slim["clipped"] = True
        line = json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=str)
    return (line + "\n").encode("utf-8", "replace")


def append_event(paths: Paths, agent_id: str, ev: Event) -> Event:
    """Append ``ev`` to the agent's spool; returns it (with ``agent`` filled in)."""
    ev.setdefault("agent", agent_id)
    append_line(paths.spool_file(agent_id), encode(ev), seal=True)
    return ev


def append_line(path: Path, data: bytes, *, seal: bool = False) -> None:
    """Append ``data`` under the file's lock.  A write that fails part way (disk full) is
    cut back off, so it leaves no half line.  With ``seal``, a torn last line left by a
    writer that died mid-line (kill -9) is ended first: glued to it, ``data`` would be
    unreadable too (a user's ``stop`` lost, seen in the fault tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write_lines(fd, path, data, seal=seal)
    finally:
        os.close(fd)  # closing releases the lock


def write_lines(fd: int, path: Path, data: bytes, *, seal: bool = False) -> int:
    """Append ``data`` to the locked ``O_APPEND`` file ``fd``, all or nothing (a failed
    write is cut back off); returns the file's size before.  With ``seal`` a torn last
    line is ended first."""
    start = os.fstat(fd).st_size
    # Writers hold the lock for whole lines: under it, a missing newline is a torn tail.
    if seal and start and os.pread(fd, 1, start - 1) != b"\n":
        data = b"\n" + data
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError as e:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise MulluiError(
            f"cannot write {path}: {e.strerror or e} — free space or fix permissions"
        ) from e
    return start


def at_line_start(path: Path, offset: int) -> bool:
    """True when byte ``offset`` of ``path`` begins a line (a reader's saved offset that
    is not - the file was cut or rewritten behind it - must not be trusted)."""
    if offset == 0:
        return True
    try:
        with path.open("rb") as f:
            f.seek(offset - 1)
            return f.read(1) == b"\n"
    except OSError:
        return False


def seal_torn_tail(path: Path, start: int) -> int | None:
    """End a torn last line that begins at ``start`` (its writer died mid-line); returns
    the offset after it, or None when there is none or a writer is still at work."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a writer holds it: the line is being written, not torn
        size = os.fstat(fd).st_size
        if size <= start or b"\n" in os.pread(fd, size - start, start):
            return None
        os.write(fd, b"\n")
        return size + 1
    except OSError:
        return None
    finally:
        os.close(fd)


def read_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Events from byte ``offset`` to the last complete line; returns (events, new offset)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    out: list[Event] = []
    pos = offset
    for raw in data[: end + 1].splitlines(keepends=True):
        pos += len(raw)
        line = raw.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            print(
                f"mullui: {path} byte {pos - len(raw)}: skipped a corrupt event line",
                file=sys.stderr,
            )
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out, offset + end + 1
