"""`mullui watch` end to end: real watch processes, real agents in tmux, real git, a real
(private) D-Bus session bus with a stand-in notification server.

What a user would see: one popup per state change with the right title, body, urgency
and buttons; the buttons work with no TUI open; nothing is lost or repeated across a
``kill -9``; exactly one supervisor notifies; a queued spawn starts a hidden watch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mullui.model import parse_iso
from mullui.paths import get_paths
from mullui.supervisor import SupervisorLock
from tests.conftest import wait_for
from tests.support.agents import agent_row, spawn, wait_state
from tests.support.watch_desktop import (  # fixtures, imported for pytest
    SETTLE_S,
    DesktopThread,
    Watch,
    bus,
    child_env,
    desktop,
    repo,
    start_watch,
)

__all__ = ["bus", "desktop", "repo", "start_watch"]

pytestmark = pytest.mark.timeout(90)

CLI = Callable[..., subprocess.CompletedProcess[str]]
URGENCY_NORMAL, URGENCY_CRITICAL = 1, 2


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def spawn_demo(repo: Path, script: str, name: str) -> str:
    """A scripted demo agent (mullui/demo/agent.py) reporting through ``mullui hook``,
    as Claude Code does: the only way a local agent becomes *blocked* (shell agents have
    no hooks).  In-process, because the CLI does not expose the demo script."""
    from mullui.workspace import Workspace

    a = Workspace(cwd=repo).spawn(
        f"demo {script}", agent="demo", name=name,
        extra={"script": script, "env": {"MULLUI_DEMO_SPEED": "20"}},
    )  # fmt: skip
    return a.id


def agent(cli: CLI, repo: Path, agent_id: str) -> dict[str, Any]:
    return agent_row(cli, repo, agent_id, env=child_env())


def titles(d: DesktopThread) -> list[str]:
    return [c.title for c in d.calls]


# ---- one popup per state change ---------------------------------------------------------
BUTTONS = {"attach": "Attach", "snooze": "Snooze 30 min"}


def test_failed_agent_pops_up_once_critical_with_exit_code(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    start_watch()
    spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    call = desktop.wait_title("api-refactor is failed")
    assert call.body == "exit code 3"
    assert call.urgency == URGENCY_CRITICAL
    assert {k: v for k, v in call.actions.items() if k != "default"} == BUTTONS
    assert call.app_name == "mullui"
    time.sleep(SETTLE_S)
    assert titles(desktop) == ["api-refactor is failed"]


def test_done_agent_pops_up_once_normal_with_its_last_message(
    desktop: DesktopThread, start_watch: Callable[..., Watch], repo: Path
) -> None:
    start_watch()
    spawn_demo(repo, "refactor", "api-refactor")
    call = desktop.wait_title("api-refactor is done")
    assert call.body == "Extracted tokenize() from parse(); 12 tests pass."
    assert call.urgency == URGENCY_NORMAL
    assert {k: v for k, v in call.actions.items() if k != "default"} == BUTTONS
    time.sleep(SETTLE_S)
    # working -> done: only the state that needs the human pops up.
    assert titles(desktop) == ["api-refactor is done"]


@pytest.mark.parametrize("markup", [True, False])
def test_agent_text_in_a_popup_body_is_never_markup(
    markup: bool, bus: str, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    """A server that renders body markup gets ``<a href>`` / ``<img src=file://>`` from an
    agent escaped (issue 20 item 7); one that does not gets the text as it is."""
    caps = ("actions", "body", "persistence") + (("body-markup",) if markup else ())
    desktop = DesktopThread(caps).start()
    try:
        start_watch()
        aid = spawn_demo(repo, "refactor", "api-refactor")
        desktop.wait_title("api-refactor is done")
        evil = '<a href="https://evil.example">docs</a> <img src="file:///etc/passwd"> & co'
        assert cli("send", aid, evil, cwd=repo, env=child_env()).returncode == 0
        bodies = lambda: [c.body for c in desktop.calls if c.body.startswith("Did:")]  # noqa: E731
        body = wait_for(bodies, timeout=30)[0]
        if markup:
            assert body == (
                'Did: &lt;a href="https://evil.example"&gt;docs&lt;/a&gt; '
                '&lt;img src="file:///etc/passwd"&gt; &amp; co'
            )
        else:
            assert body == f"Did: {evil}"
    finally:
        desktop.stop()


def test_blocked_agent_pops_up_once_critical_with_its_question(
    desktop: DesktopThread, start_watch: Callable[..., Watch], repo: Path
) -> None:
    start_watch()
    spawn_demo(repo, "question", "api-refactor")
    call = desktop.wait_title("api-refactor is blocked")
    assert call.body == "Should the new /export endpoint also accept CSV? (y/n)"
    assert call.urgency == URGENCY_CRITICAL
    assert {k: v for k, v in call.actions.items() if k != "default"} == BUTTONS
    time.sleep(SETTLE_S)
    assert titles(desktop) == ["api-refactor is blocked"]


def test_a_still_blocked_agent_is_reminded_once(
    desktop: DesktopThread, start_watch: Callable[..., Watch], repo: Path, mullui_home: Path
) -> None:
    write_config(mullui_home, "[notify]\nescalate_after_s = 1\n")
    start_watch()
    spawn_demo(repo, "question", "api-refactor")
    desktop.wait_title("api-refactor is blocked")
    reminder = desktop.wait_title("api-refactor is still blocked", timeout=10)
    assert reminder.body == "waiting 1 s: Should the new /export endpoint also accept CSV? (y/n)"
    assert reminder.urgency == URGENCY_CRITICAL
    time.sleep(SETTLE_S + 1)  # one reminder, not one per second
    assert titles(desktop) == ["api-refactor is blocked", "api-refactor is still blocked"]


def test_quiet_hours_keep_the_watch_silent(
    desktop: DesktopThread,
    start_watch: Callable[..., Watch],
    cli: CLI,
    repo: Path,
    mullui_home: Path,
) -> None:
    now = datetime.now().astimezone()
    window = f"{now - timedelta(minutes=5):%H:%M}-{now + timedelta(minutes=10):%H:%M}"
    write_config(mullui_home, f'[notify]\nquiet_hours = "{window}"\n')
    start_watch()
    aid = spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    wait_state(aid, "failed", cli=cli, repo=repo, env=child_env())
    time.sleep(SETTLE_S)
    assert titles(desktop) == []


# ---- the buttons, with no TUI open ------------------------------------------------------
def test_snooze_button_snoozes_the_agent_for_30_minutes(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    start_watch()
    aid = spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    call = desktop.wait_title("api-refactor is failed")
    clicked = datetime.now(UTC)
    desktop.click(call, "snooze")
    until = wait_for(lambda: agent(cli, repo, aid)["snoozed_until"], interval=0.1)
    until_at = parse_iso(until)
    assert until_at is not None, until
    snoozed_for = until_at - clicked
    assert abs(snoozed_for - timedelta(minutes=30)) < timedelta(seconds=20), snoozed_for
    inbox = cli("inbox", "--json", cwd=repo, env=child_env())
    assert inbox.returncode == 0, inbox.stderr
    assert aid not in [a["id"] for a in json.loads(inbox.stdout)]
    # Snoozing is not a state change: no new popup.
    time.sleep(SETTLE_S)
    assert titles(desktop) == ["api-refactor is failed"]


@pytest.mark.parametrize("click", ["attach", "default"])
def test_attach_button_and_popup_click_run_the_attach_command(
    click: str,
    desktop: DesktopThread,
    start_watch: Callable[..., Watch],
    cli: CLI,
    repo: Path,
    mullui_home: Path,
    tmp_path: Path,
) -> None:
    # "default" is a click on the popup itself: with no TUI to select the agent in, the
    # headless watch attaches.  (A clicked popup is gone: one click per popup.)
    touch = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    mark = tmp_path / "attached-{id}"
    write_config(
        mullui_home,
        "[notify]\nattach_command = "
        + json.dumps([sys.executable, "-c", touch, str(mark), "{name} {tmux_target}"])
        + "\n",
    )
    start_watch()
    aid = spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    call = desktop.wait_title("api-refactor is failed")
    target = agent(cli, repo, aid)["tmux_target"]
    marker = tmp_path / f"attached-{aid}"
    assert not marker.exists()

    desktop.click(call, click)
    wait_for(marker.exists)
    assert marker.read_text() == f"api-refactor {target}"
    # Attaching changes nothing about the agent.
    assert agent(cli, repo, aid)["snoozed_until"] is None


def test_a_repositorys_attach_command_runs_only_once_its_file_is_trusted(
    desktop: DesktopThread,
    start_watch: Callable[..., Watch],
    cli: CLI,
    repo: Path,
    tmp_path: Path,
) -> None:
    """An agent can commit ``.mullui.toml``: its ``attach_command`` is a command, so it
    waits for ``mullui trust`` (issue 20 item 2)."""
    touch = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran')"
    mark = tmp_path / "repo-attach-ran"
    (repo / ".mullui.toml").write_text(
        "[notify]\ncoalesce_ms = 0\nattach_command = "
        + json.dumps([sys.executable, "-c", touch, str(mark)])
        + "\n"
    )
    w = start_watch()
    assert "ignored notify.attach_command" in w.stderr and "mullui trust" in w.stderr, w.stderr
    spawn(cli, repo, "exit 3", name="first", env=child_env())
    desktop.click(desktop.wait_title("first is failed"), "attach")
    time.sleep(SETTLE_S)
    assert not mark.exists()

    assert cli("trust", cwd=repo).returncode == 0
    w.stop()
    start_watch()
    spawn(cli, repo, "exit 3", name="second", env=child_env())
    desktop.click(desktop.wait_title("second is failed"), "attach")
    wait_for(mark.exists)


def test_attach_with_no_attach_command_brings_the_agent_up_in_an_open_terminal(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    start_watch()
    aid = spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    call = desktop.wait_title("api-refactor is failed")
    target = agent(cli, repo, aid)["tmux_target"]
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    session = subprocess.run(
        ["tmux", "-L", sock, "display-message", "-p", "-t", target, "#{session_name}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip

    def shown() -> list[str]:
        r = subprocess.run(["tmux", "-L", sock, "list-clients", "-F", "#{pane_id}"],
                           capture_output=True, text=True, check=False)  # fmt: skip
        return r.stdout.split()

    # A terminal left open on mullui's server, showing something else (the placeholder).
    client = subprocess.Popen(
        ["tmux", "-L", sock, "-C", "attach-session", "-t", f"={session}:mullui"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: shown() and target not in shown())
        desktop.click(call, "attach")
        wait_for(lambda: shown() == [target])
    finally:
        assert client.stdin is not None
        client.stdin.close()
        client.terminate()
        client.wait(10)


# ---- fallbacks --------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["no session bus", "no notification server"])
def test_without_a_notification_server_the_watch_writes_terminal_notifications(
    where: str, bus: str, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    env: dict[str, str | None] = {}
    if where == "no session bus":
        env["DBUS_SESSION_BUS_ADDRESS"] = None
    w = start_watch(**env)
    assert "notifications: terminal" in w.stderr
    spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    osc = "\x1b]777;notify;api-refactor is failed;exit code 3\x07"
    wait_for(lambda: osc in w.stdout)
    assert w.stdout.count(osc) == 1
    assert "\x1b]9;api-refactor is failed: exit code 3\x07" in w.stdout


def test_an_agent_the_human_is_attached_to_does_not_pop_up(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    start_watch()
    watched = spawn(cli, repo, "read answer; exit 3", name="watched", env=child_env())
    target = agent(cli, repo, watched)["tmux_target"]
    # A terminal attached to the agent's pane (a control-mode client is a real client).
    client = subprocess.Popen(
        ["tmux", "-L", os.environ["MULLUI_TMUX_SOCKET"], "-C", "attach-session", "-t", target],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sock = os.environ["MULLUI_TMUX_SOCKET"]
        wait_for(
            lambda: (
                target
                in subprocess.run(
                    ["tmux", "-L", sock, "list-clients", "-F", "#{pane_id}"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout.split()
            )
        )
        r = cli("send", watched, "no", cwd=repo, env=child_env())
        assert r.returncode == 0, r.stderr
        wait_state(watched, "failed", cli=cli, repo=repo, env=child_env())
        # A second agent nobody looks at; its popup proves the first was processed.
        spawn(cli, repo, "exit 4", name="unwatched", env=child_env())
        desktop.wait_title("unwatched is failed")
        time.sleep(SETTLE_S)
        assert titles(desktop) == ["unwatched is failed"]
    finally:
        assert client.stdin is not None
        client.stdin.close()
        client.terminate()
        client.wait(10)


# ---- exactly once across kill -9 ---------------------------------------------------------
def test_after_kill_9_the_restarted_watch_notifies_the_missed_change_once(
    desktop: DesktopThread, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    first = start_watch()
    spawn(cli, repo, "true", name="agent-a", env=child_env())
    desktop.wait_title("agent-a is done")
    first.kill9()

    b = spawn(cli, repo, "exit 3", name="agent-b", env=child_env())
    # applied and journaled while no supervisor ran
    wait_state(b, "failed", cli=cli, repo=repo, env=child_env())
    assert titles(desktop) == ["agent-a is done"]

    second = start_watch()
    desktop.wait_title("agent-b is failed")
    time.sleep(SETTLE_S)
    assert titles(desktop) == ["agent-a is done", "agent-b is failed"]

    # The cursor is on disk, not in memory: yet another restart tells nothing again.
    second.kill9()
    start_watch()
    time.sleep(SETTLE_S)
    assert titles(desktop) == ["agent-a is done", "agent-b is failed"]


def test_a_watch_that_stops_right_after_a_change_still_delivers_it(
    desktop: DesktopThread, cli: CLI, repo: Path
) -> None:
    # `watch --once` catches up and exits at once: the popup it decided on must still go
    # out before it closes, since its cursor already counts the change as told.
    aid = spawn(cli, repo, "exit 3", name="api-refactor", env=child_env())
    wait_state(aid, "failed", cli=cli, repo=repo, env=child_env())
    r = cli("watch", "--once", cwd=repo, env=child_env(), timeout=30)
    assert r.returncode == 0, r.stderr
    assert titles(desktop) == ["api-refactor is failed"]
    r = cli("watch", "--once", cwd=repo, env=child_env(), timeout=30)
    assert r.returncode == 0, r.stderr
    assert titles(desktop) == ["api-refactor is failed"]


# ---- one supervisor at a time -----------------------------------------------------------
def test_a_second_watch_exits_at_once_naming_the_running_one(
    bus: str, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    first = start_watch()
    t0 = time.monotonic()
    r = cli("watch", cwd=repo, env=child_env(), timeout=20)
    assert time.monotonic() - t0 < 5
    assert r.returncode == 0
    assert f"another supervisor is running (pid {first.proc.pid})" in r.stderr
    assert first.proc.poll() is None


def test_a_running_watch_is_never_taken_over(
    bus: str, start_watch: Callable[..., Watch], cli: CLI, repo: Path
) -> None:
    # Nothing ever takes the lock from its holder (a second TUI used to SIGTERM it).
    w = start_watch()
    lock = SupervisorLock(get_paths().supervisor_lock)
    assert not lock.is_free()
    assert not hasattr(lock, "take_over")
    assert not lock.acquire(wait=0.3)
    assert w.proc.poll() is None and lock.holder() == w.proc.pid


# ---- a queued spawn starts a hidden watch ------------------------------------------------
def test_a_queued_spawn_starts_a_hidden_watch_that_holds_the_lock_runs_the_queue_and_notifies(
    autostart: Path, desktop: DesktopThread, cli: CLI, repo: Path, mullui_home: Path
) -> None:
    write_config(mullui_home, "[notify]\ncoalesce_ms = 0\n")  # two popups, not a summary
    first = spawn(cli, repo, "read answer", name="first", env=child_env())  # done when told
    nxt = spawn(cli, repo, "true", "--after", first, name="next", env=child_env())
    assert agent(cli, repo, nxt)["state"] == "queued"
    lock = SupervisorLock(get_paths().supervisor_lock)
    wait_for(lambda: not lock.is_free() and lock.holder())
    pid = lock.holder()
    assert pid is not None and b"watch" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert agent(cli, repo, nxt)["state"] == "queued"
    r = cli("send", first, "go", cwd=repo, env=child_env())
    assert r.returncode == 0, r.stderr
    # No TUI, no `mullui watch` typed by anyone: the hidden one starts the queued agent.
    wait_state(nxt, "done", timeout=30, cli=cli, repo=repo, env=child_env())
    assert lock.holder() == pid
    # And it notifies, on the session bus of the command that started it.
    desktop.wait_title("next is done")
    assert titles(desktop) == ["first is done", "next is done"]


# ---- config ------------------------------------------------------------------------------
def test_bad_quiet_hours_is_a_config_error_naming_file_and_line(
    cli: CLI, repo: Path, mullui_home: Path
) -> None:
    write_config(mullui_home, 'default_agent = "shell"\n[notify]\nquiet_hours = "25:00-07:00"\n')
    r = cli("watch", cwd=repo, env=child_env(), timeout=20)
    assert r.returncode == 1
    assert "config.toml line 3: [notify] quiet_hours must be" in r.stderr
    assert "Traceback" not in r.stderr
