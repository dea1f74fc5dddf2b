"""tmux: one window per agent on mullui's private server (``tmux -L SOCKET``).

Facts in, facts out: this module knows tmux, not agents' records.  The lead stores the
target :meth:`Tmux.launch` returns (a pane id, ``%N``) and maps agents back to panes with
:meth:`Tmux.panes`, which reads the ``@mullui_agent`` window option — pane ids restart at
``%0`` when the server restarts, so a stored target is only trusted when ``panes()`` agrees.

Why raw ``tmux`` argv rather than libtmux's object model: every call here needs a timeout
(a wedged server must not hang ``mullui``), several commands are batched into one client
round trip with ``;`` separators, and libtmux's objects re-query the server on attribute
access.  libtmux's pytest plugin still provides the test servers.

tmux quirks this module works around (seen on tmux 3.3a):

- A client argv element that *ends* with ``;`` ends the command (``cmd_parse_from_arguments``),
  so user text like ``"fix it;"`` would split the command.  :func:`_arg` escapes it.
- Window names, ``-c`` directories, ``run-shell`` and ``pipe-pane`` commands are expanded
  as formats: a literal ``#`` must be written ``##``.
- One client command is limited to about 16 KB (``command too long``): the agent's argv
  goes through a file that the pane's wrapper reads (see ``_WRAPPER``).
- ``alert-silence`` fires once per window until its alert flag is cleared; with the flag
  cleared it fires again every N seconds of continued silence.  See :meth:`Tmux.launch`.
- The server sometimes loses a pane's SIGCHLD: no status, no ``pane-died``.  See
  ``_WRAPPER``.
- ``display-message -t GONE`` prints an empty line with status 0; ``list-panes -t``
  is used where a missing pane must be an error.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal as signal_module
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mullui.errors import MulluiError
from mullui.runtime import processes

MIN_VERSION = (3, 2)
# tmux's MAX_IMSGSIZE is 16384 bytes for the whole packed argv; keep a margin.
_MAX_COMMAND_BYTES = 16000
_SEP = "\x1f"  # field separator for -F formats; never in ids, options we set, or names

# Command separator for batched client calls.  A real ";" argument would be user text
# (escaped by _arg); NUL cannot occur in argv, so this sentinel cannot collide.
_NEXT = "\0;"

# "Permission denied" on the socket is a real error (another user's server), not absence.
_NO_SERVER = re.compile(
    r"no server running|server exited unexpectedly"
    r"|error connecting to .*\((No such file or directory|Connection refused)\)"
)


@dataclass(frozen=True)
class Stopped:
    """How :meth:`Tmux.stop` went."""

    exited: bool  # the agent ended by itself after C-c (its exit hook ran)
    survivors: list[int]  # pids of its tree still alive after SIGKILL (normally none)


@dataclass(frozen=True)
class PaneInfo:
    """One agent's pane as tmux sees it right now."""

    agent_id: str
    target: str  # pane id, ``%N`` — what launch() returned
    pane_id: str
    window_id: str
    session: str
    dead: bool
    dead_status: int | None  # exit status once dead (None while alive or if killed)
    dead_signal: int | None  # the signal that killed it, when one did
    pid: int | None

    @property
    def exit_code(self) -> int | None:
        """As the exit hook reports it: the status, or 128+N for a death by signal N.

        None while alive — and for a dead pane whose status tmux has not collected yet
        (its SIGCHLD was lost; :meth:`Tmux.panes` has just nudged it and the pane-died
        hook follows), so wait for the hook rather than record an unknown exit."""
        if not self.dead:
            return None
        if self.dead_signal is not None:
            return 128 + self.dead_signal
        return self.dead_status


def _arg(s: str) -> str:
    """Protect one argv element from tmux's client-side ``;`` command splitting.

    tmux strips a trailing ``;`` (ending the command) unless it follows a backslash, in
    which case the backslash becomes the ``;``.  So ``s[:-1] + "\\;"`` arrives as ``s``.
    """
    if s.endswith(";"):
        return s[:-1] + "\\;"
    return s


def _fmt_literal(s: str) -> str:
    """Text that tmux expands as a format but must arrive unchanged."""
    return s.replace("#", "##")


