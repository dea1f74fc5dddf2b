"""The remote-host transport against a real sshd on 127.0.0.1 (tests/support/sshd.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mullui.config import Host
from mullui.errors import MulluiError
from mullui.paths import get_paths
from mullui.remote.hosts import Backoff, HostLink, check, ssh_host, unreachable_because
from mullui.remote.ssh import (
    HostAuthError,
    HostUnreachable,
    RemoteCommandMissing,
    SshHost,
    control_dir_for,
)
from tests.support.sshd import HOST_ALIAS, Sshd, ssh_client_config, sshd  # noqa: F401

pytestmark = pytest.mark.timeout(60)

HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch {x})",
    "`touch {x}`",
    "a;b|c&d>e<f",
    "${HOME} $HOME \\n",
    "ünïcødé ✓ 日本",
    "line1\nline2",
    "",
    " lead and trail ",
    "*",
    "--",
    "-rf",
]

# Writes its arguments, NUL-separated, to the file named by the first: byte-exact proof
# of what the remote process received.
ARGV_DUMP = (
    "import os,sys; open(sys.argv[1],'wb').write(b'\\0'.join(os.fsencode(a) for a in sys.argv[2:]))"
)


@pytest.fixture
def host(ssh_client_config: Path, tmp_path: Path) -> Iterator[SshHost]:  # noqa: F811
    h = SshHost(
        "devbox",
        HOST_ALIAS,
        control_dir=control_dir_for(get_paths({"MULLUI_HOME": str(tmp_path / "home")})),
        ssh_config=ssh_client_config,
        remote_env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    yield h
    h.close()


def test_run_round_trips_a_hostile_argv_byte_for_byte(host: SshHost, tmp_path: Path) -> None:
    canary = tmp_path / "X"
    out = tmp_path / "argv.bin"
    args = [a.replace("{x}", str(canary)) for a in HOSTILE]
    r = host.run([sys.executable, "-c", ARGV_DUMP, str(out), *args], timeout=30)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().split(b"\0") == [a.encode() for a in args]
    assert not canary.exists()


def test_run_passes_stdin_and_returns_the_remote_exit_code(host: SshHost) -> None:
    r = host.run(["sh", "-c", "cat; echo err >&2; exit 3"], input=b"hello\n", timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (3, b"hello\n", b"err\n")


def test_run_in_a_directory_named_with_hostile_text(host: SshHost, tmp_path: Path) -> None:
    d = tmp_path / "a dir; $(touch X) 'q'"
    d.mkdir()
    r = host.run(["pwd"], cwd=str(d), timeout=30)
    assert r.stdout.decode().rstrip("\n") == str(d)
    assert not (tmp_path / "X").exists()


def _logins(sshd: Sshd) -> int:  # noqa: F811
    return sshd.log.read_text().count("Accepted publickey")


async def test_stream_yields_lines_then_reports_a_failed_exit(host: SshHost) -> None:
    lines = []
    with pytest.raises(MulluiError) as e:
        async with contextlib.aclosing(
            host.stream(["sh", "-c", "echo one; echo 'two ✓'; echo oops >&2; exit 3"])
        ) as s:
            async for line in s:
                lines.append(line)
    assert lines == ["one", "two ✓"]
    assert str(e.value).endswith("on devbox exited 3: oops")


def test_ten_runs_share_one_master(host: SshHost, sshd: Sshd) -> None:  # noqa: F811
    assert host.ssh_process_count() == 0
    before = _logins(sshd)
    for i in range(10):
        assert host.run(["echo", str(i)], timeout=30).stdout == f"{i}\n".encode()
    assert host.check_master()
    assert host.ssh_process_count() == 1
    assert _logins(sshd) == before + 1  # one key exchange + auth, then channels only


def test_concurrent_first_runs_still_make_one_master(host: SshHost) -> None:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            host.run(["true"], timeout=30)
        except BaseException as e:  # collected and re-raised by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert host.ssh_process_count() == 1


def test_run_after_the_master_was_killed_reconnects(host: SshHost) -> None:
    host.run(["true"], timeout=30)
    old = host.master_pid()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    r = host.run(["echo", "back"], timeout=30)
    assert (r.stdout, r.stderr) == (b"back\n", b"")
    # When the dying master still answered the socket, that one command fell back to a
    # direct connection (OpenSSH 9.2); the next one opens the new master either way.
    host.run(["true"], timeout=30)
    assert host.master_pid() not in (None, old)
    assert host.ssh_process_count() == 1


def test_close_ends_the_master(host: SshHost) -> None:
    host.run(["true"], timeout=30)
    assert host.check_master()
    host.close()
    assert not host.check_master()
    assert host.ssh_process_count() == 0


def test_changed_host_key_is_one_line_naming_the_host(
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg = sshd.client_config(tmp_path / "c", known_hosts=sshd.known_hosts_line(sshd.other_key))
    h = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    with pytest.raises(HostAuthError) as e:
        h.run(["true"], timeout=30)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("host key for devbox (testhost) changed")
    assert "known_hosts" in msg


def test_unknown_host_key_is_one_line_naming_the_host(
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg = sshd.client_config(tmp_path / "c", known_hosts="")
    h = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    with pytest.raises(HostAuthError, match=r"^host key for devbox \(testhost\) is unknown"):
        h.run(["true"], timeout=30)


def test_refused_key_is_one_line_with_the_fix(sshd: Sshd, tmp_path: Path) -> None:  # noqa: F811
    cfg = sshd.client_config(tmp_path / "c", identity=sshd.other_key)
    h = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    with pytest.raises(HostAuthError) as e:
        h.run(["true"], timeout=30)
    assert str(e.value) == (
        "permission denied (publickey) for testhost: add your key with ssh-copy-id or ssh-agent"
    )


def test_closed_port_is_unreachable(sshd: Sshd, tmp_path: Path) -> None:  # noqa: F811
    cfg = sshd.client_config(tmp_path / "c")
    cfg.write_text(cfg.read_text().replace(f"Port {sshd.port}", "Port 1"))
    h = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    with pytest.raises(
        HostUnreachable, match=r"^devbox \(testhost\) is unreachable \(Connection refused\)"
    ):
        h.run(["true"], timeout=30)


def test_missing_remote_mullui_says_how_to_install(host: SshHost) -> None:
    host.remote_env["PATH"] = "/nonexistent"
    with pytest.raises(RemoteCommandMissing) as e:
        host.run(["mullui", "ls", "--json"], timeout=30)
    assert str(e.value).startswith("mullui is not installed on devbox: pip install mullui there")


def test_missing_program_through_the_login_shell(host: SshHost) -> None:
    host.remote_env.clear()
    with pytest.raises(RemoteCommandMissing, match="^no-such-tool-xyz is not installed on devbox"):
        host.run(["no-such-tool-xyz"], timeout=30)


def test_attach_argv_quotes_the_target(host: SshHost) -> None:
    argv = host.attach_argv("sock", "s:win; rm -rf ~")
    assert argv[0] == "ssh" and "-t" in argv
    assert argv[-2] == HOST_ALIAS
    assert argv[-1].endswith("tmux -L sock attach-session -t 's:win; rm -rf ~'")


def test_long_mullui_home_gets_a_short_private_control_dir(tmp_path: Path) -> None:
    homes = [tmp_path / ("x" * 120), tmp_path / ("y" * 120)]
    hosts = [
        ssh_host(Host("devbox", "me@devbox", "/p"), get_paths({"MULLUI_HOME": str(h)}))
        for h in homes
    ]
    for h in hosts:
        assert len(os.fsencode(h.control_path)) <= 86
        assert h.control_path.parent == control_dir_for(get_paths({"MULLUI_HOME": str(homes[0])}))
    # Two instances share the directory, never a master.
    assert hosts[0].control_path != hosts[1].control_path


def test_a_control_dir_others_can_write_is_refused(ssh_client_config: Path, tmp_path: Path) -> None:  # noqa: F811
    d = tmp_path / "cm"
    d.mkdir(mode=0o700)
    d.chmod(0o777)
    h = SshHost("devbox", HOST_ALIAS, control_dir=d, ssh_config=ssh_client_config)
    with pytest.raises(MulluiError, match=r"is not private to you .*mode 777"):
        h.run(["true"], timeout=30)


def test_run_latency_over_the_master(host: SshHost, sshd: Sshd) -> None:  # noqa: F811
    host.run(["true"], timeout=30)  # open the master
    before = _logins(sshd)
    samples = []
    for _ in range(20):
        t = time.perf_counter()
        host.run(["true"], timeout=30)
        samples.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles(samples, n=20)
    p50, p95 = statistics.median(samples), q[18]
    print(f"\nrun() over the ControlMaster: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n=20)")
    assert _logins(sshd) == before


# ------------------------------------------------------------------------ hosts.check
def _git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    return path


def test_check_reports_missing_mullui_with_how_to_install(host: SshHost, tmp_path: Path) -> None:
    host.remote_env["PATH"] = "/usr/bin:/bin"  # git and tmux, but no mullui
    report = check(host, str(_git_repo(tmp_path / "repo")))
    assert report.reachable and not report.ok
    mullui = report.item("mullui")
    assert not mullui.ok and mullui.required
    assert mullui.fix is not None and mullui.fix.startswith("pip install mullui there")
    assert report.missing[0] is mullui
    assert report.item("git").ok and report.item("repo").ok
    assert report.item("tmux").ok and report.item("tmux").detail.startswith("tmux 3.")
    assert any("MISSING mullui" in line for line in report.lines())


def test_check_finds_mullui_and_flags_a_repo_that_is_not_git(host: SshHost, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, version in (("mullui", "mullui 9.9.9"), ("tmux", "tmux 3.1c")):
        fake = bin_dir / name  # stand-ins: a mullui with --version, an old tmux
        fake.write_text(f"#!/bin/sh\necho '{version}'\n")
        fake.chmod(0o755)
    (tmp_path / "plain").mkdir()
    host.remote_env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    report = check(host, str(tmp_path / "plain"))
    assert report.item("mullui").ok and report.item("mullui").detail == "mullui 9.9.9"
    assert not report.item("repo").ok and "not a git repository" in report.item("repo").detail
    tmux = report.item("tmux")
    assert (
        not tmux.ok and tmux.detail == "tmux 3.1c is too old" and tmux.fix == "install tmux >= 3.2"
    )
    assert [i.name for i in report.missing if i.required] == ["tmux", "repo"]


def test_unreachable_because_names_the_reason(sshd: Sshd, host: SshHost, tmp_path: Path) -> None:  # noqa: F811
    assert unreachable_because(host) is None
    cfg = sshd.client_config(tmp_path / "c", known_hosts="")
    stranger = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    assert (unreachable_because(stranger) or "").startswith("host key for devbox")


def test_check_of_an_unreachable_host_says_why(sshd: Sshd, tmp_path: Path) -> None:  # noqa: F811
    cfg = sshd.client_config(tmp_path / "c", identity=sshd.other_key)
    h = SshHost("devbox", HOST_ALIAS, control_dir=tmp_path / "cm", ssh_config=cfg)
    report = check(h, "/srv/repo")
    assert not report.reachable and not report.ok
    assert report.error is not None and report.error.startswith("permission denied (publickey)")


def test_ssh_host_from_config_carries_env_and_options(tmp_path: Path) -> None:
    cfg = Host(
        "devbox",
        "me@devbox",
        "/srv/p",
        env={"MULLUI_HOME": "/x y"},
        ssh_options=("Port=2222", "Compression yes"),
    )
    h = ssh_host(cfg, get_paths({"MULLUI_HOME": str(tmp_path)}))
    argv = h.command_argv(["mullui", "ls", "--json"])
    assert argv[argv.index("Port=2222") - 1] == "-o" and "Compression=yes" in argv
    assert argv[-1] == "env 'MULLUI_HOME=/x y' mullui ls --json"
    with pytest.raises(MulluiError, match=r"^\[hosts.devbox\] ssh_options: 'Port' is not"):
        ssh_host(Host("devbox", "me@devbox", "/p", ssh_options=("Port",)), get_paths())


# --------------------------------------------------------------------------- HostLink
# Stands in for `mullui events --follow --since N` until it lands: tails a JSONL file
# and prints events with cursor > N - OVERLAP, so every reconnect replays a few events
# the link has already delivered (which it must drop).  Gives up after 30 s so a copy
# orphaned by a killed connection cannot outlive the test by much.
TAIL = """
import json, sys, time
path, since, overlap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pos, buf, end = 0, b"", time.monotonic() + 30
while time.monotonic() < end:
    with open(path, "rb") as f:
        f.seek(pos)
        data = f.read()
    pos += len(data)
    buf += data
    *lines, buf = buf.split(b"\\n")
    for ln in lines:
        if json.loads(ln)["cursor"] > since - overlap:
            sys.stdout.write(ln.decode() + "\\n")
    sys.stdout.write('{"kind": "heartbeat"}\\n')
    sys.stdout.flush()
    time.sleep(0.02)
