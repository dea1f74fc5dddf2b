"""A bounded index of a growing log file: line *offsets*, not text (as Toolong does).

An agent's pane log (``pipe-pane``) only grows and can reach gigabytes.  We keep the byte
offset of the start of each of the last :data:`MAX_LINES` lines (8 bytes a line in an
``array``) and read a line's bytes only when it is drawn; drawn lines are cached in a
small LRU.  Memory is therefore bounded however big the file grows: ~1.6 MB of offsets
plus :data:`CACHE_LINES` rendered lines.
"""

from __future__ import annotations

import operator
import os
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path

MAX_LINES = 200_000
CACHE_LINES = 2_000
CHUNK = 1 << 20
MAX_LINE_BYTES = 16 * 1024  # a line longer than this is drawn clipped
#: Far behind the end, only the last ``max_lines * TAIL_LINE_BYTES`` bytes are indexed line
#: by line; the lines before them are counted (see :meth:`LogLines.scan`).  Where lines
#: average more than this, fewer than ``max_lines`` are kept: the last 25 MB by default.
TAIL_LINE_BYTES = 128


class LogLines:
    """Line offsets of one file; call :meth:`scan` to take in what was appended."""

    def __init__(self, path: Path, *, max_lines: int = MAX_LINES) -> None:
        self.path = path
        self.max_lines = max_lines
        self._starts: array[int] = array("Q")
        self._scanned = 0  # bytes of the file already indexed
        self._ino: int | None = None
        self.dropped = 0  # lines forgotten at the top (beyond max_lines)
        self._cache: OrderedDict[int, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def size(self) -> int:
        return self._scanned

    def forget_text(self) -> None:
        """Drop the cached line texts (the offsets stay): for an index kept aside."""
        self._cache.clear()

    def reset(self) -> None:
        self._starts = array("Q")
        self._scanned = 0
        self.dropped = 0
        self._cache.clear()

    def scan(self) -> int:
        """Index bytes appended since the last scan; returns the number of new lines.

        A file that shrank or was replaced (truncated, rotated) is indexed afresh.  The
        same as :meth:`read_appended` then :meth:`apply`, on the calling thread.
        """
        return self.apply(self.read_appended())

    def behind(self) -> int:
        """Bytes the index lags the file by (a stat, no read): how big the next scan is."""
        try:
            st = os.stat(self.path)
        except OSError:
            return self._scanned
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._scanned):
            return st.st_size
        return st.st_size - self._scanned

    def read_appended(self) -> Appended | None:
        """Read what was appended and find its line starts, without changing the index.

        Safe off the UI thread while the owner keeps drawing from this index, so long as
        only one ``read_appended`` runs at a time and only the owner calls :meth:`apply`.
        None: nothing to take in (or the file cannot be read).
        """
        scanned, ino = self._scanned, self._ino  # the state this read builds on
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if scanned:
                return Appended(scanned, ino, True, None, 0, array("Q"), 0, False)
            return None
        except OSError:
            return None
        reset = ino is not None and (st.st_ino != ino or st.st_size < scanned)
        pos = 0 if reset else scanned
        if st.st_size == pos and not reset:
            if ino is None:  # remember the inode, so a later replacement is seen
                return Appended(scanned, ino, False, st.st_ino, pos, array("Q"), 0, False)
            return None
        starts: array[int] = array("Q")
        skipped = 0
        jumped = False
        try:
            with open(self.path, "rb") as f:
                f.seek(pos)
                if pos == 0:
                    starts.append(0)
                # Far behind (a first look at a log of gigabytes, a flood between two
                # polls): only the last max_lines lines are kept anyway, so the bytes
                # before the tail are only counted (C speed), not indexed line by line (a
                # 1 GB log took 2.5 s to show that way; benchmarks/bench_tui.py).
                skip_to = st.st_size - self.max_lines * TAIL_LINE_BYTES
                if skip_to > pos:
                    skipped = len(starts)
                    while pos < skip_to:
                        chunk = f.read(min(CHUNK, skip_to - pos))
                        if not chunk:
                            break
                        skipped += chunk.count(b"\n")
                        pos += len(chunk)
                    starts = array("Q")
                    jumped = True
                while True:
                    chunk = f.read(CHUNK)
                    if not chunk:
                        break
                    _line_starts(chunk, pos, starts)
                    pos += len(chunk)
        except OSError:
            return None
        return Appended(scanned, ino, reset, st.st_ino, pos, starts, skipped, jumped)

    def apply(self, appended: Appended | None) -> int:
        """Take in what :meth:`read_appended` found; returns the number of new lines.

        A result read from a state this index has since left (another apply, a reset) is
        ignored: the next read starts from where the index is now.
        """
        if appended is None or (appended.scanned, appended.ino) != (self._scanned, self._ino):
            return 0
        if appended.reset:
            self.reset()
        if appended.new_ino is None:  # the file is gone
            self._ino = None
            return 0
        self._ino = appended.new_ino
        if appended.end == self._scanned:
            return 0
        before = len(self._starts) + self.dropped
        # The line that was last (maybe half written) is about to grow: forget its text.
        self._cache.pop(before - 1, None)
        if appended.jumped:
            self.dropped += len(self._starts) + appended.skipped
            self._starts = appended.starts
        else:
            self._starts.extend(appended.starts)
        self._scanned = appended.end
        # The last start may point at the end of the file (text ends with a newline):
        # that "line" is the one still being written; it is not counted until it grows.
        if len(self._starts) > self.max_lines + 1:  # +1: the start of the line to come
            drop = len(self._starts) - self.max_lines - 1
            del self._starts[:drop]
            self.dropped += drop
        return len(self._starts) + self.dropped - before

    def line_count(self) -> int:
        """Lines available to draw; a trailing empty line (the file ends with a newline)
        is not counted."""
        n = len(self._starts)
        if n and self._starts[-1] >= self._scanned:
            n -= 1
        return n

    def line(self, index: int) -> str:
        """The text of line ``index`` (0 = the oldest line still indexed), ANSI intact."""
        key = index + self.dropped
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        if index < 0 or index >= len(self._starts):
            return ""
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else self._scanned
        length = min(end - start, MAX_LINE_BYTES)
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                raw = f.read(length)
        except OSError:
            return ""
        text = clean(raw.decode("utf-8", "replace"))
        self._cache[key] = text
        if len(self._cache) > CACHE_LINES:
            self._cache.popitem(last=False)
        return text


