"""The live log of one agent: ANSI colours kept, follows the tail, bounded memory.

Watching: a 250 ms ``stat`` of the one selected file, and only while the view is shown
(paused on Hide).  We chose this over ``watchfiles`` on the log: agents' logs change many
times a second while they work, so an inotify watch would wake us just as often and a
thread per watched file buys nothing; a stat every 250 ms of one file costs well under
0.1 % of a core and stops entirely when the pane is hidden.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from mullui.tui.log_lines import LogLines

POLL_S = 0.25
#: Indexes of the last few logs shown, kept (their line caches dropped) so coming back to
#: an agent only indexes what it printed meanwhile: re-indexing a busy agent's 400 MB log
#: took ~0.1-0.3 s on the UI thread every time the selection came back (bench_tui).
RECENT_LOGS = 4


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
        if self.lines is None:
            self.virtual_size = Size(self.size.width, 1)
            return
        at_end = self.follow or self.scroll_y >= self.max_scroll_y
        new = self.lines.scan()
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
                return Strip(
                    [Segment(self.empty_text[:width], style + Style(dim=True))]
                ).extend_cell_length(width, style)
            return Strip.blank(width, style)
        if index >= self.lines.line_count():
            return Strip.blank(width, style)
        strip = self._strips.get(index)
        if strip is None:
            text = Text.from_ansi(self.lines.line(index), no_wrap=True, end="")
            text.truncate(width)
            strip = Strip(text.render(self.app.console), text.cell_len)
            if len(self._strips) > 512:
                self._strips.clear()
            self._strips[index] = strip
        return strip.crop_extend(0, width, style).apply_style(style)
