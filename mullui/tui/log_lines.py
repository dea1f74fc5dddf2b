"""A bounded index of a growing log file: line *offsets*, not text (as Toolong does).

An agent's pane log (``pipe-pane``) only grows and can reach gigabytes.  We keep the byte
offset of the start of each of the last :data:`MAX_LINES` lines (8 bytes a line in an
``array``) and read a line's bytes only when it is drawn; drawn lines are cached in a
small LRU.  Memory is therefore bounded however big the file grows: ~1.6 MB of offsets
plus :data:`CACHE_LINES` rendered lines.
"""

from __future__ import annotations

import os
from array import array
from collections import OrderedDict
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

        A file that shrank or was replaced (truncated, rotated) is indexed afresh.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._scanned:
                self.reset()
            return 0
        if self._ino is not None and (st.st_ino != self._ino or st.st_size < self._scanned):
            self.reset()
        self._ino = st.st_ino
        if st.st_size == self._scanned:
            return 0
        before = len(self._starts) + self.dropped
        # The line that was last (maybe half written) is about to grow: forget its text.
        self._cache.pop(before - 1, None)
        with open(self.path, "rb") as f:
            f.seek(self._scanned)
            pos = self._scanned
            if pos == 0:
                self._starts.append(0)
            # Far behind (a first look at a log of gigabytes, a flood between two polls):
            # only the last max_lines lines are kept anyway, so the bytes before the tail
            # are only counted (C speed), not indexed line by line on the UI thread (a
            # 1 GB log took 2.5 s to show that way; benchmarks/bench_tui.py).
            skip_to = st.st_size - self.max_lines * TAIL_LINE_BYTES
            if skip_to > pos:
                skipped = 0
                while pos < skip_to:
                    chunk = f.read(min(CHUNK, skip_to - pos))
                    if not chunk:
                        break
                    skipped += chunk.count(b"\n")
                    pos += len(chunk)
                self.dropped += len(self._starts) + skipped
                self._starts = array("Q")
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                i = chunk.find(b"\n")
                while i >= 0:
                    self._starts.append(pos + i + 1)
                    i = chunk.find(b"\n", i + 1)
                pos += len(chunk)
            self._scanned = pos
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


def clean(line: str) -> str:
    """What a terminal would show of one raw pane line: ``\\r`` redraws keep only the last
    part (progress bars), trailing newline dropped, tabs expanded."""
    line = line.rstrip("\n").rstrip("\r")
    if "\r" in line:
        line = line.rsplit("\r", 1)[-1]
    return line.expandtabs(8)
