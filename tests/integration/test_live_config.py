"""A long-running ``mullui watch`` follows its config files: an edit to the limits takes
effect within a second, an invalid edit keeps the last good config (and says so in the
watch's log), and an editor's atomic replace or a removal is followed too.

Real tmux, real git, the real CLI and the real supervisor (``mullui watch``, started by
``spawn`` in its hidden window when something is queued); the test never runs the queue.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mullui.model import State
from mullui.paths import get_paths
from tests.conftest import wait_for
from tests.integration.test_queue import RUNNING, get
from tests.support.agents import spawn, wait_state

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _supervised(autostart: Path) -> None:
    """The watch starts by itself here, as it does for a user."""


def write(path: Path, text: str) -> None:
    path.write_text(text)


def atomic_replace(path: Path, text: str) -> None:
    """What editors do: write a temporary file beside it, then rename it over."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def watch_output() -> str:
    """What the hidden ``mullui watch`` printed (its log in the state dir)."""
    log = get_paths().state_dir / "watch.log"
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def following(cfg: Path, text: str) -> None:
    """Write ``text`` (a real change: a budget) and wait until the watch's log says it
    reloaded: from then on its follower is up."""
    # The watch prints its first line once its config is loaded; an edit after that is
    # seen by its follower (or by the reload it does once the follower is up).
    wait_for(lambda: "mullui watch:" in watch_output(), 15)
    marker = f"max_cost_usd = {time.monotonic_ns() % 1000 + 1}.5\n"
    write(cfg, text.replace("[limits]\n", "[limits]\n" + marker))
    try:
        wait_for(lambda: "config reloaded" in watch_output(), 15)
    except AssertionError:
        import subprocess as sp

        ps = sp.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        ps = "\n".join(ln for ln in ps.splitlines() if "watch" in ln)
        raise AssertionError(
            f"no reload in the watch's log:\n{watch_output()}\n{cfg.read_text()}\n{ps}"
        ) from None


def running(ids: list[str]) -> int:
    return sum(get(i).state in RUNNING for i in ids)


def hold(gate: Path) -> str:
    return f"while [ ! -e {gate} ]; do sleep 0.05; done"


def test_max_running_raised_and_lowered_in_a_running_watch_takes_effect_within_a_second(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    cfg = mullui_home / "config.toml"
    write(cfg, "[limits]\nmax_running = 1\n")
    gates = [mullui_home / f"gate{i}" for i in range(5)]
    ids = [spawn(cli, git_repo, hold(gates[i]), "--name", f"w{i}") for i in range(3)]
    wait_state(ids[0], State.WORKING)
    assert [get(i).state for i in ids[1:]] == [State.QUEUED, State.QUEUED]
    following(cfg, "[limits]\nmax_running = 1\n")

    # Raised: the queued agents start at once, with no other event to wake the watch.
    t0 = time.monotonic()
    atomic_replace(cfg, "[limits]\nmax_running = 3\n")
    try:
        wait_for(lambda: running(ids) == 3, 5)
    except AssertionError:
        states = [(get(i).state.value, get(i).cause) for i in ids]
        raise AssertionError(f"{states}\n{watch_output()}") from None
    assert time.monotonic() - t0 < 1.5, f"took {time.monotonic() - t0:.2f} s"

    # Lowered: two more agents wait, and finishing two of the three frees no slot.
    write(cfg, "[limits]\nmax_running = 1\n")
    time.sleep(0.5)
    more = [spawn(cli, git_repo, hold(gates[3 + i]), "--name", f"m{i}") for i in range(2)]
    assert [get(i).state for i in more] == [State.QUEUED, State.QUEUED]
    gates[0].touch()
    gates[1].touch()
    wait_state(ids[0], State.DONE)
    wait_state(ids[1], State.DONE)
    time.sleep(1.0)
    assert [get(i).state for i in more] == [State.QUEUED, State.QUEUED]
    gates[2].touch()  # the last of the three: now one slot is free, one agent starts
    wait_state(ids[2], State.DONE)
    wait_for(lambda: running(more) == 1, 10)
    time.sleep(0.5)
    assert running(more) == 1
    for g in gates:
        g.touch()


def test_an_invalid_edit_keeps_the_last_good_limits_and_says_why_then_a_fix_and_a_delete(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    cfg = mullui_home / "config.toml"
    write(cfg, "[limits]\nmax_running = 1\n")
    gate = mullui_home / "gate"
    ids = [spawn(cli, git_repo, hold(gate), "--name", f"w{i}") for i in range(3)]
    wait_state(ids[0], State.WORKING)
    following(cfg, "[limits]\nmax_running = 1\n")

    # Invalid: a wrong type.  Nothing changes: still one running, the watch still there.
    write(cfg, '[limits]\nmax_running = "three"\n')
    try:
        wait_for(lambda: "config not reloaded" in watch_output(), 5)
    except AssertionError:
        raise AssertionError(watch_output()) from None
    out = watch_output()
    assert "config.toml" in out and "max_running" in out, out
    time.sleep(0.5)
    assert running(ids) == 1
    assert [get(i).state for i in ids[1:]] == [State.QUEUED, State.QUEUED]

    # Fixed: a valid raise is in force (and the log says the file is in force again).
    write(cfg, "[limits]\nmax_running = 2\n")
    wait_for(lambda: running(ids) == 2, 5)
    wait_for(lambda: "config fixed" in watch_output(), 5)

    # Removed: back to the defaults (max_running 8): the last one starts too.
    cfg.unlink()
    wait_for(lambda: running(ids) == 3, 5)
    wait_for(lambda: "config file removed" in watch_output(), 5)
    gate.touch()
    for i in ids:
        wait_state(i, State.DONE)


def test_a_config_file_that_appears_after_start_is_followed(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    cfg = mullui_home / "config.toml"
    gate = mullui_home / "gate"
    # No file: defaults.  The repository's file queues the second agent.
    repo_cfg = git_repo / ".mullui.toml"
    write(repo_cfg, "[limits]\nmax_running = 1\n")
    ids = [spawn(cli, git_repo, hold(gate), "--name", f"w{i}") for i in range(2)]
    wait_state(ids[0], State.WORKING)
    assert get(ids[1]).state is State.QUEUED
    following(mullui_home / "config.toml", "[limits]\nmax_running = 8\n")
    (mullui_home / "config.toml").unlink()
    wait_for(lambda: "config file removed" in watch_output(), 5)
    # The repository's file (limits are honoured untrusted) raised by an edit: it starts.
    atomic_replace(repo_cfg, "[limits]\nmax_running = 2\n")
    wait_for(lambda: running(ids) == 2, 5)
    # A user config that appears now is followed too (here: an invalid one, said).
    write(cfg, "[limits\n")
    wait_for(lambda: "config not reloaded" in watch_output(), 5)
    assert str(cfg) in watch_output().replace("\n", "")
    assert running(ids) == 2
    gate.touch()
    for i in ids:
        wait_state(i, State.DONE)
