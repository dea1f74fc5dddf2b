"""The change journal (``changes.jsonl``): one bounded line per record update.

Each line is ``{"agent", "seq", "transitions", "record"}``: the transitions the update
added (a delta) and the record as it is now with only the tail of its history
(:func:`entry`), so a line's size does not grow with the agent's age.  The notifier, the
TUI's change feed and ``mullui events`` (a remote host's feed) read it from a cursor.

Cursors are *logical* byte offsets that only grow.  When the file passes
:data:`COMPACT_AT` bytes it is compacted: a new file holds a header line
``{"journal": 1, "start": S}`` (S: the logical offset of the old file's end) and then the
latest line of every agent that still has a record; new lines follow.  Byte ``p`` of the
file (after the header) is logical offset ``S + p - len(header)``.  A reader whose
cursor is before ``S`` was behind: it reads the compacted lines (every agent's latest
state, once) and goes on; one at or past ``S`` goes on where it was.  Compaction takes the
file's lock, writes the new file whole and renames it over the old one, so a kill -9 at
any moment leaves the old journal or the new one; writers re-open the file when it was
replaced under them.  Readers keep the file they opened and stream it in chunks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mullui.errors import MulluiError
from mullui.events import write_lines

#: Compact when the journal passes this size (None: never).
COMPACT_AT: int | None = 2 * 1024 * 1024
#: Transitions kept in a line's record besides those the line adds.
HISTORY_TAIL = 4
#: Longest text field kept in a line's record (the record file keeps it whole).
MAX_TEXT = 4000
#: Bytes a reader holds at once.
CHUNK = 256 * 1024

_HEADER_PREFIX = b'{"journal":'


def entry(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    added: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The journal line for a record going from ``before`` to ``after`` (both as
    ``Agent.to_record()``): the new transitions, and ``after`` with a bounded history.
    ``added``: the transitions the update made, when they may be more than ``after``'s
    history keeps (a catch-up after a long absence)."""
    old_seq = int(before.get("seq") or 0) if before is not None else 0
    hist = list(after.get("history") or ())
    if before is not None and added is not None and len(added) > len(hist):
        hist = list(added)  # the line's record carries every new one too (remote mirrors)
    new = [t for t in hist if int(t.get("seq", 0)) > old_seq] if before is not None else hist
    rec = dict(after)
    rec["history"] = hist[-max(HISTORY_TAIL, len(new)) :] if hist else []
    for k in ("question", "last_message"):  # the task is mirrored whole (remote hosts)
        v = rec.get(k)
        if isinstance(v, str) and len(v) > MAX_TEXT:
            rec[k] = v[: MAX_TEXT - 1] + "…"
    return {"agent": after.get("id"), "seq": after.get("seq"), "transitions": new, "record": rec}


