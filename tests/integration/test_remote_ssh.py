"""The remote-host transport against a real sshd on 127.0.0.1 (tests/support/sshd.py)."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest

from mullui.paths import get_paths
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
def host(ssh_client_config: Path, tmp_path: Path) -> SshHost:  # noqa: F811
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


def test_ten_runs_share_one_master(host: SshHost) -> None:
    assert host.ssh_process_count() == 0
    for i in range(10):
        assert host.run(["echo", str(i)], timeout=30).stdout == f"{i}\n".encode()
    assert host.check_master()
    assert host.ssh_process_count() == 1


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
    home = tmp_path / ("x" * 120)
    d = control_dir_for(get_paths({"MULLUI_HOME": str(home)}))
    assert len(str(d)) < 60
    h = SshHost("devbox", "me@devbox", control_dir=d)
    assert len(os.fsencode(h.control_path)) <= 86


def test_run_latency_over_the_master(host: SshHost) -> None:
    host.run(["true"], timeout=30)  # open the master
    samples = []
    for _ in range(40):
        t = time.perf_counter()
        host.run(["true"], timeout=30)
        samples.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles(samples, n=20)
    p50, p95 = statistics.median(samples), q[18]
    print(f"\nrun() over the ControlMaster: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n=40)")
    assert p50 < 500