@dataclass(frozen=True)
class Appended:
    """What :meth:`LogLines.read_appended` found: made on a worker thread, applied on the
    UI thread.  ``scanned``/``ino``: the index state it was read from."""

    scanned: int
    ino: int | None
    reset: bool  # the file shrank, was replaced or is gone: the old index is void
    new_ino: int | None  # None: the file is gone
    end: int  # bytes of the file indexed after applying
    starts: array[int]  # line starts found past ``scanned`` (or from 0 after a reset)
    skipped: int  # lines only counted, not indexed (``jumped``), all dropped
    jumped: bool  # the old starts are dropped too: the new ones begin far down the file


def _line_starts(chunk: bytes, pos: int, starts: array[int]) -> None:
    """Append the offset after each newline of ``chunk`` (which starts at ``pos``).

    split + accumulate run at C speed: ~3x less CPU than a ``find`` loop in Python (12 MB
    of coloured ~100-byte lines, one 250 ms poll of a 50 MB/s flood: 10-14 ms against
    31-44 ms, Python 3.11), which matters even off the UI thread: the GIL is shared.
    """
    parts = chunk.split(b"\n")
    parts.pop()  # what follows the last newline: not a line start of its own
    ends = accumulate(map(operator.add, map(len, parts), repeat(1)), initial=pos)
    next(ends)  # ``pos`` itself is already a start
    starts.extend(ends)


def clean(line: str) -> str:
    """What a terminal would show of one raw pane line: ``\\r`` redraws keep only the last
    part (progress bars), trailing newline dropped, tabs expanded."""
    line = line.rstrip("\n").rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1]
    return line.expandtabs(8)