"""


class Recorder:
    """Collects a link's callbacks and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.states: list[tuple[str, datetime]] = []
        self._changed = asyncio.Event()

    def on_event(self, ev: dict[str, object]) -> None:
        self.events.append(ev)
        self._changed.set()

    def on_state(self, state: str, since: datetime) -> None:
        self.states.append((state, since))
        self._changed.set()

    @property
    def state(self) -> str | None:
        return self.states[-1][0] if self.states else None

    @property
    def cursors(self) -> list[object]:
        return [e["cursor"] for e in self.events]

    async def until(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                # Woken by a callback, or every 50 ms for conditions outside them.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                self._changed.clear()


def _append(path: Path, first: int, last: int) -> None:
    with path.open("a") as f:
        for c in range(first, last + 1):
            f.write(json.dumps({"cursor": c, "kind": "state", "state": "working"}) + "\n")


def _link(host: SshHost, tmp_path: Path, rec: Recorder, events: Path, **kw: Any) -> HostLink:
    return HostLink(
        host,
        cursor_path=tmp_path / "state" / "hosts" / "devbox.json",
        on_event=rec.on_event,
        on_state=rec.on_state,
        argv=lambda c: [sys.executable, "-u", "-c", TAIL, str(events), str(c), "3"],
        backoff=Backoff(0.05, 0.5),
        **kw,
    )


async def test_link_resumes_after_the_master_is_killed_with_no_loss_or_duplicate(
    host: SshHost, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.touch()
    rec = Recorder()
    link = _link(host, tmp_path, rec, events)
    task = asyncio.create_task(link.run())
    _append(events, 1, 10)
    await rec.until(lambda: len(rec.events) >= 10)
    master = host.master_pid()
    assert master is not None
    os.kill(master, signal.SIGKILL)
    await rec.until(lambda: rec.state == "unreachable")
    dropped_at = rec.states[-1][1]
    assert link.reason is not None and "unreachable" in link.reason
    _append(events, 11, 20)  # happen while the link is down
    await rec.until(lambda: len(rec.events) >= 20)
    assert rec.state == "connected"
    assert host.master_pid() not in (None, master)
    link.stop()
    await task
    assert rec.cursors == list(range(1, 21))
    assert [s for s, _ in rec.states] == ["connected", "unreachable", "connected", "stopped"]
    assert isinstance(dropped_at, datetime) and dropped_at.tzinfo is not None
    saved = json.loads(link.cursor_path.read_text())
    assert saved["cursor"] == 20 and saved["host"] == "devbox"

    # A restarted supervisor resumes from the saved cursor: the replayed 18..20 are dropped.
    rec2 = Recorder()
    link2 = _link(host, tmp_path, rec2, events)
    assert link2.cursor == 20
    task2 = asyncio.create_task(link2.run())
    _append(events, 21, 25)
    await rec2.until(lambda: len(rec2.events) >= 5)
    link2.stop()
    await task2
    assert rec2.cursors == [21, 22, 23, 24, 25]


async def test_link_to_a_host_without_mullui_is_flagged_with_the_fix(
    host: SshHost, tmp_path: Path
) -> None:
    host.remote_env["PATH"] = "/usr/bin:/bin"
    rec = Recorder()
    link = HostLink(
        host,
        cursor_path=tmp_path / "c.json",
        on_event=rec.on_event,
        on_state=rec.on_state,
        backoff=Backoff(0.05, 0.1),
    )
    task = asyncio.create_task(link.run())
    await rec.until(lambda: link.backoff.attempt >= 3)  # it keeps retrying...
    link.stop()
    await task
    assert link.reason is not None
    assert link.reason.startswith("mullui is not installed on devbox: pip install mullui there")
    # ...without flapping: never "connected", flagged once.
    assert [s for s, _ in rec.states] == ["unreachable", "stopped"]


async def test_a_bad_line_from_the_host_is_skipped_and_said_the_link_goes_on(
    host: SshHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deeply nested JSON (a RecursionError in json.loads) and an entry that makes the
    consumer fail used to end the link's task for good, silently (issue 20 item 7)."""
    events = tmp_path / "events.jsonl"
    with events.open("w") as f:
        f.write("[" * 200_000 + "]" * 200_000 + "\n")
    rec = Recorder()
    calls = 0

    def on_event(ev: dict[str, object]) -> None:
        nonlocal calls
        calls += 1
        if ev["cursor"] == 1:
            raise TypeError("a record this side cannot read")
        rec.on_event(ev)

    feed = (
        "import sys; p = sys.argv[1]; "
        "[sys.stdout.write(ln) for ln in open(p)]; "
        'sys.stdout.write(\'{"cursor": 1, "kind": "x"}\\n{"cursor": 2, "kind": "x"}\\n\'); '
        'sys.stdout.write(\'{"kind": "heartbeat"}\\n\'); sys.stdout.flush(); '
        "import time; time.sleep(30)"
    )
    link = HostLink(
        host,
        cursor_path=tmp_path / "c.json",
        on_event=on_event,
        on_state=rec.on_state,
        argv=lambda c: [sys.executable, "-u", "-c", feed, str(events)],
        backoff=Backoff(0.05, 0.1),
    )
    caplog.set_level(logging.WARNING, logger="mullui.remote.hosts")
    task = asyncio.create_task(link.run())
    await rec.until(lambda: rec.cursors == [2])
    assert not task.done() and link.state == "connected"
    assert (link.bad_lines, link.cursor, calls) == (2, 2, 2)
    said = [r.getMessage() for r in caplog.records]
    assert any("not a JSON object" in m for m in said), said
    assert any("TypeError: a record this side cannot read" in m for m in said), said
    link.stop()
    await task


async def test_silent_stream_counts_as_dropped(host: SshHost, tmp_path: Path) -> None:
    rec = Recorder()
    link = HostLink(
        host,
        cursor_path=tmp_path / "c.json",
        on_event=rec.on_event,
        on_state=rec.on_state,
        argv=lambda c: ["sleep", "5"],
        backoff=Backoff(5, 5),
        idle_timeout_s=0.3,
    )
    task = asyncio.create_task(link.run())
    await rec.until(lambda: rec.state == "unreachable")
    link.stop()
    await task
    assert link.reason == "no event or heartbeat for 0.3s"
    assert host.ssh_process_count() == 1  # the stream's ssh client was ended; master stays


def test_backoff_doubles_from_one_second_to_a_minute_with_jitter() -> None:
    b = Backoff()
    delays = [b.next() for _ in range(10)]
    for n, d in enumerate(delays):
        floor = min(60.0, 2.0**n)
        assert floor <= d <= min(60.0, floor * 1.2)
    assert delays[-1] == 60.0
    assert len({round(d, 6) for d in delays[:5]}) == 5
    b.reset()
    assert 1.0 <= b.next() <= 1.2
