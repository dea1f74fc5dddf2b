"""The event spool: one append-only JSON-lines file per agent.

Writers (``mullui hook``, the runtime, the CLI) append whole lines with one ``write`` on an
``O_APPEND`` descriptor under an advisory lock, so concurrent hooks never interleave.
Readers consume complete lines only: a line still being written (no newline yet) is left
for the next read, a complete line that is not JSON is reported once and skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

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
        slim: Event = {k: ev[k] for k in ("eid", "kind", "at", "agent", "state", "cause") if k in ev}
        slim["clipped"] = True
        line = json.dumps(slim, ensure_ascii=False, separators=(",", ":"), default=str)
    return (line + "\n").encode("utf-8", "replace")


def append_event(paths: Paths, agent_id: str, ev: Event) -> Event:
    """Append ``ev`` to the agent's spool; returns it (with ``agent`` filled in)."""
    ev.setdefault("agent", agent_id)
    append_line(paths.spool_file(agent_id), encode(ev))
    return ev


def append_line(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)  # closing releases the lock


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
