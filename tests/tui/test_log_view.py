"""The log pane: offsets not text, bounded however big the log grows, follows the tail."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from mullui.paths import Paths
from mullui.tui.log_lines import LogLines, clean
from mullui.tui.widgets.log_view import LogView
from tests.tui.conftest import make_app, until


def test_index_takes_in_appended_lines_only(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"one\ntwo\nthr")
    lines = LogLines(f)
    assert lines.scan() >= 2
    assert [lines.line(i) for i in range(lines.line_count())] == ["one", "two", "thr"]
    with f.open("ab") as w:
        w.write(b"ee\nfour\n")
    lines.scan()
    assert [lines.line(i) for i in range(lines.line_count())] == ["one", "two", "three", "four"]


def test_index_is_bounded_however_big_the_log(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    with f.open("wb") as w:
        for i in range(300_000):
            w.write(b"line %d \x1b[32mok\x1b[0m\n" % i)
    tracemalloc.start()
    lines = LogLines(f, max_lines=50_000)
    lines.scan()
    for i in range(0, lines.line_count(), 97):
        lines.line(i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines.line_count() == 50_000
    assert lines.line(lines.line_count() - 1) == "line 299999 \x1b[32mok\x1b[0m"
    assert lines.dropped == 250_000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_truncated_log_is_read_afresh(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("old 1\nold 2\nold 3\n")
    lines = LogLines(f)
    lines.scan()
    f.write_text("new\n")
    lines.scan()
    assert [lines.line(i) for i in range(lines.line_count())] == ["new"]


def test_carriage_return_redraws_keep_the_last_frame() -> None:
    assert clean("10%\r50%\r100%\r\n") == "100%"
    assert clean("a\tb\n") == "a       b"


async def test_log_pane_follows_the_tail(fleet: Paths) -> None:
    app = make_app(fleet)
    log_file = fleet.log_file("a1")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        view = app.screen.query_one("#log", LogView)
        assert view.path == log_file
        assert view.follow
        with log_file.open("a") as w:
            w.write("\x1b[35mthe newest line\x1b[0m\r\n")
        await until(
            pilot,
            lambda: (
                view.lines is not None
                and "the newest line" in view.lines.line(view.lines.line_count() - 1)
            ),
        )
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y)
        # Scrolling up stops following; new output does not yank the view down.
        view.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert not view.follow
        with log_file.open("a") as w:
            w.write("another\r\n")
        await pilot.pause(0.4)
        assert view.scroll_y == 0


async def test_log_pane_switches_with_the_selection(fleet: Paths) -> None:
    app = make_app(fleet)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("j")  # a2 in the inbox
        view = app.screen.query_one("#log", LogView)
        assert app.main.selected_id == "a2"
        await until(pilot, lambda: view.path == fleet.log_file("a2"))
        assert view.lines is not None and view.lines.line_count() == 0  # no output yet


def test_an_off_thread_read_gives_what_a_scan_gives(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"\x1b[36mone\x1b[0m\r\ntwo\n" * 50_000 + b"half")
    scanned, read = LogLines(f, max_lines=3_000), LogLines(f, max_lines=3_000)
    scanned.scan()
    appended = read.read_appended()
    assert read.line_count() == 0  # reading alone leaves the index as it was
    read.apply(appended)
    for lines in (scanned, read):
        assert lines.line_count() == 3_001  # 3 000 whole lines + the one being written
        assert lines.dropped == 97_000  # the head only counted (jumped over)
        assert lines.line(lines.line_count() - 1) == "half"
        assert lines.line(0) == "\x1b[36mone\x1b[0m"


def test_a_read_from_a_state_the_index_left_is_dropped(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"one\n")
    lines = LogLines(f)
    stale = lines.read_appended()
    f.write_bytes(b"one\ntwo\n")
    lines.scan()  # moved on meanwhile
    assert lines.apply(stale) == 0
    assert [lines.line(i) for i in range(lines.line_count())] == ["one", "two"]
    f.unlink()
    lines.scan()
    assert lines.line_count() == 0


async def test_a_flood_is_indexed_off_the_ui_thread_one_reader_at_a_time(fleet: Paths) -> None:
    app = make_app(fleet)
    log_file = fleet.log_file("a1")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        view = app.screen.query_one("#log", LogView)
        assert view.lines is not None and view.path == log_file
        before = view.lines.size
        with log_file.open("ab") as w:
            for i in range(40_000):  # ~1.5 MB: far more than one poll indexes in place
                w.write(b"\x1b[32mflood %d\x1b[0m\r\n" % i)
        view.poll()
        view.poll()  # a second poll while the first read is out must not start another
        readers = [w for w in app.workers if w.group == "log-index"]
        assert len(readers) == 1
        assert view.lines.size == before  # nothing was indexed on the UI thread
        await until(pilot, lambda: "flood 39999" in view.lines.line(view.lines.line_count() - 1))
        assert "\x1b[32m" in view.lines.line(view.lines.line_count() - 1)  # ANSI kept
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y)  # still following
