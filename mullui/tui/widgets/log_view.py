"""The live log of one agent: ANSI colours kept, follows the tail, bounded memory.

Watching: a 250 ms ``stat`` of the one selected file, and only while the view is shown
(paused on Hide).  We chose this over ``watchfiles`` on the log: agents' logs change many
times a second while they work, so an inotify watch would wake us just as often and a
thread per watched file buys nothing; a stat every 250 ms of one file costs well under
0.1 % of a core and stops entirely when the pane is hidden.

Indexing: a small append (the usual case) is taken in on the UI thread; a big one (a
flood: ~12 MB per poll at 50 MB/s, a first look at a big log) is read and indexed on a
thread worker and the offsets handed back in an :class:`LogView.Indexed` message, so key
presses are not queued behind it.  One indexer per file at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from mullui.tui import literal
from mullui.tui.log_lines import Appended, LogLines

POLL_S = 0.25
#: Indexes of the last few logs shown, kept (their line caches dropped) so coming back to
#: an agent only indexes what it printed meanwhile: re-indexing a busy agent's 400 MB log
#: took ~0.1-0.3 s on the UI thread every time the selection came back (bench_tui).
RECENT_LOGS = 4
#: Appends up to this size are indexed on the UI thread (well under 1 ms); bigger ones on
#: a worker.  A 50 MB/s flood appended ~12 MB per poll: 15-40 ms of indexing in the UI
#: thread pushed key echo through tmux to p95 51.7 ms (bench_tui).
SYNC_INDEX_BYTES = 256 * 1024


class LogView(ScrollView, can_focus=True):
    """A virtual view of a log file: draws only the visible lines."""

    DEFAULT_CSS = """
    LogView { background: $surface; overflow-x: hidden; }
    """
    BINDINGS = [
        Binding("j", "scroll_down", "down", show=False),
        Binding("k", "scroll_up", "up", show=False),
        Binding("G", "scroll_end", "end", show=False),
        Binding("g", "scroll_home", "top", show=False),
    ]

    follow: reactive[bool] = reactive(True)

    class Indexed(Message, bubble=False):
        """A worker's reading of a log, to apply on the UI thread (None: nothing new)."""

        def __init__(self, lines: LogLines, appended: Appended | None) -> None:
            super().__init__()
            self.lines = lines
            self.appended = appended

    def __init__(
        self,
        path: Path | None = None,
        *,
        empty_text: str = "No output yet.",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.empty_text = empty_text
        self.lines: LogLines | None = LogLines(path) if path else None
        self._recent: OrderedDict[Path, LogLines] = OrderedDict()
        self._timer: Timer | None = None
        self._strips: dict[int, Strip] = {}
        # Files with a worker reading them: never two indexers for one file, and no
        # synchronous scan while one runs (its result would then be stale and dropped).
        self._indexing: set[Path] = set()

    # ---- the file -----------------------------------------------------------------
    def show_file(self, path: Path | None, empty_text: str | None = None) -> None:
        """Switch to another agent's log (or none) and jump to its tail."""
        if empty_text is not None:
            self.empty_text = empty_text
        if self.lines is not None and path == self.lines.path:
            return
        if self.lines is not None:
            self.lines.forget_text()
            self._recent[self.lines.path] = self.lines
            self._recent.move_to_end(self.lines.path)
            while len(self._recent) > RECENT_LOGS:
                self._recent.popitem(last=False)
        kept = self._recent.pop(path, None) if path else None
        self.lines = kept if kept is not None else (LogLines(path) if path else None)
        self._strips.clear()
        self.follow = True
        self.poll()
        self.scroll_end(animate=False, immediate=True)
        self.refresh()

    @property
    def path(self) -> Path | None:
        return self.lines.path if self.lines is not None else None

    def poll(self) -> None:
        """Take in appended output; keep following the tail if we were at it."""
        lines = self.lines
        if lines is None:
            self.virtual_size = Size(self.size.width, 1)
            return
        if lines.path in self._indexing:
            return  # the worker's result comes as a message; the next poll catches up
        if lines.behind() > SYNC_INDEX_BYTES:
            self._indexing.add(lines.path)
            self.run_worker(
                lambda: self._read_off_thread(lines),
                thread=True,
                group="log-index",
                name=f"index {lines.path.name}",
            )
            if not lines.size:
                self.refresh()  # "Reading the log..." instead of the empty text
            return
        self._took_in(lines.scan())

    def _read_off_thread(self, lines: LogLines) -> None:
        appended: Appended | None = None
        try:
            appended = lines.read_appended()
        finally:
            # Always answer, even on a bug: the file's indexer slot must be freed.
            self.post_message(self.Indexed(lines, appended))

    def on_log_view_indexed(self, message: Indexed) -> None:
        self._indexing.discard(message.lines.path)
        new = message.lines.apply(message.appended)
        if message.lines is self.lines:
            self._took_in(new)

    def _took_in(self, new: int) -> None:
        """Redraw after ``new`` lines were indexed (if any, or if the size is stale)."""
        if self.lines is None:
            return
        at_end = self.follow or self.scroll_y >= self.max_scroll_y
        if not new and self.virtual_size.height == self.lines.line_count():
            return
        self._strips.clear()
        self.virtual_size = Size(self.size.width, self.lines.line_count())
        if at_end:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    # ---- timer only while visible ---------------------------------------------------
    def on_show(self, _: events.Show) -> None:
        self.poll()
        if self._timer is None:
            self._timer = self.set_interval(POLL_S, self.poll)
        else:
            self._timer.resume()

    def on_hide(self, _: events.Hide) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_resize(self, _: events.Resize) -> None:
        self._strips.clear()
        h = self.lines.line_count() if self.lines is not None else 1
        self.virtual_size = Size(self.size.width, h)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Scrolling up stops following; reaching the bottom again resumes it.
        self.follow = round(new) >= self.max_scroll_y

    # ---- drawing --------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.rich_style
        index = round(self.scroll_y) + y
        if self.lines is None or self.lines.line_count() == 0:
            if y == 0:
                note = literal.visible(self.empty_text)
                if self.lines is not None and self.lines.path in self._indexing:
                    note = "Reading the log…"
                return Strip([Segment(note[:width], style + Style(dim=True))]).extend_cell_length(
                    width, style
                )
            return Strip.blank(width, style)
        if index >= self.lines.line_count():
            return Strip.blank(width, style)
        strip = self._strips.get(index)
        if strip is None:
            # Colours kept; OSC, cursor moves and other escapes never reach the terminal.
            text = literal.from_ansi(self.lines.line(index))
            text.truncate(width)
            strip = Strip(text.render(self.app.console), text.cell_len)
            if len(self._strips) > 512:
                self._strips.clear()
            self._strips[index] = strip
        return strip.crop_extend(0, width, style).apply_style(style)
