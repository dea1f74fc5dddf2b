"""mullui.runtime.tmux against a real tmux server on a throw-away socket."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui.errors import MulluiError
from mullui.runtime.tmux import Tmux
from tests.support import agents

# Characters that mean something to sh, to tmux's parser, to tmux formats, or to tmux's
# client-side ";" splitting.
NASTY = "$(touch X) `touch X` 'single' \"double\" ;|&><* $HOME ~ #{pane_id} ## \\ ünïcødé ✓"
PY = sys.executable


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """The shared ``wait_for`` with this file's short default and quick polling."""
    return agents.wait_for(pred, timeout, what, interval=0.005)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.fixture
def tmux(server: Any, tmp_path: Path) -> Tmux:
    """A Tmux on libtmux's throw-away socket (reaped by its fixture), no user config."""
    t = Tmux(server.socket_name, config_file=Path("/dev/null"))
    t.ensure_session("repo", tmp_path)
    return t


def recorder(path: Path) -> list[str]:
    """An on_exit/on_silence argv that appends its arguments and a timestamp to ``path``."""
    return ["sh", "-c", 'printf "%s %s\\n" "$*" "$(date +%s.%N)" >> "$0"', str(path)]


def launch(tmux: Tmux, tmp_path: Path, argv: list[str], agent_id: str = "a1", **kw: Any) -> str:
    args: dict[str, Any] = {
        "session": "repo",
        "window_name": f"agent-{agent_id}",
        "agent_id": agent_id,
        "cwd": tmp_path,
        "argv": argv,
        "env": {},
        "log_path": tmp_path / f"{agent_id}.log",
        "on_exit": recorder(tmp_path / f"{agent_id}.exit"),
    }
    args.update(kw)
    return tmux.launch(**args)


@pytest.mark.parametrize("code", [0, 3])
def test_exit_status_arrives_through_pane_died_hook_within_a_second(
    tmux: Tmux, tmp_path: Path, code: int
) -> None:
    ended = tmp_path / "ended"
    script = 'date +%s.%N > "$0"; exit "$1"'
    target = launch(tmux, tmp_path, ["sh", "-c", script, str(ended), str(code)])
    assert target.startswith("%")
    line = wait_for(lambda: read(tmp_path / "a1.exit"), what="on_exit")
    words = line.split()
    assert words[:2] == ["--status", str(code)]
    latency = float(words[2]) - float(ended.read_text())
    print(f"exit {code}: process end -> on_exit ran in {latency * 1000:.1f} ms")
    assert 0 <= latency < 1.0


def test_every_quick_exit_is_reported_even_when_tmux_loses_sigchld(
    server: Any, tmp_path: Path
) -> None:
    # tmux 3.3a loses a pane's SIGCHLD now and then, leaving a zombie and no pane-died:
    # measured 1 in 7 quick exits when the agent was exec'd as the pane's process, about
    # 1 in 40 with the wrapper and no nudge.  Each round uses a fresh server so no other
    # child's SIGCHLD can rescue a lost one; the wrapper's nudge must.
    t = Tmux(server.socket_name, config_file=Path("/dev/null"))
    worst = 0.0
    for i in range(20):
        t.ensure_session("repo", tmp_path)
        t0 = time.monotonic()
        launch(t, tmp_path, ["printf", "x"], f"q{i}")
        # A lost SIGCHLD is lost for good: the generous timeout only absorbs a busy CI.
        wait_for(lambda i=i: read(tmp_path / f"q{i}.exit"), 5.0, f"exit report {i}")
        worst = max(worst, time.monotonic() - t0)
        t.kill_server()
    print(f"20 quick exits, worst launch-to-report {worst * 1000:.0f} ms")


def test_death_by_signal_is_reported_as_128_plus_the_signal(tmux: Tmux, tmp_path: Path) -> None:
    launch(tmux, tmp_path, ["sh", "-c", "kill -TERM $$"])
    line = wait_for(lambda: read(tmp_path / "a1.exit"), what="on_exit")
    assert line.split()[:2] == ["--status", "143"]
    panes = tmux.panes()
    assert panes is not None and panes["a1"].dead_signal == 15
    assert panes["a1"].exit_code == 143


