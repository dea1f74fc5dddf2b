"""The supervisor lock test and the lifetime rule, as pure logic on a real lock file (the
processes they start are covered by tests/integration/test_supervisor_autostart.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from mullui import autostart
from mullui.loop import SupervisorLock, needs_supervisor, start_script
from mullui.model import Agent, State, utcnow


def ag(state: State, **kw: object) -> Agent:
    return Agent(id="a1", name="n", profile="shell", task="t", state=state, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "state,needed",
    [
        (State.QUEUED, True),
        (State.STARTING, True),
        (State.WORKING, True),
        (State.BLOCKED, True),
        (State.UNKNOWN, True),  # a remote agent whose host is away: its link stays
        (State.DONE, False),
        (State.FAILED, False),
        (State.STOPPED, False),
    ],
)
def test_what_keeps_a_supervisor_running(state: State, needed: bool) -> None:
    assert needs_supervisor([ag(state)]) is needed
    assert needs_supervisor([ag(state, removed=True)]) is False


def test_a_snooze_with_a_wake_time_ahead_keeps_it_running() -> None:
    now = utcnow()
    assert needs_supervisor([ag(State.DONE, snoozed_until=now + timedelta(minutes=5))], now)
    assert not needs_supervisor([ag(State.DONE, snoozed_until=now - timedelta(minutes=5))], now)
    assert not needs_supervisor([], now)


def test_the_lock_test_never_takes_the_lock(tmp_path: Path) -> None:
    assert not autostart.held(tmp_path)
    fd = autostart.try_lock(tmp_path)
    assert fd is not None
    try:
        autostart.write_pid(fd, 4242)
        assert autostart.held(tmp_path) and autostart.holder(tmp_path) == 4242
        assert autostart.try_lock(tmp_path) is None  # a second starter sees it held
        assert not SupervisorLock(tmp_path / autostart.LOCK_NAME).is_free()
        assert not SupervisorLock(tmp_path / autostart.LOCK_NAME).acquire()
    finally:
        os.close(fd)
    assert not autostart.held(tmp_path)
    assert SupervisorLock(tmp_path / autostart.LOCK_NAME).is_free()


def test_a_lock_handed_to_a_child_stays_held_after_the_starter_lets_go(tmp_path: Path) -> None:
    fd = autostart.try_lock(tmp_path)
    assert fd is not None
    child = subprocess.Popen(["sleep", "30"], pass_fds=(fd,))
    try:
        os.close(fd)
        assert autostart.held(tmp_path)
        assert autostart.try_lock(tmp_path) is None
    finally:
        child.kill()
        child.wait(10)
    assert not autostart.held(tmp_path)


@pytest.mark.parametrize("value,on", [("", True), ("1", True), ("0", False), ("off", False)])
def test_autostart_can_be_turned_off(value: str, on: bool) -> None:
    env = {autostart.AUTOSTART_ENV: value} if value else {}
    assert autostart.enabled(env) is on


def test_the_hooks_start_script_quotes_every_value(tmp_path: Path) -> None:
    cwd = "/tmp/$(touch x) `y` 'z'"
    text = start_script(cwd, {"HOME": "/h ome", "MULLUI_HOME": "/a;b", "SECRET_KEY": "no"})
    assert f"cd {shlex.quote(cwd)} " in text
    assert "'MULLUI_HOME=/a;b'" in text and "'HOME=/h ome'" in text
    assert "SECRET_KEY" not in text  # only what a watch needs
    assert "MULLUI_WATCH_STARTED_BY=hook" in text
    assert text.rstrip().endswith('--lock-fd "$1"')
    r = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
