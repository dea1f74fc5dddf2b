"""Spawn and walk away: every live agent has a supervisor, however it was started (issue 21),
and the supervisor outlives any TUI, which never kills another (issue 19 items 1-2).

No test here starts a TUI-as-supervisor or a ``mullui watch`` of its own: the CLI, the
agents' hooks and the TUI start a hidden one as a user would have them.  Real tmux, real
git, real agent processes, a private D-Bus session bus with the stand-in notification
server, and the real Claude Code against the scripted API stub.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mullui import autostart as starter
from mullui.model import parse_iso
from tests.conftest import ROOT, make_repo, wait_for
from tests.support.agents import agent_row, spawn, wait_state
from tests.support.fake_notifications import private_session_bus
from tests.support.watch_desktop import SETTLE_S, DesktopThread, child_env

pytestmark = pytest.mark.timeout(180)

CLI = Callable[..., subprocess.CompletedProcess[str]]
CLAUDE = shutil.which("claude")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def desktop(monkeypatch: pytest.MonkeyPatch) -> Iterator[DesktopThread]:
    """A private D-Bus session bus with the stand-in notification server on it."""
    with private_session_bus() as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        d = DesktopThread().start()
        yield d
        d.stop()


def state_dir(home: Path) -> Path:
    return home / "state"


def row(cli: CLI, repo: Path, agent_id: str) -> dict[str, Any]:
    return agent_row(cli, repo, agent_id, env=child_env())


def watches(home: Path) -> list[int]:
    """Every live ``mullui watch`` process of this MULLUI_HOME (test-side /proc scan)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
            if b"mullui" not in cmd or b"watch" not in cmd:
                continue
            if b"State:\tZ" in (p / "status").read_bytes():
                continue
            env = (p / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"MULLUI_HOME={home}".encode() in env:
            out.append(int(p.name))
    return out


def supervisor_pid(home: Path) -> int | None:
    st = state_dir(home)
    return starter.holder(st) if starter.held(st) else None


def starts(home: Path) -> int:
    """How many supervisors ever started (each says its backend first thing)."""
    log = state_dir(home) / starter.LOG_NAME
    return log.read_text().count("mullui watch: notifications:") if log.exists() else 0


def status(home: Path) -> dict[str, Any]:
    """What the running watch wrote about itself ({} before it did)."""
    try:
        d = json.loads((state_dir(home) / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def mono_file(path: Path) -> str:
    """A shell line writing CLOCK_MONOTONIC (the stand-in server's clock) to ``path``."""
    code = f"import time; open({str(path)!r}, 'w').write(repr(time.perf_counter()))"
    return f"{sys.executable} -c {json.dumps(code)}"


# ---- issue 21: notified with no TUI and no watch started by anyone ---------------------------
def test_a_cli_spawn_that_exits_is_notified_within_half_a_second_of_its_exit(
    autostart: Path, desktop: DesktopThread, cli: CLI, repo: Path, tmp_path: Path
) -> None:
    assert supervisor_pid(autostart) is None
    mark = tmp_path / "exit-at"
    aid = spawn(
        cli, repo, f"sleep 3; {mono_file(mark)}; exit 0", "--name", "lonely", env=child_env()
    )
    pid = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    assert watches(autostart) == [pid]
    call = desktop.wait_title("lonely is done", timeout=20)
    exited = float(mark.read_text())
    latency = call.received - exited
    print(f"\nexit -> Notify: {latency * 1000:.0f} ms")
    assert latency < 0.5, f"notified {latency:.2f}s after the agent exited"
    time.sleep(SETTLE_S)
    assert [c.title for c in desktop.calls] == ["lonely is done"]
    st = wait_for(lambda: status(autostart).get("pid") == pid and status(autostart))
    assert st["pid"] == pid and st["started_by"] == "mullui spawn", st
    assert row(cli, repo, aid)["state"] == "done"


def test_twenty_parallel_spawns_start_exactly_one_supervisor(
    autostart: Path, cli: CLI, repo: Path
) -> None:
    results: list[subprocess.CompletedProcess[str]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        r = cli("spawn", "--agent", "shell", "--no-attach", "--name", f"p{i}", "sleep 60",
                cwd=repo, env=child_env(MULLUI_NOTIFY="none"), timeout=120)  # fmt: skip
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert len(results) == 20 and all(r.returncode == 0 for r in results), [
        r.stderr for r in results if r.returncode
    ]
    pid = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    time.sleep(1.0)  # a second one would have said hello by now
    assert watches(autostart) == [pid]
    assert starts(autostart) == 1, (state_dir(autostart) / "watch.log").read_text()


def test_a_supervisor_killed_9_comes_back_with_the_agents_next_event_and_notifies_once(
    autostart: Path, desktop: DesktopThread, cli: CLI, repo: Path
) -> None:
    aid = spawn(
        cli,
        repo,
        "while [ ! -e go ]; do sleep 0.05; done; exit 0",
        "--name",
        "busy",
        env=child_env(),
    )
    first = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    wait_for(lambda: "notifications: desktop" in (state_dir(autostart) / "watch.log").read_text())
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not autostart_held(autostart), timeout=10)
    assert watches(autostart) == []
    # The agent finishes while nobody supervises: its own exit event brings one back.
    (Path(row(cli, repo, aid)["worktree"]) / "go").touch()
    call = desktop.wait_title("busy is done", timeout=20)
    second = supervisor_pid(autostart)
    assert second is not None and second != first
    st = wait_for(lambda: status(autostart).get("pid") == second and status(autostart))
    assert st["started_by"] == "hook", st
    assert call.body.startswith("finished"), call.body
    time.sleep(SETTLE_S)
    assert [c.title for c in desktop.calls] == ["busy is done"]
    assert watches(autostart) == [second]


def test_an_agents_own_hook_brings_a_killed_supervisor_back(
    autostart: Path, cli: CLI, repo: Path
) -> None:
    # What Claude Code, Codex... run for each event: the POSIX sh fast hook, no Python.
    from mullui.agents.base import SPOOL_SH

    aid = spawn(cli, repo, "sleep 60", name="hooked", env=child_env())
    first = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not autostart_held(autostart), timeout=10)
    state = state_dir(autostart)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": "/nonexistent",  # an agent's own HOME: the start script brings the right one
        "MULLUI_AGENT_ID": aid,
        "MULLUI_AGENT_TOKEN": (state / "secrets" / aid).read_text().strip(),
        "MULLUI_STATE_DIR": str(state),
    }
    t0 = time.monotonic()
    r = subprocess.run(["/bin/sh", str(SPOOL_SH), "Notification"], input='{"message": "hi"}',
                       env=env, capture_output=True, text=True, timeout=10)  # fmt: skip
    hook_s = time.monotonic() - t0
    assert r.returncode == 0 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert hook_s < 1.0, f"the hook took {hook_s:.2f}s: it must not wait for the watch"
    second = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    assert second != first  # the hook wrote the new watch's pid with the lock taken
    st = wait_for(lambda: status(autostart).get("pid") == second and status(autostart))
    assert st["started_by"] == "hook", st
    environ = Path(f"/proc/{second}/environ").read_bytes().split(b"\0")
    assert f"MULLUI_HOME={autostart}".encode() in environ
    assert not any(e.startswith(b"MULLUI_AGENT_") for e in environ)
    assert os.getsid(second) == second  # its own session: not the agent's
    assert watches(autostart) == [second]
    n = wait_for(lambda: starts(autostart))
    # Another event while it runs starts nothing more.
    r = subprocess.run(["/bin/sh", str(SPOOL_SH), "Notification"], input="{}", env=env,
                       capture_output=True, text=True, timeout=10)  # fmt: skip
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    assert watches(autostart) == [second] and starts(autostart) == n


def autostart_held(home: Path) -> bool:
    return starter.held(state_dir(home))


def test_a_supervisor_with_nothing_left_leaves_and_the_next_spawn_brings_it_back(
    autostart: Path, desktop: DesktopThread, cli: CLI, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULLUI_WATCH_IDLE_S", "0.5")
    spawn(cli, repo, "exit 0", name="quick", env=child_env())
    desktop.wait_title("quick is done", timeout=20)
    wait_for(lambda: not autostart_held(autostart), timeout=10)  # nothing live: it left
    wait_for(lambda: watches(autostart) == [], timeout=10)
    r = cli("watch", "--status", cwd=repo, env=child_env())
    assert r.returncode == 1 and r.stdout.startswith("mullui watch: not running"), r.stdout
    spawn(cli, repo, "exit 3", name="again", env=child_env())
    desktop.wait_title("again is failed", timeout=20)
    time.sleep(SETTLE_S)
    assert [c.title for c in desktop.calls] == ["quick is done", "again is failed"]
    assert starts(autostart) == 2


def test_a_snooze_with_a_wake_time_keeps_a_supervisor(
    autostart: Path, cli: CLI, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULLUI_WATCH_IDLE_S", "0.5")
    aid = spawn(cli, repo, "exit 0", name="finished", env=child_env())
    wait_state(aid, "done", timeout=30, cli=cli, repo=repo, env=child_env())
    wait_for(lambda: not autostart_held(autostart), timeout=15)  # nothing left: it left
    r = cli("snooze", aid, "--for", "1h", cwd=repo, env=child_env(MULLUI_NOTIFY="none"))
    assert r.returncode == 0, r.stderr
    pid = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    time.sleep(1.5)  # three idle windows: it stays for the wake time
    assert supervisor_pid(autostart) == pid
    r = cli("watch", "--status", cwd=repo, env=child_env(MULLUI_NOTIFY="none"))
    assert r.returncode == 0 and "1 snoozed (next wakes " in r.stdout, r.stdout
    assert "started by mullui snooze" in r.stdout, r.stdout


def test_watch_status_says_pid_since_and_what_it_follows(
    autostart: Path, cli: CLI, repo: Path
) -> None:
    spawn(cli, repo, "sleep 60", name="long", env=child_env())
    spawn(cli, repo, "sleep 60", "--after", "long", name="next", env=child_env())
    pid = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    wait_for(lambda: status(autostart).get("pid") == pid)
    r = cli("watch", "--status", cwd=repo, env=child_env(MULLUI_NOTIFY="none"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"mullui watch: running, pid {pid}, since "), lines
    assert lines[0].endswith("started by mullui spawn"), lines
    assert lines[1].startswith("  follows: 1 live agent, 1 queued (events in "), lines
    assert "leaves by itself" in r.stdout
    assert f"log: {state_dir(autostart) / 'watch.log'}" in r.stdout
    since = status(autostart)["since"]
    assert isinstance(parse_iso(since), datetime)


def test_ls_says_when_no_supervisor_runs_while_agents_are_live(
    mullui_home: Path, cli: CLI, repo: Path
) -> None:
    # Autostart off (the suite's default): a user who turned it off sees the gap.
    spawn(cli, repo, "sleep 60", name="alone", env=child_env())
    r = cli("ls", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("`mullui watch` starts one now"), r.stdout
    assert "no supervisor is running" in r.stdout


def test_watch_install_writes_a_unit_or_prints_the_line(
    mullui_home: Path, cli: CLI, repo: Path, tmp_path: Path
) -> None:
    r = cli("watch", "--install", cwd=repo, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert r.returncode == 0, r.stderr
    unit = tmp_path / "cfg" / "systemd" / "user" / "mullui-watch.service"
    if unit.exists():  # a systemd user session
        text = unit.read_text()
        assert f"ExecStart={sys.executable} -m mullui watch" in text
        assert f"Environment=MULLUI_HOME={mullui_home}" in text
        assert "systemctl --user enable --now mullui-watch.service" in r.stdout
    else:
        assert "add this line" in r.stdout
        assert f"{sys.executable} -m mullui watch >>" in r.stdout
        assert "never required" in r.stdout


@pytest.mark.skipif(CLAUDE is None, reason="CLAUDE CODE CLI NOT INSTALLED: test did NOT run")
def test_a_real_claude_agent_blocked_on_a_permission_dialog_is_notified_within_1s(
    autostart: Path, desktop: DesktopThread, cli: CLI, repo: Path, tmp_path: Path
) -> None:
    import tomli_w

    from tests.support.anthropic_stub import AnthropicStub, Turn
    from tests.support.claude_env import make_claude_home

    with AnthropicStub([Turn.bash("touch created.txt")]) as stub:
        home = make_claude_home(tmp_path / "claude-home", [repo], base_url=stub.url)
        keep = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
                "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_AUTOUPDATER",
                "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "NO_PROXY")  # fmt: skip
        cfg = {"profiles": {"claude": {"env": {k: home.env[k] for k in keep if k in home.env}}}}
        (autostart / "config.toml").write_text(tomli_w.dumps(cfg))
        aid = spawn(
            cli, repo, "Create created.txt", "--name", "asker", agent="claude", env=child_env()
        )
        call = desktop.wait_title("asker is blocked", timeout=90)
        spool = state_dir(autostart) / "spool" / f"{aid}.jsonl"
        events = [json.loads(x) for x in spool.read_text().splitlines() if x.strip()]
        blocked = next(e for e in events if e.get("state") == "blocked")
        at = parse_iso(blocked["at"])
        assert at is not None
        # The hook's wall-clock stamp on the server's perf_counter clock.
        offset = time.time() - time.perf_counter()
        latency = call.received + offset - at.timestamp()
        print(f"\nPermissionRequest hook -> Notify: {latency * 1000:.0f} ms")
        assert latency < 1.0, f"notified {latency:.2f}s after the agent blocked"
        assert "touch created.txt" in call.body, call.body
        assert not (Path(row(cli, repo, aid)["worktree"]) / "created.txt").exists()


# ---- issue 19 items 1-2: TUIs follow; the supervisor outlives them -----------------------------
def tui_env(home: Path) -> dict[str, str]:
    return {
        "MULLUI_HOME": str(home),
        "MULLUI_TMUX_SOCKET": os.environ["MULLUI_TMUX_SOCKET"],
        "MULLUI_NOTIFY": "none",
        "MULLUI_WATCH_AUTOSTART": "1",
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
    }


def start_tui(server: Any, name: str, repo: Path, home: Path) -> tuple[Any, int]:
    """``mullui`` in a terminal of its own (libtmux's server on another socket)."""
    session = server.new_session(
        name,
        window_command=f"{sys.executable} -m mullui",
        start_directory=str(repo),
        environment=tui_env(home),
        x=120,
        y=40,
    )
    pane = session.active_window.active_pane
    wait_for(lambda: "Inbox" in "\n".join(pane.capture_pane()), timeout=30)
    return session, int(pane.pane_pid)


def waits_on_lock(home: Path, pid: int) -> bool:
    """Process ``pid`` is blocked in ``flock`` on the supervisor lock (``/proc/locks``
    lists a waiter as ``N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF``)."""
    try:
        inode = (state_dir(home) / "supervisor.lock").stat().st_ino
        table = Path("/proc/locks").read_text()
    except OSError:
        return False
    for line in table.splitlines():
        f = line.split()
        if len(f) > 6 and f[1] == "->" and f[2] == "FLOCK":
            if f[5] == str(pid) and f[6].rsplit(":", 1)[-1] == str(inode):
                return True
    return False


def alive(pid: int) -> bool:
    try:
        return b"State:\tZ" not in Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return False


def test_two_tuis_both_live_and_neither_is_killed(
    autostart: Path, cli: CLI, repo: Path, tmp_path: Path, server: Any
) -> None:
    spawn(cli, repo, "sleep 60", name="long", env=child_env())
    watch = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    other = make_repo(tmp_path / "other")
    _, first = start_tui(server, "one", repo, autostart)
    _, second = start_tui(server, "two", other, autostart)
    time.sleep(2.0)  # the old take_over sent SIGTERM within 3 s
    assert alive(first) and alive(second)
    assert supervisor_pid(autostart) == watch  # the hidden watch still supervises
    assert watches(autostart) == [watch]


@pytest.mark.parametrize("how", ["SIGHUP", "SIGKILL"])
def test_a_killed_tui_leaves_the_queue_running(
    how: str, autostart: Path, cli: CLI, repo: Path, server: Any
) -> None:
    (autostart / "config.toml").write_text("[limits]\nmax_running = 1\n")
    first = spawn(
        cli, repo, "while [ ! -e go ]; do sleep 0.05; done", "--name", "first", env=child_env()
    )
    queued = spawn(cli, repo, "echo next > next.txt", name="queued", env=child_env())
    assert row(cli, repo, queued)["state"] == "queued"
    session, tui = start_tui(server, "tui", repo, autostart)
    if how == "SIGHUP":  # the terminal goes away: its tmux session is killed
        session.kill()
    else:
        os.kill(tui, signal.SIGKILL)
    wait_for(lambda: not alive(tui), timeout=10)
    (Path(row(cli, repo, first)["worktree"]) / "go").touch()
    wait_state(queued, "done", timeout=30, cli=cli, repo=repo, env=child_env())
    assert (Path(row(cli, repo, queued)["worktree"]) / "next.txt").read_text() == "next\n"


def test_with_a_tui_open_a_killed_supervisor_is_replaced_at_once(
    autostart: Path, cli: CLI, repo: Path, server: Any
) -> None:
    # The open TUI's standby waits on the lock: no agent event is needed for a new watch.
    spawn(cli, repo, "sleep 60", name="long", env=child_env())
    first = wait_for(lambda: supervisor_pid(autostart), timeout=10)
    _, tui = start_tui(server, "tui", repo, autostart)
    # The TUI is up and following: its standby thread waits in flock on the lock.
    wait_for(lambda: waits_on_lock(autostart, tui), timeout=10)
    os.kill(first, signal.SIGKILL)
    t0 = time.monotonic()
    second = wait_for(lambda: (supervisor_pid(autostart) or first) != first and supervisor_pid(
        autostart), timeout=10, interval=0.01)  # fmt: skip
    took = time.monotonic() - t0
    print(f"\nkill -9 -> a new supervisor holds the lock: {took * 1000:.0f} ms")
    assert took < 1.0, took
    st = wait_for(lambda: status(autostart).get("pid") == second and status(autostart))
    assert st["started_by"] == "takeover", st
    assert alive(tui)
    assert watches(autostart) == [second]
