"""The one helper set for driving agents through the real CLI in tests: ``make_repo`` (a
real repository), ``spawn`` (``mullui spawn``, its id), ``wait_for`` (poll a condition)
and ``wait_state`` (an agent reaching a state, with a diagnosis when it does not).

Plain helpers; the fixtures (``cli``, ``mullui_home``, ``git_repo``) stay in
``tests/conftest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.gitrepo import git, make_repo

__all__ = [
    "agent_row",
    "diagnose",
    "git",
    "ls_json",
    "make_repo",
    "spawn",
    "wait_for",
    "wait_state",
]

Cli = Callable[..., subprocess.CompletedProcess[str]]


def spawn(
    cli: Cli,
    repo: Path,
    task: str,
    *args: str,
    name: str | None = None,
    agent: str | None = "shell",
    env: dict[str, str] | None = None,
) -> str:
    """``mullui spawn --agent AGENT [--name NAME] --no-attach ARGS... TASK`` in ``repo``;
    the new agent's id.  ``agent=None`` leaves the profile to the configuration (or to
    ``args``).  Fails the test, with spawn's stderr, unless it exits 0."""
    argv = ["spawn"]
    if agent is not None:
        argv += ["--agent", agent]
    if name is not None:
        argv += ["--name", name]
    r = cli(*argv, "--no-attach", *args, task, cwd=repo, env=env)
    assert r.returncode == 0, f"mullui {' '.join(argv)} ... exited {r.returncode}: {r.stderr}"
    aid = r.stdout.strip()
    assert len(aid) == 8, f"spawn printed {r.stdout!r}, not an agent id"
    return aid


def ls_json(cli: Cli, cwd: Path | None = None, env: dict[str, str] | None = None) -> list[Any]:
    """``mullui ls --json`` in ``cwd``: every agent's row.  Fails the test unless it exits 0."""
    r = cli("ls", "--json", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    rows: list[Any] = json.loads(r.stdout)
    return rows


def agent_row(cli: Cli, repo: Path, agent_id: str, env: dict[str, str] | None = None) -> Any:
    """Agent ``agent_id``'s row of ``mullui ls --json`` in ``repo``, as a user sees it."""
    return next(a for a in ls_json(cli, repo, env) if a["id"] == agent_id)


def wait_for(
    pred: Callable[[], Any], timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> Any:
    """Poll ``pred`` until truthy; its value (test helper only: the product never polls).
    On timeout the message names ``what`` was awaited and ``pred``'s last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    waiting = f"waiting for {what}: " if what else ""
    raise AssertionError(f"{waiting}condition not met within {timeout}s (last: {last!r})")


def diagnose() -> str:
    """What tmux's panes and the supervisor's window say, for a failure message."""
    sock = os.environ.get("MULLUI_TMUX_SOCKET", "")
    fmt = "#{session_name} #{window_name} #{pane_id} dead=#{pane_dead} status=#{pane_dead_status}"
    panes = subprocess.run(
        ["tmux", "-L", sock, "list-panes", "-a", "-F", fmt],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    sup = subprocess.run(
        ["tmux", "-L", sock, "capture-pane", "-p", "-t", "mullui-supervisor"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"\ntmux panes:\n{panes}\nsupervisor window:\n{sup.stdout.strip()}{sup.stderr}"


def wait_state(
    agent_id: str,
    *states: Any,
    timeout: float = 20.0,
    cli: Cli | None = None,
    repo: Path | None = None,
    env: dict[str, str] | None = None,
    interval: float | None = None,
) -> Any:
    """Wait until agent ``agent_id`` is in one of ``states`` (``State`` members or their
    values).  Read from the store (an ``Agent`` is returned), or, given ``cli``, as a user
    sees it: ``mullui ls --json`` in ``repo`` with ``env`` (its row is returned).  Polls
    the store every 0.02 s, the CLI every 0.1 s, unless ``interval`` says.  On timeout: the
    state and cause it is in, and what tmux and the supervisor's window say."""
    wanted = {getattr(s, "value", s) for s in states}

    def read() -> tuple[str, str, Any]:
        if cli is not None:
            assert repo is not None, "wait_state(cli=...) reads ls --json in repo="
            row = agent_row(cli, repo, agent_id, env)
            return str(row["state"]), str(row.get("cause")), row
        from mullui.paths import get_paths  # lazily: conftest imports this module
        from mullui.store import Store  # before it sets the environment up

        a = Store(get_paths()).load(agent_id)
        return a.state.value, a.cause, a

    def check() -> Any:
        state, _, value = read()
        return value if state in wanted else None

    every = interval if interval is not None else (0.1 if cli is not None else 0.02)
    try:
        return wait_for(check, timeout=timeout, interval=every)
    except AssertionError:
        state, cause, _ = read()
        raise AssertionError(
            f"{agent_id} is {state} ({cause}), not {' or '.join(sorted(wanted))} "
            f"after {timeout}s{diagnose()}"
        ) from None
