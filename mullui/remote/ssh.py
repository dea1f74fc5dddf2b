"""One remote host reached through OpenSSH: a multiplexed connection, commands, streams.

mullui keeps no daemon of its own on a remote host: every remote operation is the same
``mullui`` CLI run there over ``ssh``.  All commands to one host share one OpenSSH
ControlMaster connection (``ControlMaster=auto`` + ``ControlPersist``), so a command costs
one multiplexed channel, not a TCP + key exchange + auth round trip.

The remote command line is always ``shlex.join(argv)``: OpenSSH hands the remote side a
single string that the remote login shell parses, so every element is quoted for a POSIX
shell and nothing is ever built from user text by concatenation.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path

from mullui.errors import MulluiError
from mullui.paths import Paths

# A unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS/BSD), and
# OpenSSH first binds ``<ControlPath>.<16 random chars>`` and then renames it, so the
# path we hand it must leave room for that suffix (seen on OpenSSH 9.2).
_SUN_PATH_BUDGET = 104 - 1 - 17

# ssh's complaints when a control socket exists but its master is dying or dead, before
# any session is requested (OpenSSH 9.2 mux.c).  9.2 mostly recovers by itself (it falls
# back to a direct connection); older clients exit 255 with these.
_MUX_REFUSED = re.compile(rb"mux_client_hello_exchange|Control socket connect")

_MUX_FALLBACK = re.compile(
    rb"muxclient: master hello exchange failed\r?\n|"
    rb"ControlSocket \S+ already exists, disabling multiplexing\r?\n"
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Runs argv in a directory on the remote side: ssh has no "cwd", and the directory is
# data ($1), never spliced into the script.  A leading ``~`` means the remote $HOME,
# which a quoted argument would otherwise not expand.
_IN_DIR_SCRIPT = (
    'd=$1; shift; case $d in "~"|"~/"*) d="$HOME${d#"~"}";; esac; cd -- "$d" || exit 1; exec "$@"'
)


class HostUnreachable(MulluiError):
    """The host could not be reached (network, DNS, sshd down, connection dropped)."""


class HostAuthError(MulluiError):
    """ssh refused to proceed: unknown or changed host key, or our key was refused."""


class RemoteCommandMissing(MulluiError):
    """The remote side lacks the program we asked it to run (exit 127)."""


def control_dir_for(paths: Paths) -> Path:
    """Where the ControlMaster sockets of this mullui instance live.

    ``<state_dir>/ssh`` when its path is short enough for a unix socket; otherwise one
    private per-user directory under the system temp dir (a long ``MULLUI_HOME``, e.g.
    pytest's tmp_path, easily exceeds the ~104-byte socket path limit).  Sockets there
    stay apart per instance because ``SshHost`` hashes ``instance`` into their names.
    """
    preferred = paths.state_dir / "ssh"
    if len(os.fsencode(preferred)) + 1 + 16 <= _SUN_PATH_BUDGET:
        return preferred
    return Path(tempfile.gettempdir()) / f"mullui-{os.getuid()}"


def _private_dir(path: Path) -> Path:
    """Create ``path`` (0700) and refuse one another user could write into: whoever
    controls the directory could plant a socket and see every command we run."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise MulluiError(
            f"{path} is not private to you (owner uid {st.st_uid}, mode {st.st_mode & 0o777:o}):"
            " remove it so mullui can recreate it"
        )
    return path


