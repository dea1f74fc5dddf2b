"""A real OpenSSH server on 127.0.0.1 for remote-host tests.

``Sshd`` starts ``/usr/sbin/sshd`` on an ephemeral port with a throw-away host key, a
throw-away user key and its own ``sshd_config``; ``client_config()`` writes an ``ssh -F``
file (``Host testhost``) that trusts exactly that host key.  The "remote" side is this
same machine, as the current user: tests point the remote command at their own
``MULLUI_HOME`` / ``MULLUI_TMUX_SOCKET`` / ``PATH`` through the host's remote env.

Use the ``sshd`` fixture (one server per test session) and ``ssh_client_config`` (a fresh
client config per test).  Import both into a test module or a conftest.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.missing import missing

SSHD = Path("/usr/sbin/sshd")
HOST_ALIAS = "testhost"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path


class Sshd:
    """One running sshd and the keys to reach it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.user = getpass.getuser()
        self.host_key = _keygen(root / "host_ed25519")
        self.user_key = _keygen(root / "user_ed25519")
        self.other_key = _keygen(root / "stranger_ed25519")  # never authorized
        self.authorized_keys = root / "authorized_keys"
        shutil.copy(self.user_key.with_suffix(".pub"), self.authorized_keys)
        self.log = root / "sshd.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # sshd refuses to start without its privilege-separation directory when root.
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        last_error = ""
        for _ in range(3):  # the ephemeral port may be taken between probe and bind
            self.port = _free_port()
            config = self.root / "sshd_config"
            config.write_text(
                "\n".join(
                    [
                        f"Port {self.port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {self.host_key}",
                        f"PidFile {self.root / 'sshd.pid'}",
                        f"AuthorizedKeysFile {self.authorized_keys}",
                        "PermitRootLogin prohibit-password",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "StrictModes no",  # tmp dirs are not the owner-only dirs it wants
                        "UseDNS no",
                        "PrintMotd no",
                        "PrintLastLog no",
                        "X11Forwarding no",
                        # bash sources ~/.bashrc for commands sshd runs (Debian builds it
                        # with SSH_SOURCE_BASHRC) unless SHLVL says it is nested; the test
                        # "remote" must not depend on this machine's rc files (here root's
                        # `pyenv init` cost ~100 ms a command and hung 60 s on a stale
                        # pyenv-rehash lock).  Tests pass PATH explicitly instead.
                        "SetEnv SHLVL=1",
                        "MaxStartups 100",
                        "MaxSessions 100",
                        "LogLevel VERBOSE",
                        "",
                    ]
                )
            )
            # sshd must be started by absolute path (it re-executes itself).
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-f", str(config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.02)
            last_error = self.log.read_text() if self.log.exists() else ""
            self.stop()
        raise RuntimeError(f"sshd did not start: {last_error[-500:]}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def known_hosts_line(self, key: Path | None = None) -> str:
        """A known_hosts line for this server (or claiming ``key`` is its host key)."""
        pub = (key or self.host_key).with_suffix(".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n"

    def client_config(
        self,
        directory: Path,
        *,
        identity: Path | None = None,
        known_hosts: str | None = None,
    ) -> Path:
        """Write an ``ssh -F`` config for ``Host testhost`` into ``directory``.

        ``identity`` defaults to the authorized user key; ``known_hosts`` to a file that
        trusts this server's real host key (pass other contents to simulate a changed or
        unknown host).
        """
        directory.mkdir(parents=True, exist_ok=True)
        kh = directory / "known_hosts"
        kh.write_text(self.known_hosts_line() if known_hosts is None else known_hosts)
        cfg = directory / "ssh_config"
        cfg.write_text(
            "\n".join(
                [
                    f"Host {HOST_ALIAS}",
                    "  HostName 127.0.0.1",
                    f"  Port {self.port}",
                    f"  User {self.user}",
                    f"  IdentityFile {identity or self.user_key}",
                    "  IdentitiesOnly yes",
                    "  IdentityAgent none",  # the developer's agent must not lend a key
                    f"  UserKnownHostsFile {kh}",
                    "  GlobalKnownHostsFile /dev/null",
                    "  StrictHostKeyChecking yes",
                    "  UpdateHostKeys no",
                    "",
                ]
            )
        )
        return cfg


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1 for the whole test session."""
    if not SSHD.exists() or shutil.which("ssh") is None:
        missing("OpenSSH server/client not installed (apt install openssh-server)")
    # ssh-keygen and sshd want short, private paths; pytest's tmp dirs can be long.
    root = Path(tempfile.mkdtemp(prefix="mullui-sshd-"))
    server = Sshd(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ssh_client_config(sshd: Sshd, tmp_path: Path) -> Path:
    """A client config for ``testhost`` that trusts the test sshd and holds the right key."""
    return sshd.client_config(tmp_path / "ssh")