def encode(line: dict[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False, default=str).encode() + b"\n"


# ---- writing ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The journal file open and flocked; re-opened when compaction replaced it while we
    waited for the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if not same:
            os.close(fd)
            continue
        try:
            yield fd
        finally:
            os.close(fd)  # closing releases the lock
        return
    raise MulluiError(f"cannot lock {path}: it keeps being replaced")


def append(path: Path, data: bytes, *, compact_at: int | None = None, keep: Any = None) -> None:
    """Append whole lines; compact once the file passes ``compact_at`` bytes (default
    :data:`COMPACT_AT`; ``keep``: a predicate on agent ids whose latest line the compacted
    file keeps)."""
    limit = compact_at if compact_at is not None else COMPACT_AT
    with _locked(path) as fd:
        start = write_lines(fd, path, data, seal=True)
        if limit is not None and start + len(data) > limit:
            _compact(path, fd, keep)


def compact(path: Path, keep: Any = None) -> None:
    """Compact now (tests, ``mullui`` maintenance)."""
    if not path.exists():
        return
    with _locked(path) as fd:
        _compact(path, fd, keep)


def _compact(path: Path, fd: int, keep: Any) -> None:
    start, hlen = _header(fd)
    end = start + os.fstat(fd).st_size - hlen
    latest: dict[str, dict[str, Any]] = {}
    for e, _ in _lines(fd, hlen, start, hlen):
        aid = e.get("agent")
        if isinstance(aid, str):
            latest.pop(aid, None)  # re-insert: the compacted file keeps journal order
            latest[aid] = e
    out = [json.dumps({"journal": 1, "start": end}).encode() + b"\n"]
    for aid, e in latest.items():
        if keep is not None and not keep(aid):
            continue
        out.append(encode(_snapshot(e)))
    from mullui.files import atomic_write

    try:
        atomic_write(path, b"".join(out))
    except (MulluiError, OSError) as e:
        # Not compacting is not losing anything: the journal stays as it is.
        print(f"mullui: could not compact {path}: {e}", file=sys.stderr)


def _snapshot(e: dict[str, Any]) -> dict[str, Any]:
    """An agent's latest line as the compacted file keeps it: its transitions include the
    current state's, so a reader that was behind still learns (and notifies) it once."""
    rec = e.get("record") if isinstance(e.get("record"), dict) else {}
    trs = [t for t in e.get("transitions") or () if isinstance(t, dict)]
    hist = [t for t in (rec or {}).get("history") or () if isinstance(t, dict)]
    if hist and all(t.get("seq") != hist[-1].get("seq") for t in trs):
        trs = [*trs, hist[-1]]
    return {**e, "transitions": trs}


# ---- reading ----------------------------------------------------------------------------------
def _header(fd: int) -> tuple[int, int]:
    """(logical start, header length) of an open journal; (0, 0) for a file that was
    never compacted."""
    first = os.pread(fd, 256, 0)
    if not first.startswith(_HEADER_PREFIX):
        return 0, 0
    nl = first.find(b"\n")
    if nl < 0:
        return 0, 0
    try:
        start = int(json.loads(first[:nl])["start"])
    except (ValueError, KeyError, TypeError):
        return 0, 0
    return max(0, start), nl + 1


def end_cursor(path: Path) -> int:
    """The logical offset of the journal's end (where a new reader that wants only what
    comes next starts)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        start, hlen = _header(fd)
        return start + os.fstat(fd).st_size - hlen
    finally:
        os.close(fd)


def read(path: Path, cursor: int = 0, *, limit: int | None = None) -> Iterator[tuple[Any, int]]:
    """Entries after logical offset ``cursor``, each with the cursor just after it;
    complete lines only, streamed (at most :data:`CHUNK` bytes held), a corrupt line
    reported once and skipped.  ``limit``: stop after about this many bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        start, hlen = _header(fd)
        size = os.fstat(fd).st_size
        pos = hlen + cursor - start
        if cursor < start or pos > size or not _at_line_start(fd, pos, hlen):
            pos = hlen  # behind the last compaction, or a cursor from another journal
        yield from _lines(fd, pos, start, hlen, limit=limit, path=path)
    finally:
        os.close(fd)


def _at_line_start(fd: int, pos: int, hlen: int) -> bool:
    return pos == hlen or os.pread(fd, 1, pos - 1) == b"\n"


def _lines(
    fd: int,
    pos: int,
    start: int,
    hlen: int,
    *,
    limit: int | None = None,
    path: Path | None = None,
) -> Iterator[tuple[Any, int]]:
    read_bytes = 0
    buf = b""
    while limit is None or read_bytes < limit:
        chunk = os.pread(fd, CHUNK, pos + len(buf))
        if not chunk:
            return
        buf += chunk
        read_bytes += len(chunk)
        end = buf.rfind(b"\n")
        if end < 0:
            if len(buf) > 64 * CHUNK:  # one line of 16 MB: not ours
                pos += len(buf)
                buf = b""
            continue
        for raw in buf[: end + 1].splitlines(keepends=True):
            pos += len(raw)
            line = raw.strip()
            if not line:
                continue
            try:
                e = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                if path is not None:
                    print(
                        f"mullui: {path} byte {pos - len(raw)}: skipped a corrupt line",
                        file=sys.stderr,
                    )
                continue
            if isinstance(e, dict):
                yield e, start + pos - hlen
        buf = buf[end + 1 :]
