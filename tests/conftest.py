"""Shared fixtures: an isolated mullui home, a private tmux socket, real git repositories,
and the real CLI in a subprocess.  tmux ``server``/``session`` fixtures come from
libtmux's own pytest plugin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The helper set lives in tests/support/agents.py; re-exported for the tests importing it
# from here.
from tests.support.agents import git, ls_json, make_repo, wait_for

__all__ = ["ROOT", "git", "ls_json", "make_repo", "stop_supervisor", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent

# Commits made by tests (and by agents in tests) need an identity on a fresh machine.
os.environ.setdefault("GIT_AUTHOR_NAME", "mullui-test")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "test@mullui.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "mullui-test")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "test@mullui.invalid")
os.environ["MULLUI_NOTIFY"] = "none"
# No supervisor starts by itself unless a test asks (the `autostart` fixture): tests that
# drive their own `mullui watch`, or none, stay as isolated as before.
os.environ["MULLUI_WATCH_AUTOSTART"] = "0"
os.environ.pop("TMUX", None)  # tests may run inside a developer's tmux


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A run ended by SIGTERM (`timeout`, CI cancelling a job) tears its fixtures down as
    # Ctrl-C does: each test's `mullui watch`, tmux server and supervisor are ended, not
    # left behind (a watch started by hand never leaves by itself).  Set before each test:
    # an event loop that handled SIGTERM in-process leaves the default behind.
    signal.signal(signal.SIGTERM, _interrupted)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with one commit on ``main``."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def mullui_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated MULLUI_HOME and tmux socket; the tmux server is killed afterwards."""
    home = tmp_path / "mullui-home"
    home.mkdir()
    sock = f"mullui-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MULLUI_HOME", str(home))
    monkeypatch.setenv("MULLUI_TMUX_SOCKET", sock)
    monkeypatch.delenv("MULLUI_STATE_DIR", raising=False)
    yield home
    stop_supervisor(home / "state")
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


def stop_supervisor(state_dir: Path, timeout: float = 10.0) -> int | None:
    """End the supervisor holding ``state_dir``'s lock (a watch a test or an agent started),
    unless it is this test process; returns its pid."""
    from mullui import autostart

    if not autostart.held(state_dir):
        return None
    pid = autostart.holder(state_dir)
    if not pid or pid == os.getpid():
        return None
    try:
        if b"mullui" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # the pid was reused: not ours to end
    except OSError:
        return None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + timeout / 2
        while time.monotonic() < deadline and autostart.held(state_dir):
            time.sleep(0.02)
        if not autostart.held(state_dir):
            return pid
    return pid


@pytest.fixture
def autostart(mullui_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Supervisors start by themselves, as for a user (stopped with ``mullui_home``)."""
    monkeypatch.setenv("MULLUI_WATCH_AUTOSTART", "1")
    return mullui_home


@pytest.fixture
def cli(mullui_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``mullui`` CLI: ``cli("ls", "--json", cwd=repo)``."""

    def run(
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        e = dict(os.environ)
        e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
        e.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "mullui", *args],
            cwd=cwd or mullui_home,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=e,
        )

    return run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI every real part is installed (.ci/run: tmux, dbus, sshd, the five agent
    CLIs; root for tmpfs): a skipped test there means an install step broke, so the run
    fails instead of passing with that part untested."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        names = ", ".join(sorted({r.nodeid for r in skipped})[:5])
        print(f"\nCI: {len(skipped)} test(s) skipped ({names}): failing the run", file=sys.stderr)
        session.exitstatus = 1