def _tmux_quote(s: str) -> str:
    """Quote ``s`` as one word for tmux's command parser (hook bodies).

    Inside single quotes tmux's parser takes everything literally (no ``$``/``~``
    expansion); a quote is closed, escaped and reopened as in sh.
    """
    return "'" + s.replace("'", "'\\''") + "'"


def _run_shell(argv: Sequence[str], suffix: str = "") -> str:
    """A ``run-shell -b`` command (tmux command syntax) that runs ``argv`` + ``suffix``.

    ``argv`` passes three layers: sh (``shlex.join``), tmux formats (``#`` doubled) and
    tmux's parser (:func:`_tmux_quote`).  ``suffix`` is raw format text, e.g.
    ``#{pane_dead_status}``.  ``-b``: a hook without it blocks tmux's command queue — the
    whole server — until the command ends.
    """
    return "run-shell -b " + _tmux_quote(_fmt_literal(shlex.join(argv)) + suffix)


class Tmux:
    """mullui's tmux server, addressed by socket name (``tmux -L NAME``)."""

    def __init__(
        self,
        socket_name: str,
        *,
        config_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``config_file`` is read when this call starts the server (``-f``); None keeps
        the user's ``~/.tmux.conf`` so attaching feels like their tmux. Tests pass
        ``/dev/null``."""
        self.socket_name = socket_name
        self.config_file = config_file
        self.timeout = timeout
        self._bin = shutil.which("tmux")

    # -- plumbing ---------------------------------------------------------------------

    def base_argv(self) -> list[str]:
        """``tmux -L SOCKET [-f CONFIG]``: the start of every command to our server."""
        if self._bin is None:
            raise MulluiError("tmux not found: install tmux >= 3.2 (apt-get install tmux)")
        base = [self._bin, "-L", self.socket_name]
        if self.config_file is not None:
            base += ["-f", str(self.config_file)]
        return base

    def _exec(
        self, args: Sequence[str], *, stdin: str | None = None, inside: bool = False
    ) -> subprocess.CompletedProcess[str]:
        # Every element is escaped here, once; only _NEXT separates commands.
        argv = self.base_argv() + [";" if a == _NEXT else _arg(a) for a in args]
        size = sum(len(a.encode()) + 1 for a in argv)
        if size > _MAX_COMMAND_BYTES:
            raise MulluiError(
                f"command too long for tmux ({size} bytes, limit about 16 KB): "
                "put long task text in a file and refer to it"
            )
        try:
            return subprocess.run(
                argv,
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=self.timeout,
                # $TMUX names the calling pane's client; only switch-client wants it.
                env=None if inside else _client_env(),
            )
        except subprocess.TimeoutExpired as e:
            raise MulluiError(
                f"tmux did not answer within {self.timeout:.0f}s (socket {self.socket_name}):"
                f" `tmux -L {self.socket_name} kill-server` restarts it (agents in it end)"
            ) from e

    def _cmd(self, *args: str, stdin: str | None = None, inside: bool = False) -> str:
        """Run one tmux client command (``_NEXT``-separated sequences allowed); stdout."""
        r = self._exec(args, stdin=stdin, inside=inside)
        if r.returncode != 0:
            err = " ".join(r.stderr.split()) or f"exit status {r.returncode}"
            if _NO_SERVER.search(err):
                raise _NoServer(
                    f"mullui's tmux server is not running (tmux -L {self.socket_name}): "
                    f"its agents have ended; `mullui ls` shows them ({err})"
                )
            raise MulluiError(f"tmux {args[0]}: {err}")
        return r.stdout

    # -- server -----------------------------------------------------------------------

    def check(self) -> None:
        """MulluiError unless tmux >= 3.2 is installed."""
        base = self.base_argv()
        r = subprocess.run(
            [base[0], "-V"], capture_output=True, text=True, timeout=self.timeout, check=False
        )
        version = r.stdout.strip()
        m = re.search(r"(\d+)\.(\d+)", version)
        # "tmux master" / "tmux next-3.5": development builds are newer than any release.
        if m is None:
            if "master" in version or "next" in version:
                return
            raise MulluiError(f"cannot read the tmux version from {version!r}: need >= 3.2")
        if (int(m.group(1)), int(m.group(2))) < MIN_VERSION:
            raise MulluiError(f"{version} is too old: install tmux >= 3.2")

    def server_alive(self) -> bool:
        """True when mullui's tmux server is running."""
        try:
            self._cmd("list-sessions", "-F", "#{session_id}")
        except _NoServer:
            return False
        return True

    def kill_server(self) -> None:
        """End the server and every agent window in it; no error when none runs.

        Returns once the server is gone: ``kill-server`` answers before the server has
        exited, and a client connecting meanwhile gets "server exited unexpectedly"."""
        try:
            path = self._cmd("display-message", "-p", "#{socket_path}").strip()
            self._cmd("kill-server")
        except _NoServer:
            return
        # Gone = its socket refuses connections.  (Not the pid: in a container whose
        # PID 1 does not reap, the exited server stays a zombie.)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                try:
                    sock.connect(path)
                except OSError:
                    return
            time.sleep(0.005)

    def ensure_session(self, name: str, cwd: Path) -> None:
        """Create session ``name`` (detached, cwd ``cwd``) unless it exists.

        Its first window is a plain shell in ``cwd`` named ``mullui``: the session lives
        on when every agent window is gone, and attaching users land somewhere useful.
        Concurrent callers race benignly: tmux refuses the second ``new-session``.
        """
        # The user's tmux.conf is loaded (attaching should feel like their tmux), but two
        # of its possible settings would silently end our detached sessions.
        args = [
            "new-session", "-d", "-s", name, "-n", "mullui", "-c", _fmt_literal(str(cwd)),
            _NEXT, "set-option", "-t", f"={name}:", "destroy-unattached", "off",
            _NEXT, "set-option", "-s", "exit-unattached", "off",
        ]  # fmt: skip
        for attempt in range(3):
            try:
                self._cmd(*args)
                return
            except _NoServer:
                # Connected while a previous server was exiting (kill-server answers
                # first, exits after): the next attempt starts a fresh server.
                if attempt == 2:
                    raise
                time.sleep(0.05)
            except MulluiError as e:
                if "duplicate session" not in e.message:
                    raise
                return

    # -- agents -----------------------------------------------------------------------

    def launch(
        self,
        *,
        session: str,
        window_name: str,
        agent_id: str,
        cwd: Path,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        on_exit: list[str],
        silence_seconds: int | None = None,
        on_silence: list[str] | None = None,
        on_activity: list[str] | None = None,
    ) -> str:
        """Start ``argv`` in a new window of ``session``; return its pane id (``%N``).

        - ``argv`` is exec'd directly (never a shell), read from a file (any size up to
          Linux's own limits); ``env`` is added with ``-e``, and ``MULLUI_AGENT_ID`` is
          set to ``agent_id`` (:meth:`kill` finds the agent's processes by it).
        - The command is gated: it waits on a tmux ``wait-for`` channel that is signalled
          only after ``pipe-pane`` (log), ``remain-on-exit`` and the hooks are in place,
          so no early output and no early exit is missed.  (tmux remembers a signal sent
          before anyone waits, so the order cannot deadlock.)
        - When the process ends, tmux's ``pane-died`` hook runs ``on_exit`` plus
          ``--status N``: the exit status, or 128+N when signal N killed it.
        - With ``silence_seconds``: after that long without output ``on_silence`` runs,
          once per quiet spell; when output resumes ``on_activity`` runs (if given).
        - ``log_path`` receives the pane's raw output (escape sequences included),
          appended by a ``cat`` owned by the tmux server, so it outlives mullui.
        """
        if not argv:
            raise ValueError("launch: empty argv")
        for key in env:
            if not key or "=" in key:
                raise ValueError(f"launch: bad environment variable name {key!r}")
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MulluiError(f"cannot create the log directory {log_path.parent}: {e}") from e
        _check_argv(argv, env)
        channel = f"mullui-gate-{agent_id}-{secrets.token_hex(4)}"
        gate = _WRAPPER.replace("TMUX_BIN", shlex.quote(self._bin or "tmux")).replace(
            "CHANNEL", channel
        )
        # The argv travels in a file the wrapper sources, never on tmux's command line
        # (one client message is limited to 16 KB; tasks are specs of any size).  So do
        # long environment values ({prev.last_message} as $MULLUI_PREV_LAST_MESSAGE).
        big_env = {
            k: v
            for k, v in env.items()
            if len(v) > _ENV_INLINE_MAX and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)
        }
        argv_file = log_path.parent / f".{agent_id}-{secrets.token_hex(4)}.argv"
        try:
            fd = os.open(argv_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
                for key, value in big_env.items():
                    fh.write(f"export {key}={shlex.quote(value)}\n")
                fh.write("set -- " + " ".join(shlex.quote(a) for a in argv) + "\n")
        except OSError as e:
            argv_file.unlink(missing_ok=True)
            raise MulluiError(f"cannot write the agent's command to {argv_file}: {e}") from e
        new_window = [
            "new-window", "-d", "-P", "-F", f"#{{window_id}}{_SEP}#{{pane_id}}",
            "-t", f"={session}:", "-n", _fmt_literal(window_name),
            "-c", _fmt_literal(str(cwd)),
        ]  # fmt: skip
        # The tag by which kill() finds every process of the agent, however detached.
        for key, value in {**env, "MULLUI_AGENT_ID": agent_id}.items():
            if key not in big_env:
                new_window += ["-e", f"{key}={value}"]
        # Two or more arguments after the flags: tmux >= 3.0 execvp()s them, no shell
        # parses them; the wrapper script is ours and reads the agent's argv into "$@".
        new_window += ["sh", "-c", gate, "mullui-agent", str(argv_file)]
        try:
            out = self._cmd(*new_window).strip()
        except MulluiError:
            argv_file.unlink(missing_ok=True)
            raise
        window_id, _, pane_id = out.partition(_SEP)
        if not window_id.startswith("@") or not pane_id.startswith("%"):
            raise MulluiError(f"tmux new-window printed {out!r}, expected window and pane ids")

        # One flag for both endings, as shells report them: a death by signal N is 128+N.
        status = "--status #{?pane_dead_signal,#{e|+:128,#{pane_dead_signal}},#{pane_dead_status}}"
        setup: list[list[str]] = [
            ["set-option", "-w", "-t", window_id, "remain-on-exit", "on"],
            ["set-option", "-w", "-t", window_id, "allow-rename", "off"],
            ["set-option", "-w", "-t", window_id, "automatic-rename", "off"],
            ["set-option", "-w", "-t", window_id, "@mullui_agent", agent_id],
            ["set-hook", "-w", "-t", window_id, "pane-died", _run_shell(on_exit, " " + status)],
        ]
        if silence_seconds:
            # tmux re-fires alert-silence every N s once the alert flag is cleared, and
            # never again while it is set (the session is detached).  So a small state
            # machine: on silence, report, stop watching silence and watch activity; on
            # activity, the reverse.  `kill-session -C` clears the flags.
            silent = [
                "set-option -w monitor-silence 0",
                "set-option -w monitor-activity on",
                "kill-session -C",
            ]
            active = [
                "set-option -w monitor-activity off",
                f"set-option -w monitor-silence {int(silence_seconds)}",
                "kill-session -C",
            ]
            if on_silence:
                silent.insert(0, _run_shell(on_silence))
            if on_activity:
                active.insert(0, _run_shell(on_activity))
            setup += [
                ["set-option", "-w", "-t", window_id, "monitor-silence", str(silence_seconds)],
                ["set-option", "-w", "-t", window_id, "visual-silence", "off"],
                ["set-option", "-w", "-t", window_id, "visual-activity", "off"],
                ["set-hook", "-w", "-t", window_id, "alert-silence", " ; ".join(silent)],
                ["set-hook", "-w", "-t", window_id, "alert-activity", " ; ".join(active)],
            ]
        setup += [
            [
                "pipe-pane", "-o", "-t", pane_id,
                _fmt_literal(f"exec cat >> {shlex.quote(str(log_path))}"),
            ],
            ["wait-for", "-S", channel],
        ]  # fmt: skip
        try:
            self._cmd(*_sequence(setup))
        except MulluiError:
            # Nothing half-made: the gated command has not started yet.
            self.kill(pane_id)
            argv_file.unlink(missing_ok=True)
            raise
        return pane_id

    def send(self, target: str, text: str, enter_delay: float = 0.0) -> None:
        """Type ``text`` into the pane, then Enter (``enter_delay`` seconds later, for a
        program that takes a fast Enter after text as part of a paste).

        One line goes as literal keys (``send-keys -l``).  Multi-line or long text is
        pasted through a tmux buffer loaded from stdin (no argv size limit) with
        ``paste-buffer -p``: bracketed paste when the program asked for it, so agent
        TUIs take newlines as text rather than as Enter.  Like a terminal's paste, LF
        is delivered as CR (a cooked tty turns it back into LF).
        """
        enter = ["send-keys", "-t", target, "Enter"]
        if "\n" not in text and len(text.encode()) < 4000:
            typed = ["send-keys", "-t", target, "-l", "--", text]
            if enter_delay <= 0:
                self._cmd(*typed, _NEXT, *enter)
                return
            self._cmd(*typed)
        else:
            buf = f"mullui-send-{secrets.token_hex(4)}"
            pasted = [
                "load-buffer", "-b", buf, "-", _NEXT,
                "paste-buffer", "-d", "-p", "-b", buf, "-t", target,
            ]  # fmt: skip
            if enter_delay <= 0:
                self._cmd(*pasted, _NEXT, *enter, stdin=text)
                return
            self._cmd(*pasted, stdin=text)
        time.sleep(enter_delay)
        self._cmd(*enter)

    def type(self, target: str, text: str) -> None:
        """Type one line of ``text`` into the pane as literal keys, no Enter."""
        self._cmd("send-keys", "-t", target, "-l", "--", text)

    def keys(self, target: str, *keys: str) -> None:
        """Press ``keys`` (tmux key names: ``Escape``, ``Enter``, ``1``) in the pane."""
        self._cmd("send-keys", "-t", target, "--", *keys)

    def screen(self, target: str) -> str:
        """The text the pane shows now (its visible screen, no scrollback)."""
        return self._cmd("capture-pane", "-p", "-J", "-t", target)

    def attach(self, target: str) -> None:
        """Show the agent's pane to the user; returns when they come back.

        Inside a tmux client of this same server: ``switch-client`` (returns at once).
        Otherwise ``tmux attach`` runs in the foreground until the user detaches.
        """
        # Checked first: once attach runs, tmux owns the terminal and its errors.
        where = self._pane_format(target, "#{socket_path}")
        inside = os.environ.get("TMUX", "")
        if inside and inside.split(",")[0] == where:
            self._cmd("switch-client", "-t", target, inside=True)
            return
        # attach-session -t PANE selects that pane's window and pane first.  $TMUX is
        # dropped so tmux nests inside the user's own (other) tmux instead of refusing.
        r = subprocess.run(self.attach_argv(target), env=_client_env(), check=False)
        if r.returncode != 0:
            raise MulluiError(f"tmux attach to {target} failed (exit status {r.returncode})")

    def socket_path(self) -> str:
        """The server's socket path (what ``$TMUX`` starts with inside its panes); empty
        when no server runs."""
        try:
            return self._cmd("display-message", "-p", "#{socket_path}").strip()
        except _NoServer:
            return ""

    _socket_path = socket_path  # the name workspace.py used first

    def attach_argv(self, target: str) -> list[str]:
        """The argv :meth:`attach` runs outside tmux (for a caller that must run it in
        the foreground itself, e.g. after suspending a TUI)."""
        return [*self.base_argv(), "attach-session", "-t", target]

    def stop(self, target: str, grace: float = 3.0) -> Stopped:
        """Ask the agent to stop (C-c, twice: Claude Code wants two), then end its window
        and its whole process tree (see :meth:`kill`).

        ``exited`` is True when the process ended by itself within ``grace`` seconds —
        its ``pane-died`` hook then reported the exit.  Otherwise the window is killed
        and no hook runs (tmux only fires ``pane-died`` for a process that exits), so the
        caller records the stop itself.  Either way the window is gone afterwards; the
        log file stays.
        """
        exited = False
        try:
            if self._pane_dead(target):
                return Stopped(True, self.kill(target, grace=grace))
            self._cmd("send-keys", "-t", target, "C-c")
            deadline = time.monotonic() + grace
            second = time.monotonic() + min(0.5, grace / 2)
            sent_second = False
            while time.monotonic() < deadline:
                if self._pane_dead(target):
                    exited = True
                    break
                if not sent_second and time.monotonic() >= second:
                    self._cmd("send-keys", "-t", target, "C-c")
                    sent_second = True
                time.sleep(0.05)
        except (MulluiError, _NoServer):
            pass  # the window is already gone, or the server is
        return Stopped(exited, self.kill(target, grace=grace))

    def kill(self, target: str, grace: float = 3.0) -> list[int]:
        """Kill the agent's window and end its whole process tree: its session and
        process group, their descendants, and every process that inherited its
        ``MULLUI_AGENT_ID`` (``nohup``, ``setsid``, daemons) get SIGTERM, then SIGKILL
        after ``grace`` seconds.  Returns the pids that survived even SIGKILL (empty
        normally); no error if the window is gone."""
        root: int | None = None
        tag: str | None = None
        server: int | None = None
        try:
            info = self._pane_format(
                target, f"#{{pane_dead}}{_SEP}#{{pane_pid}}{_SEP}#{{@mullui_agent}}{_SEP}#{{pid}}"
            ).split(_SEP)
            if len(info) == 4:
                dead, pid, agent, srv = info
                root = _int(pid) if dead != "1" else None
                tag = f"MULLUI_AGENT_ID={agent}" if agent else None
                server = _int(srv)
        except MulluiError:
            pass  # gone, or no server: whatever carries the tag is still ended below
        try:
            self._cmd("kill-window", "-t", target)
        except _NoServer:
            pass
        except MulluiError as e:
            if "can't find" not in e.message:
                raise
        if root is None and tag is None:
            return []
        return processes.end(root, tag, grace=grace, keep=[server] if server else [])

    def _pane_dead(self, target: str) -> bool:
        return self._pane_format(target, "#{pane_dead}") == "1"

    def _pane_format(self, target: str, fmt: str) -> str:
        """``fmt`` expanded for the target pane; MulluiError when it is gone.

        Not ``display-message -t``: tmux 3.3a prints an empty line, status 0, for a
        target that does not exist."""
        out = self._cmd("list-panes", "-t", target, "-F", f"#{{pane_id}}{_SEP}{fmt}")
        lines = [ln.split(_SEP, 1) for ln in out.splitlines() if _SEP in ln]
        for pane, value in lines:
            if pane == target:
                return value
        if lines and not target.startswith("%"):
            return lines[0][1]
        raise MulluiError(f"tmux: can't find pane: {target}")

    def panes(self) -> dict[str, PaneInfo] | None:
        """Every agent pane on the server, by agent id, in one ``list-panes -a`` call.

        None when no server is running (not an error: nothing runs).  Windows without
        ``@mullui_agent`` (the placeholder, the user's own) are left out.
        """
        fields = [
            "#{@mullui_agent}", "#{pane_id}", "#{window_id}", "#{pane_dead}",
            "#{pane_dead_status}", "#{pane_dead_signal}", "#{pane_pid}", "#{pid}",
            "#{session_name}",
        ]  # fmt: skip
        try:
            out = self._cmd("list-panes", "-a", "-F", _SEP.join(fields))
        except _NoServer:
            return None
        result: dict[str, PaneInfo] = {}
        lost: set[int] = set()
        for line in out.splitlines():
            parts = line.split(_SEP, len(fields) - 1)
            if len(parts) != len(fields) or not parts[0]:
                continue
            agent, pane, window, dead, status, signal, pid, server, session = parts
            if dead == "1" and not status and not signal and server.isdigit():
                lost.add(int(server))
            result[agent] = PaneInfo(
                agent_id=agent,
                target=pane,
                pane_id=pane,
                window_id=window,
                session=session,
                dead=dead == "1",
                dead_status=_int(status) if dead == "1" else None,
                dead_signal=_int(signal) if dead == "1" else None,
                pid=_int(pid),
            )
        for server_pid in lost:
            # Dead without a status: tmux lost the pane's SIGCHLD (see _WRAPPER).  A
            # SIGCHLD makes it reap the zombie and fire pane-died; the wrapper already
            # tried, this is the safety net for a caller that polls.
            try:
                os.kill(server_pid, signal_module.SIGCHLD)
            except OSError:
                pass
        return result

    def capture(self, target: str, lines: int = 50) -> str:
        """The last ``lines`` lines of the pane's screen and history, wrapped lines joined."""
        return self._cmd("capture-pane", "-p", "-J", "-t", target, "-S", str(-int(lines)))


class _NoServer(MulluiError):
    """No tmux server is listening on the socket."""


# The pane's process: a fixed sh script; the agent's argv arrives as "$@", never parsed.
#
# 1. Gate: wait until launch() has attached pipe-pane and the hooks.  $TMUX is
#    "socket_path,server_pid,session" in every pane; tmux's path is absolute because the
#    caller's env may replace PATH.
# 2. Read the agent's argv from the file launch() wrote (``set -- 'arg' ...``, each word
#    quoted by shlex; long environment values as ``export K='v'``) and delete it.  Then
#    unset TMUX and TMUX_PANE: an agent's plain ``tmux send-keys`` must not reach
#    mullui's server and the other agents' panes (it still can by naming the socket: the
#    same user; docs/security.md).
# 3. Run the agent as a child, not exec: tmux 3.3a (and 3.4; fixed in 3.5) sometimes loses
#    the SIGCHLD of a pane's process — the pane shows dead with no status, stays a zombie,
#    and pane-died never fires (measured here: 4-8 of 40 quick exits).  A SIGCHLD sent to
#    the server makes it reap and fire the hook, so after the agent ends a detached helper
#    (immune to the hangup of the closing pty) nudges the server three times.
# 4. Leave with the agent's status; a death by a common signal is re-raised so tmux
#    reports it as a signal (#{pane_dead_signal}).  The wrapper ignores C-c while the
#    agent runs (a caught signal resets to default in the child), so C-c reaches the
#    agent and the wrapper stays to report.
_WRAPPER = """\
TMUX_BIN -S "${TMUX%%,*}" wait-for CHANNEL || exit 125
f=$1; . "$f" || exit 126; rm -f "$f"
srv=${TMUX#*,}; srv=${srv%%,*}
unset TMUX TMUX_PANE
trap : INT QUIT
"$@"
rc=$?
(trap '' HUP; for d in 0.05 0.3 1.5; do sleep $d; kill -CHLD "$srv"; done) \
    </dev/null >/dev/null 2>&1 &
if [ "$rc" -gt 128 ]; then
    case $((rc - 128)) in 1|2|9|13|14|15) trap - INT QUIT; kill -$((rc - 128)) $$;; esac
fi
exit "$rc"
"""


#: environment values longer than this go through the argv file, not tmux's command line
_ENV_INLINE_MAX = 1024

# Linux's limits on what execve() passes: MAX_ARG_STRLEN for one argument, and about a
# quarter of the stack limit (2 MB by default) for argv and environment together.
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_ARGV_BYTES = 2 * 1024 * 1024 - 64 * 1024


def _check_argv(argv: Sequence[str], env: dict[str, str]) -> None:
    """Refuse, in one line, an argv no program could receive (execve would fail with
    E2BIG in the pane, where nobody reads it)."""
    for a in argv:
        n = len(a.encode(errors="surrogateescape"))
        if n > MAX_ARG_BYTES:
            raise MulluiError(
                f"one argument of the agent's command is {n} bytes; Linux passes at most "
                f"{MAX_ARG_BYTES + 1} bytes in one program argument: put the text in a file "
                "in the repository and ask the agent to read it"
            )
    total = sum(len(a.encode(errors="surrogateescape")) + 1 for a in argv)
    total += sum(len(k) + len(v.encode(errors="surrogateescape")) + 2 for k, v in env.items())
    total += sum(len(k) + len(v) + 2 for k, v in os.environ.items())
    if total > MAX_ARGV_BYTES:
        raise MulluiError(
            f"the agent's command and environment are {total} bytes, over the ~2 MB Linux "
            "passes to a program: put the text in a file in the repository and refer to it"
        )


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def _sequence(commands: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, c in enumerate(commands):
        if i:
            out.append(_NEXT)
        out += c
    return out


def _client_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)
    return env