def _short(argv: Sequence[str]) -> str:
    """A command for a one-line message: whitespace collapsed, clipped."""
    text = " ".join(shlex.join(argv).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class SshHost:
    """One remote host, reached over a single multiplexed OpenSSH connection.

    ``destination`` is anything ``ssh`` accepts (``me@devbox``, an alias from
    ``~/.ssh/config``).  ``ssh_config`` replaces the user's ``~/.ssh/config`` (``ssh -F``;
    the tests use it).  ``options`` are extra ``-o KEY=VALUE`` settings and win over ours.
    ``remote_env`` is set on every remote command (``env K=V ... argv``): how a host gets
    ``PATH``, ``MULLUI_HOME`` or ``MULLUI_TMUX_SOCKET`` without touching its shell rc files.
    ``instance`` (the state dir) keeps two mullui instances from sharing a master.
    """

    def __init__(
        self,
        name: str,
        destination: str,
        *,
        control_dir: Path,
        ssh_config: Path | None = None,
        options: Mapping[str, str] | None = None,
        remote_env: Mapping[str, str] | None = None,
        persist_s: int = 600,
        connect_timeout_s: int = 10,
        alive_interval_s: int = 15,
        alive_count: int = 3,
        ssh_binary: str = "ssh",
        instance: str = "",
    ) -> None:
        if not destination or destination.startswith("-"):
            raise MulluiError(f"[hosts.{name}] ssh = {destination!r} is not an ssh destination")
        for key in remote_env or {}:
            if not _ENV_NAME.match(key):
                raise MulluiError(f"[hosts.{name}] env: {key!r} is not a variable name")
        self.name = name
        self.destination = destination
        self.ssh_config = ssh_config
        self.options = dict(options or {})
        self.remote_env = dict(remote_env or {})
        self.persist_s = persist_s
        self.connect_timeout_s = connect_timeout_s
        self.alive_interval_s = alive_interval_s
        self.alive_count = alive_count
        self.ssh_binary = ssh_binary
        # The socket name hashes everything that makes a connection different, so two
        # hosts (or the same host with another config) never share a master by accident.
        key = "\0".join(
            [instance, destination, str(ssh_config or ""), repr(sorted(self.options.items()))]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self._control_dir = control_dir
        self.control_path = control_dir / digest
        if len(os.fsencode(self.control_path)) > _SUN_PATH_BUDGET:
            raise MulluiError(
                f"ssh control socket path {self.control_path} is too long for a unix socket:"
                " use a shorter MULLUI_HOME"
            )
        self._lock_path = control_dir / f"{digest}.lock"
        self._lock = threading.Lock()
        self._master_known = False

    # ----------------------------------------------------------------- command lines
    def ssh_argv(self) -> list[str]:
        """``ssh`` and every option, up to (not including) ``--`` and the destination."""
        argv = [self.ssh_binary]
        if self.ssh_config is not None:
            argv += ["-F", str(self.ssh_config)]
        # ssh keeps the first value it sees for an option, so the caller's go first.
        for k, v in self.options.items():
            argv += ["-o", f"{k}={v}"]
        for opt in (
            "BatchMode=yes",  # never prompt: no password or passphrase is ever typed here
            "ControlMaster=auto",
            f"ControlPath={self.control_path}",
            f"ControlPersist={self.persist_s}",
            f"ServerAliveInterval={self.alive_interval_s}",
            f"ServerAliveCountMax={self.alive_count}",
            f"ConnectTimeout={self.connect_timeout_s}",
        ):
            argv += ["-o", opt]
        return argv

    def remote_command(self, argv: Sequence[str], *, cwd: str | None = None) -> str:
        """The one string ssh sends: ``argv`` (optionally run in ``cwd``, with the host's
        env) quoted for a POSIX shell."""
        if not argv:
            raise ValueError("remote argv is empty")
        for a in argv:
            if not isinstance(a, str) or "\0" in a:
                raise ValueError(f"remote argv element {a!r} is not a NUL-free string")
        full = list(argv)
        if cwd is not None:
            full = ["sh", "-c", _IN_DIR_SCRIPT, "sh", cwd, *full]
        if self.remote_env:
            full = ["env", *(f"{k}={v}" for k, v in self.remote_env.items()), *full]
        return shlex.join(full)

    def command_argv(
        self, argv: Sequence[str], *, cwd: str | None = None, tty: bool = False
    ) -> list[str]:
        """The local argv that runs ``argv`` on the host."""
        return [
            *self.ssh_argv(),
            *(["-t"] if tty else []),
            "--",
            self.destination,
            self.remote_command(argv, cwd=cwd),
        ]

    def attach_argv(self, tmux_socket: str, target: str) -> list[str]:
        """Local argv that attaches this terminal to a tmux pane on the host
        (``ssh -t host tmux -L SOCK attach -t TARGET``); the TUI suspends and runs it."""
        return self.command_argv(
            ["tmux", "-L", tmux_socket, "attach-session", "-t", target], tty=True
        )

    # --------------------------------------------------------------------- the master
    def check_master(self) -> bool:
        """True when a ControlMaster for this host is up (``ssh -O check``)."""
        return self.master_pid() is not None

    def master_pid(self) -> int | None:
        """The pid of the running ControlMaster, or None."""
        if not self.control_path.exists():
            return None
        r = subprocess.run(
            [*self.ssh_argv(), "-O", "check", "--", self.destination],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
        m = re.search(rb"pid=(\d+)", r.stderr)
        return int(m.group(1)) if r.returncode == 0 and m else None

    def ensure_master(self, *, timeout: float | None = None) -> None:
        """Open the shared connection unless it is up; raise a one-line error if the host
        cannot be reached or refuses us.

        Serialized per host across threads and processes: with ``ControlMaster=auto``
        two clients racing on a missing socket both become masters, and the loser runs
        unmultiplexed for its whole life.
        """
        with self._lock:
            _private_dir(self._control_dir)
            with open(self._lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if self.check_master():
                    self._master_known = True
                    return
                # A socket left by a master that was killed: -O check failed on it.
                with contextlib.suppress(FileNotFoundError):
                    self.control_path.unlink()
                limit = timeout if timeout is not None else self.connect_timeout_s + 20
                # stderr goes to a file, not a pipe: the master forks into the background
                # and (in OpenSSH before 8.x, on ControlPersist) kept stderr open, so a
                # pipe reader would wait for it to exit.
                with tempfile.TemporaryFile() as err:
                    try:
                        r = subprocess.run(
                            [*self.ssh_argv(), "--", self.destination, "true"],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=err,
                            timeout=limit,
                        )
                    except subprocess.TimeoutExpired:
                        raise HostUnreachable(
                            f"{self.name} ({self.destination}) did not answer within"
                            f" {limit:g}s: check the network and that sshd runs there"
                        ) from None
                    err.seek(0)
                    stderr = err.read()
                if r.returncode != 0:
                    why = _last_line(stderr.decode(errors="replace")) or f"ssh exit {r.returncode}"
                    raise self.ssh_error(r.returncode, stderr, ["true"]) or HostUnreachable(
                        f"cannot connect to {self.name} ({self.destination}): {why}"
                    )
                self._master_known = True

    def _ensure_master_fast(self, timeout: float) -> None:
        # After the first connect, trust the socket file: a stale one (master killed) is
        # noticed and replaced by ssh itself under ControlMaster=auto.
        if self._master_known and self.control_path.exists():
            return
        self.ensure_master(timeout=timeout)

    def close(self) -> None:
        """Close the shared connection (``ssh -O exit``); harmless when none is up."""
        if self.control_path.exists():
            subprocess.run(
                [*self.ssh_argv(), "-O", "exit", "--", self.destination],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
            )
        # Tidy the shared temp dir.  Racing an ensure_master() elsewhere costs at most
        # one unmultiplexed connection, never a wrong result.
        with contextlib.suppress(OSError):
            self._lock_path.unlink()
        self._master_known = False

    def ssh_process_count(self) -> int:
        """How many ssh processes (master and clients) use this host's control socket.

        Linux only (reads /proc); for tests and the benchmark.
        """
        needle = os.fsencode(str(self.control_path))
        count = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue  # exited while we looked
            # The master rewrites its title to "ssh: <ControlPath> [mux]"; clients carry
            # "ControlPath=<path>" in argv.
            if cmdline.startswith(b"ssh") and needle in cmdline:
                count += 1
        return count

    # ---------------------------------------------------------------------- commands
    def run(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` on the host and return its exit code and output.

        The remote command's own failures come back as a non-zero ``returncode``; ssh's
        failures (unreachable, refused, host key) and a missing program raise.
        """
        cmd = self.command_argv(argv, cwd=cwd)
        for attempt in (1, 2):
            self._ensure_master_fast(timeout)
            try:
                r = subprocess.run(
                    cmd,
                    input=input,
                    stdin=subprocess.DEVNULL if input is None else None,
                    capture_output=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise HostUnreachable(
                    f"`{_short(argv)}` on {self.name} took longer than {timeout:g}s:"
                    " is the host overloaded or the network slow?"
                ) from None
            # The master died between our check and this client's request: the session
            # never started, so running the command again cannot run it twice.
            if attempt == 1 and r.returncode == 255 and _MUX_REFUSED.search(r.stderr):
                self._master_known = False
                continue
            if _MUX_FALLBACK.search(r.stderr):
                # It ran over a one-off connection; the next call opens a new master.
                # ssh's notes are not the remote command's stderr.
                self._master_known = False
                r.stderr = _MUX_FALLBACK.sub(b"", r.stderr)
            break
        err = self.ssh_error(r.returncode, r.stderr, argv) or self._lost(r.returncode)
        if err is not None:
            raise err
        return r

    async def stream(
        self, argv: Sequence[str], *, cwd: str | None = None, line_limit: int = 1 << 20
    ) -> AsyncGenerator[str, None]:
        """Run a long-lived ``argv`` on the host and yield its stdout, one line at a time
        (without the newline).

        Ends when the remote command exits 0; raises on ssh failures (a dropped master
        shows up here as :class:`HostUnreachable`) and on a non-zero exit.  Close it with
        ``contextlib.aclosing`` so the ssh client is ended when the consumer stops.
        """
        await asyncio.to_thread(self._ensure_master_fast, self.connect_timeout_s + 20)
        loop = asyncio.get_running_loop()
        # Our own pipes, not asyncio's PIPE: a multiplexed ssh client hands its stdout
        # and stderr fds over to the master, so they outlive the client we terminate,
        # and asyncio would keep the read ends open until the remote command exits too
        # (seen with OpenSSH 9.2).  Owning the transports lets us close them now.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command_argv(argv, cwd=cwd),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
            )
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        stdout = asyncio.StreamReader(limit=line_limit)
        stderr_reader = asyncio.StreamReader()
        out_t, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdout), os.fdopen(out_r, "rb", 0)
        )
        err_t, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stderr_reader), os.fdopen(err_r, "rb", 0)
        )
        stderr = bytearray()

        async def drain() -> None:
            while chunk := await stderr_reader.read(4096):
                stderr.extend(chunk)
                del stderr[:-8192]  # only the tail explains a failure

        drainer = asyncio.create_task(drain())
        try:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:
                    raise MulluiError(
                        f"`{_short(argv)}` on {self.name} printed a line longer"
                        f" than {line_limit} bytes"
                    ) from None
                if not line:
                    break
                yield line.rstrip(b"\n").decode("utf-8", errors="replace")
            rc = await proc.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(drainer), 2)
            err = self.ssh_error(rc, bytes(stderr), argv)
            if err is None:
                err = await asyncio.to_thread(self._lost, rc)
            if err is not None:
                raise err
            if rc != 0:
                tail = _last_line(stderr.decode(errors="replace"))
                raise MulluiError(
                    f"`{_short(argv)}` on {self.name} exited {rc}" + (f": {tail}" if tail else "")
                )
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            drainer.cancel()
            out_t.close()
            err_t.close()

    # ------------------------------------------------------------------------ errors
    def _lost(self, returncode: int) -> HostUnreachable | None:
        """A multiplexed client whose master died exits 255 and prints nothing (OpenSSH
        9.2), exactly like a remote command that exits 255 itself; the master being gone
        tells the two apart."""
        if returncode != 255 or self.check_master():
            return None
        self._master_known = False
        return HostUnreachable(
            f"{self.name} is unreachable (connection lost): mullui reconnects by itself;"
            " check the network if it persists"
        )

    def ssh_error(self, returncode: int, stderr: bytes, argv: Sequence[str]) -> MulluiError | None:
        """The one-line error for a failed ssh invocation, or None when the exit code is
        the remote command's own business."""
        text = stderr.decode("utf-8", errors="replace").replace("\r", "")
        host = f"{self.name} ({self.destination})" if self.name != self.destination else self.name
        if returncode == 255:
            if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
                return HostAuthError(
                    f"host key for {host} changed: check ~/.ssh/known_hosts"
                    " (if the host was reinstalled, `ssh-keygen -R HOST` then connect once)"
                )
            if "Host key verification failed" in text or "host key is known" in text:
                return HostAuthError(
                    f"host key for {host} is unknown: check ~/.ssh/known_hosts"
                    f" (connect once with `ssh {self.destination}` to accept it)"
                )
            m = re.search(r"Permission denied \(([^)]*)\)", text)
            if m:
                return HostAuthError(
                    f"permission denied ({m.group(1)}) for {self.destination}:"
                    " add your key with ssh-copy-id or ssh-agent"
                )
            for pattern in (
                r"Could not resolve hostname[^\n]*",
                r"Connection refused",
                r"Connection timed out[^\n]*",
                r"No route to host",
                r"Network is unreachable",
                r"Connection reset[^\n]*",
                r"Connection closed by[^\n]*",
                r"Shared connection to [^\n]* closed",
                r"Connection to [^\n]* closed[^\n]*",
                r"Timeout, server [^\n]* not responding",
                r"mux_client_[^\n]*",
                r"Broken pipe",
                r"kex_exchange_identification[^\n]*",
            ):
                m = re.search(pattern, text)
                if m:
                    return HostUnreachable(
                        f"{host} is unreachable ({m.group(0).rstrip('.')}):"
                        " check the network and that sshd runs there"
                    )
        if returncode == 127 and argv:
            program = argv[0]
            if program in text and ("not found" in text or "No such file" in text):
                if program == "mullui":
                    return RemoteCommandMissing(
                        f"mullui is not installed on {self.name}: pip install mullui there"
                        f" (or set PATH in [hosts.{self.name}] env)"
                    )
                return RemoteCommandMissing(
                    f"{program} is not installed on {self.name}: install it there"
                    f" (or set PATH in [hosts.{self.name}] env)"
                )
        return None
