"""``mullui demo`` leaves nothing behind: quitting it (q, or its terminal closing) stops
its scripted agents, its tmux server and its supervisor and removes the sandbox; with
``--keep`` everything stays and the exit line says how to come back.

The real demo runs in a real terminal (tmux), with its own temp dir so the test can see
every sandbox it makes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for
from tests.tui.terminal import Terminal


def demo_processes(home: Path) -> list[int]:
    """Processes whose environment names the demo's MULLUI_HOME (agents, watch, tmux)."""
    needle = f"MULLUI_HOME={home}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(d.name))
    return found


def tmux_alive(socket: str) -> bool:
    r = subprocess.run(["tmux", "-L", socket, "list-sessions"], capture_output=True, check=False)
    return r.returncode == 0


def start_demo(tmp_path: Path, name: str, *args: str) -> tuple[Terminal, Path]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {
        "TMPDIR": str(tmpdir),
        "PYTHONPATH": str(ROOT),
        "MULLUI_NOTIFY": "none",
    }
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # Not exec'd: what the demo prints as it exits stays on the screen afterwards.
    cmd = (
        f"unset MULLUI_HOME MULLUI_TMUX_SOCKET TMUX; {assigns} "
        f"{shlex.quote(sys.executable)} -m mullui demo {' '.join(args)}; sleep 60"
    )
    term = Terminal(name, cmd, size=(120, 36))
    wait_for(lambda: "refactor-parser" in term.screen(), 30)
    return term, tmpdir


def sandbox_of(tmpdir: Path) -> Path:
    homes = list(tmpdir.glob("mullui-demo-*"))
    assert len(homes) == 1, homes
    return homes[0]


def demo_socket(term: Terminal) -> str:
    """The demo's own tmux server is named after the demo's pid (the pane shell's child;
    the demo sets MULLUI_HOME in-process, so its own /proc environ does not name it)."""
    shell = term.run("display", "-p", "-t", "0", "#{pane_pid}").strip()
    children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    assert len(children) == 1, children
    return f"mullui-demo-{children[0]}"


@pytest.mark.parametrize("how", ["q", "sighup"])
def test_quitting_the_demo_leaves_no_process_server_or_sandbox(tmp_path: Path, how: str) -> None:
    term, tmpdir = start_demo(tmp_path, f"demo-{how}")
    with term:
        home = sandbox_of(tmpdir)
        wait_for(lambda: len(demo_processes(home)) >= 5, 20)  # the scripted agents run
        socket = demo_socket(term)
        assert tmux_alive(socket)
        if how == "q":
            term.keys("q")
        else:  # the terminal closes: its tmux server (and so the demo's pty) goes away
            term.close()
        wait_for(lambda: not home.exists(), 20)
        wait_for(lambda: not demo_processes(home), 10)
        assert not tmux_alive(socket)
        assert list(tmpdir.iterdir()) == []
        if how == "q":
            wait_for(lambda: "are gone" in term.screen(), 5)


def test_demo_keep_leaves_it_running_and_says_how_to_come_back(tmp_path: Path) -> None:
    term, tmpdir = start_demo(tmp_path, "demo-keep", "--keep")
    home = sandbox_of(tmpdir)
    wait_for(lambda: demo_processes(home), 20)
    socket = demo_socket(term)
    try:
        with term:
            term.keys("q")
            wait_for(lambda: "come back with" in term.screen(), 20)
            err = term.run("capture-pane", "-p", "-J", "-t", "0")
        time.sleep(0.5)
        assert home.is_dir()
        assert tmux_alive(socket)
        assert f"MULLUI_HOME={home}" in err and f"MULLUI_TMUX_SOCKET={socket}" in err
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
        for pid in demo_processes(home):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
