"""The presence files of open TUIs (mullui.presence): what the watch reads before each
popup.  Real processes and real files: a live TUI counts, a dead or reused pid does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mullui import presence


def test_a_tui_that_reported_focus_holds_popups_back(tmp_path: Path) -> None:
    assert presence.live(tmp_path) == [] and not presence.tui_focused(tmp_path)
    presence.write(tmp_path, presence.UNKNOWN)
    [me] = presence.live(tmp_path)
    assert me.pid == os.getpid() and me.focus == "unknown"
    assert not presence.tui_focused(tmp_path)  # a terminal that never said: popups go
    presence.write(tmp_path, presence.FOCUSED)
    assert presence.tui_focused(tmp_path)
    presence.write(tmp_path, presence.BLURRED)
    assert not presence.tui_focused(tmp_path)
    presence.remove(tmp_path)
    assert presence.live(tmp_path) == []


def test_a_dead_tui_counts_as_absent_and_its_files_are_removed(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        presence.write(tmp_path, presence.FOCUSED, pid=child.pid)
        click = presence.request_click(tmp_path, child.pid, "a1", "select")
        assert presence.tui_focused(tmp_path)
        child.kill()  # kill -9
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert not presence.tui_focused(tmp_path)
        assert not presence.presence_file(tmp_path, child.pid).exists()
        assert not click.exists()
    finally:
        child.kill()
        child.wait()


def test_a_pid_now_used_by_another_process_counts_as_absent(tmp_path: Path) -> None:
    # Our own pid, but a start time that is not ours: the TUI that wrote it is gone.
    path = presence.presence_file(tmp_path, os.getpid())
    path.parent.mkdir(parents=True)
    body = {"pid": os.getpid(), "start": "1", "focus": "focused", "since": 0}
    path.write_text(json.dumps(body))
    assert presence.live(tmp_path) == []
    assert not path.exists()


def test_a_torn_presence_file_is_ignored(tmp_path: Path) -> None:
    path = presence.presence_file(tmp_path, os.getpid())
    path.parent.mkdir(parents=True)
    path.write_text('{"pid": 1')
    assert presence.live(tmp_path) == []


def test_clicks_are_taken_oldest_first_and_once(tmp_path: Path) -> None:
    first = presence.request_click(tmp_path, os.getpid(), "a1", "select")
    presence.request_click(tmp_path, os.getpid(), "a2", "attach")
    presence.request_click(tmp_path, os.getpid() + 1, "a3", "select")  # another TUI's
    paths = presence.clicks(tmp_path)
    assert paths[0] == first and len(paths) == 2
    assert [presence.take_click(p) for p in paths] == [("a1", "select"), ("a2", "attach")]
    assert presence.clicks(tmp_path) == []
    assert presence.take_click(first) is None  # taken already