def test_log_holds_output_printed_at_the_first_instant(tmux: Tmux, tmp_path: Path) -> None:
    # printf is done within a millisecond of exec; only the gate (the command waits
    # until pipe-pane is attached) gets its output into the log.
    launch(tmux, tmp_path, ["printf", "first-words"])
    wait_for(lambda: read(tmp_path / "a1.exit"), what="exit")
    assert wait_for(lambda: "first-words" in read(tmp_path / "a1.log"), 2.0, "log")


def test_window_is_named_tagged_and_kept_after_exit(tmux: Tmux, tmp_path: Path) -> None:
    odd = tmp_path / "we#ird dir; 'q'"
    odd.mkdir()
    target = launch(
        tmux, odd, ["sh", "-c", "pwd > where.txt; echo logged"],
        window_name="fix #1 login;", log_path=odd / "lo#g's.log",
    )  # fmt: skip
    wait_for(lambda: read(odd / "a1.exit"), what="exit")
    out = subprocess.run(
        ["tmux", "-L", tmux.socket_name, "display-message", "-p", "-t", target,
         "#{window_name}|#{@mullui_agent}|#{remain-on-exit}|#{pane_dead}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == "fix #1 login;|a1|on|1"
    assert (odd / "where.txt").read_text().strip() == str(odd)
    assert wait_for(lambda: "logged" in read(odd / "lo#g's.log"), 2.0, "log")


def test_bracketed_paste_delivers_multi_line_text_as_one_paste(tmux: Tmux, tmp_path: Path) -> None:
    # Like an agent TUI: raw mode, bracketed paste on; newlines inside the paste are
    # text, the Enter after it submits.
    out = tmp_path / "pasted.bin"
    prog = (
        "import os, sys, tty; tty.setraw(0); os.write(1, b'\\x1b[?2004h')\n"
        "open(sys.argv[2], 'w').close(); buf = b''\n"
        "while not buf.endswith(b'\\r') or b'\\x1b[201~' not in buf:\n"
        "    buf += os.read(0, 4096)\n"
        "open(sys.argv[1], 'wb').write(buf)\n"
    )
    ready = tmp_path / "ready"
    target = launch(tmux, tmp_path, [PY, "-c", prog, str(out), str(ready)])
    wait_for(ready.exists, what="raw mode and bracketed paste on")
    tmux.send(target, "line one\nline 'two' $(x)\n")
    data = wait_for(lambda: out.exists() and out.read_bytes(), what="paste")
    assert data == b"\x1b[200~line one\rline 'two' $(x)\r\x1b[201~\r"


def test_task_text_reaches_the_program_unchanged_and_runs_nothing(
    tmux: Tmux, tmp_path: Path
) -> None:
    task = (NASTY + "\n\ttabbed line\n") * 110  # about 10 KB
    assert len(task.encode()) > 10_000
    got = tmp_path / "argv.txt"
    prog = "import sys, json; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    env = {"MULLUI_TEST": NASTY + ";"}
    envprog = prog.replace("sys.argv[2:]", "[sys.argv[2], __import__('os').environ['MULLUI_TEST']]")
    launch(tmux, tmp_path, [PY, "-c", prog, str(got), task, ";", "ends;"], "a1")
    launch(tmux, tmp_path, [PY, "-c", envprog, str(tmp_path / "env.txt"), "x"], "a2", env=env)
    import json

    assert wait_for(lambda: read(got)) and json.loads(read(got)) == [task, ";", "ends;"]
    assert wait_for(lambda: read(tmp_path / "env.txt"))
    assert json.loads(read(tmp_path / "env.txt")) == ["x", NASTY + ";"]
    assert not (tmp_path / "X").exists()


def test_a_task_of_100_kb_reaches_the_program_whole(tmux: Tmux, tmp_path: Path) -> None:
    # Over tmux's 16 KB command limit: the argv goes through a file the wrapper reads.
    task = (NASTY + "\n\ttabbed line\n") * 1100
    assert 100_000 < len(task.encode()) < 128 * 1024
    got = tmp_path / "argv.txt"
    prog = "import sys, json; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    launch(tmux, tmp_path, [PY, "-c", prog, str(got), task, "x" * 20_000])
    import json

    # The program's exit report, not the file's first bytes: 136 KB may be read half-written.
    wait_for(lambda: read(tmp_path / "a1.exit"), what="the program's exit")
    assert read(got) and json.loads(read(got)) == [task, "x" * 20_000]
    assert not (tmp_path / "X").exists()
    assert not list(tmp_path.glob(".*.argv")), "the argv file is removed once read"


def test_an_argument_linux_cannot_pass_is_refused_clearly(tmux: Tmux, tmp_path: Path) -> None:
    with pytest.raises(MulluiError, match="at most 131072 bytes in one program argument"):
        launch(tmux, tmp_path, ["echo", "x" * 200_000])
    assert tmux.panes() == {}
    assert not list(tmp_path.glob(".*.argv"))


@pytest.mark.parametrize(
    "text",
    [
        "one line with 'quotes' \"dq\" $(touch X) `touch X` ;|&> ünï ✓\ttab",
        "first line\n  second: $(touch X)\n\tthird ünï\n",
        "-starts with a dash;",
        ("long line " * 300 + "\n") * 3,
    ],
    ids=["single-line", "multi-line", "dash", "long"],
)
def test_send_types_text_byte_for_byte_then_enter(tmux: Tmux, tmp_path: Path, text: str) -> None:
    out = tmp_path / "typed.txt"
    target = launch(tmux, tmp_path, ["sh", "-c", 'exec cat > "$0"', str(out)])
    tmux.send(target, text)
    expected = text + "\n"  # Enter
    wait_for(lambda: read(out) == expected, what="typed text")
    assert not (tmp_path / "X").exists()


def test_panes_sees_alive_and_dead_and_none_without_server(tmux: Tmux, tmp_path: Path) -> None:
    alive = launch(tmux, tmp_path, ["sleep", "60"], "alive")
    dead = launch(tmux, tmp_path, ["sh", "-c", "exit 7"], "dead")
    wait_for(lambda: read(tmp_path / "dead.exit"), what="exit")
    panes = tmux.panes()
    assert panes is not None
    assert set(panes) == {"alive", "dead"}  # the placeholder window is not an agent
    assert panes["alive"].target == alive and not panes["alive"].dead
    assert panes["alive"].pid and panes["alive"].dead_status is None
    assert panes["dead"].target == dead and panes["dead"].dead
    assert panes["dead"].dead_status == 7 and panes["dead"].dead_signal is None
    assert panes["dead"].exit_code == 7 and panes["alive"].exit_code is None
    assert tmux.server_alive()
    tmux.kill_server()
    assert tmux.panes() is None
    assert not tmux.server_alive()
    tmux.kill_server()  # idempotent


def test_a_stale_socket_means_no_server_but_a_bad_target_is_an_error(
    tmux: Tmux, tmp_path: Path
) -> None:
    target = launch(tmux, tmp_path, ["sleep", "60"])
    tmux.kill(target)
    with pytest.raises(MulluiError, match=f"can't find.*{target}"):
        tmux.send(target, "hello")
    # A server killed hard leaves its socket file behind: still "no server", not an error.
    server_pid = subprocess.run(
        ["tmux", "-L", tmux.socket_name, "display-message", "-p", "#{pid}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    os.kill(int(server_pid), 9)
    wait_for(lambda: tmux.panes() is None, what="no server")
    assert not tmux.server_alive()


def test_capture_returns_the_screen_text(tmux: Tmux, tmp_path: Path) -> None:
    target = launch(tmux, tmp_path, ["sh", "-c", "echo hello capture; exec sleep 60"])
    assert wait_for(lambda: "hello capture" in tmux.capture(target, 20), what="capture")


def test_stop_interrupts_then_removes_the_window(tmux: Tmux, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = "trap 'exit 130' INT; : > \"$0\"; while :; do sleep 0.05; done"
    target = launch(tmux, tmp_path, ["sh", "-c", script, str(ready)])
    wait_for(ready.exists, 30.0, "sh to install its trap")
    assert tmux.stop(target, grace=3.0).exited is True
    assert wait_for(lambda: read(tmp_path / "a1.exit")).split()[:2] == ["--status", "130"]
    assert tmux.panes() == {}
    tmux.kill(target)  # gone already: no error


def test_stop_kills_an_agent_that_ignores_ctrl_c(tmux: Tmux, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = "trap '' INT; : > \"$0\"; while :; do sleep 0.05; done"
    target = launch(tmux, tmp_path, ["sh", "-c", script, str(ready)])
    wait_for(ready.exists, 30.0, "sh to ignore Ctrl-C")
    t0 = time.monotonic()
    assert tmux.stop(target, grace=0.6).exited is False
    # The grace given, not the default (3 s), then the kill; room for a loaded machine.
    assert time.monotonic() - t0 < 3.0
    assert tmux.panes() == {}


def test_silence_hook_fires_once_per_quiet_spell(tmux: Tmux, tmp_path: Path) -> None:
    events = tmp_path / "alerts"
    go = tmp_path / "go"
    # Quiet until the test says "go" (a fixed sleep races tmux's timer on a loaded machine).
    script = 'echo a; until [ -e "$0" ]; do sleep 0.05; done; echo b; exec sleep 60'
    launch(
        tmux, tmp_path, ["sh", "-c", script, str(go)],
        silence_seconds=1,
        on_silence=[*recorder(events), "silence"],
        on_activity=[*recorder(events), "activity"],
    )  # fmt: skip
    kinds = lambda: [ln.split()[0] for ln in read(events).splitlines()]  # noqa: E731
    wait_for(lambda: kinds() == ["silence"], 30.0, "the first silence")
    go.touch()
    wait_for(lambda: kinds() == ["silence", "activity", "silence"], 30.0, "silence twice")
    time.sleep(1.3)  # still silent: tmux would re-fire here if the flags were cleared
    assert kinds() == ["silence", "activity", "silence"]


def test_ensure_session_is_idempotent_under_concurrency(server: Any, tmp_path: Path) -> None:
    t = Tmux(server.socket_name, config_file=Path("/dev/null"))
    threads = [threading.Thread(target=t.ensure_session, args=("r", tmp_path)) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out = subprocess.run(
        ["tmux", "-L", server.socket_name, "list-sessions", "-F", "#{session_name}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["r"]


def test_twenty_parallel_launches(tmux: Tmux, tmp_path: Path) -> None:
    times: list[float] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            launch(tmux, tmp_path, ["sh", "-c", f"echo agent-{i}; exec sleep 60"], f"p{i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    single = launch(tmux, tmp_path, ["sleep", "60"], "solo")
    solo = time.perf_counter() - t0
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    assert not errors
    panes = tmux.panes()
    assert panes is not None and len(panes) == 21 and panes["solo"].target == single
    for i in range(20):
        assert wait_for(lambda i=i: f"agent-{i}" in read(tmp_path / f"p{i}.log"), 5.0)
    print(
        f"launch: 1 alone {solo * 1000:.1f} ms; 20 parallel wall {wall * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms, median {sorted(times)[10] * 1000:.0f} ms"
    )


def _pty_client(socket: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    threading.Thread(target=_drain, args=(master,), daemon=True).start()
    return proc


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _client_panes(socket: str) -> list[str]:
    r = subprocess.run(
        ["tmux", "-L", socket, "list-clients", "-F", "#{pane_id}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return r.stdout.split()


def test_attach_from_outside_tmux_returns_when_the_user_detaches(
    tmux: Tmux, tmp_path: Path
) -> None:
    target = launch(tmux, tmp_path, ["sleep", "60"])
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(Path(__file__).parents[2]))
    code = f"from mullui.runtime.tmux import Tmux; Tmux({tmux.socket_name!r}).attach({target!r})"
    proc = _pty_client(tmux.socket_name, [PY, "-c", code], env)
    try:
        wait_for(lambda: _client_panes(tmux.socket_name) == [target], what="attached client")
        subprocess.run(["tmux", "-L", tmux.socket_name, "detach-client", "-a"], check=False)
        subprocess.run(["tmux", "-L", tmux.socket_name, "detach-client"], check=False)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()


def test_attach_to_a_vanished_window_is_a_clear_error(tmux: Tmux, tmp_path: Path) -> None:
    target = launch(tmux, tmp_path, ["sleep", "60"])
    tmux.kill(target)
    with pytest.raises(MulluiError, match=f"can't find pane: {target}"):
        tmux.attach(target)


def test_a_user_config_that_destroys_detached_sessions_is_overridden(
    server: Any, tmp_path: Path
) -> None:
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g destroy-unattached on\nset -g exit-unattached on\n")
    t = Tmux(server.socket_name, config_file=conf)
    t.ensure_session("repo", tmp_path)
    launch(t, tmp_path, ["sleep", "60"])
    time.sleep(0.2)
    panes = t.panes()
    assert panes is not None and "a1" in panes


def test_attach_inside_tmux_switches_the_client(tmux: Tmux, tmp_path: Path) -> None:
    target = launch(tmux, tmp_path, ["sleep", "60"])
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env["TERM"] = "xterm-256color"
    client = _pty_client(
        tmux.socket_name, ["tmux", "-L", tmux.socket_name, "attach", "-t", "=repo:mullui"], env
    )
    try:
        placeholder = wait_for(lambda: _client_panes(tmux.socket_name), what="client")[0]
        assert placeholder != target
        sock = subprocess.run(
            ["tmux", "-L", tmux.socket_name, "display-message", "-p", "#{socket_path}"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        # As if called from the placeholder pane: $TMUX and $TMUX_PANE are what tmux sets.
        inner = dict(os.environ, TMUX=f"{sock},1,0", TMUX_PANE=placeholder)
        inner["PYTHONPATH"] = str(Path(__file__).parents[2])
        code = (
            f"from mullui.runtime.tmux import Tmux; Tmux({tmux.socket_name!r}).attach({target!r})"
        )
        subprocess.run([PY, "-c", code], env=inner, check=True, timeout=10)
        assert wait_for(lambda: _client_panes(tmux.socket_name) == [target], what="switch")
    finally:
        client.kill()


def _pids(path: Path, n: int) -> list[int]:
    return [int(x) for x in wait_for(lambda: len(read(path).split()) >= n and read(path)).split()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"  # a zombie the container's init never reaps


def test_stop_ends_the_whole_tree_even_processes_that_ignore_term_and_hup(
    tmux: Tmux, tmp_path: Path
) -> None:
    # The agent ignores TERM and HUP and C-c; it starts a nohup'd child, a child in its
    # own session (setsid, re-parented to init when its parent goes) and a plain one.
    pids = tmp_path / "pids"
    script = (
        "trap '' TERM HUP INT; "
        f"nohup sh -c 'trap \"\" TERM; echo $$ >> {pids}; exec sleep 300' >/dev/null 2>&1 & "
        f"setsid sh -c 'trap \"\" TERM HUP; echo $$ >> {pids}; while :; do sleep 1; done' & "
        f"sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; "
        "while :; do sleep 1; done"
    )
    target = launch(tmux, tmp_path, ["sh", "-c", script])
    tree = _pids(pids, 4)
    assert all(_alive(p) for p in tree)
    t0 = time.monotonic()
    stopped = tmux.stop(target, grace=0.5)
    assert stopped.exited is False and stopped.survivors == []
    assert time.monotonic() - t0 < 5.0
    assert [p for p in tree if _alive(p)] == []
    assert tmux.panes() == {}


def test_kill_ends_a_dead_agents_leftover_children(tmux: Tmux, tmp_path: Path) -> None:
    # The agent exited; its nohup'd server lives on (re-parented): rm --force ends it.
    pids = tmp_path / "pids"
    script = (
        f"nohup sh -c 'trap \"\" HUP TERM; echo $$ >> {pids}; exec sleep 300' >/dev/null 2>&1 & "
        f"while [ ! -s {pids} ]; do sleep 0.02; done"  # past nohup's signal(SIGHUP, SIG_IGN)
    )
    target = launch(tmux, tmp_path, ["sh", "-c", script])
    (child,) = _pids(pids, 1)
    wait_for(lambda: read(tmp_path / "a1.exit"), what="exit")
    assert _alive(child)
    assert tmux.kill(target, grace=0.3) == []
    assert wait_for(lambda: not _alive(child), what="child ended")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the killer as another user")
def test_processes_that_survive_sigkill_are_reported(tmp_path: Path) -> None:
    # A real process the killer may not signal: root's, ended by an unprivileged mullui.
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        time.sleep(0.1)
        root = Path(__file__).resolve().parents[2]
        prog = (
            "import sys; from mullui.runtime import processes; "
            f"print(processes.end({victim.pid}, grace=0.2))"
        )
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-c", prog],
            capture_output=True, text=True, timeout=30, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"[{victim.pid}]"
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
