"""``mullui watch`` and its helpers: the headless supervisor process (started by itself:
:mod:`mullui.loop`), ``--status`` and ``--install``, what a notification button does with
no TUI open, and the ``mullui events`` feed that a remote host's mullui streams over SSH.

The loop itself is :class:`mullui.supervisor.Supervisor`; this module runs it as a
process and wires the notifier to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mullui import autostart, presence
from mullui import journal as changes
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.files import atomic_write_json, read_json
from mullui.loop import (
    WATCH_ENV,
    SupervisorLock,
    ensure_running,
    keeps_a_supervisor,
    needs_supervisor,
    remote_agents_live,
    watch_argv,
    watch_env,
    work_left,
)
from mullui.model import State, parse_iso, utcnow
from mullui.operations import lifecycle
from mullui.placeholders import expand_argv
from mullui.supervisor import Supervisor


# ---- `mullui watch` -----------------------------------------------------------------------------
def make_notifier(ctx: Context, on_action: Callable[[str, str], None], **kw: Any) -> Any | None:
    """The notifier a supervisor owns: mode from ``MULLUI_NOTIFY`` or ``[notify] mode``,
    policy from ``[notify]``; ``kw`` goes to :class:`mullui.notify.Notifier` (the TUI
    passes ``toast`` and ``is_focused``, ``mullui watch`` its stdout as ``terminal``).
    Call ``await notifier.start()`` before the first notice."""
    from mullui import notify  # D-Bus, ~70 ms: paid by a supervisor, not by every command

    mode = notify.notify_mode(configured=ctx.config.notify.get("mode"))
    cfg = notify.NotifyConfig.from_table(ctx.config.notify)
    return notify.Notifier(mode, config=cfg, on_action=on_action, **kw)


def popup_action(ctx: Context, agent_id: str, action: str) -> None:
    """A popup of the watch was clicked ("select": the popup itself) or one of its buttons
    ("attach", "snooze").

    With a TUI open, a click on the popup selects the agent's row in every open TUI, and
    "Attach" (unless ``[notify] attach_command`` says how to open a terminal) selects it
    and attaches in the TUI seen last: the TUI acts on a request file it follows
    (:mod:`mullui.presence`).  "Snooze" and everything with no TUI open is done here
    (:func:`headless_action`)."""
    if action != "snooze":
        tuis = presence.live(ctx.paths.state_dir)
        if tuis and (action == "select" or not ctx.config.notify.get("attach_command")):
            # The TUI seen last: focused now, else the one whose focus changed last.
            best = sorted(tuis, key=lambda p: not p.focused)[0]
            targets = tuis if action == "select" else [best]
            try:
                for t in targets:
                    presence.request_click(ctx.paths.state_dir, t.pid, agent_id, action)
                return
            except MulluiError as e:
                print(f"mullui: notification click for {agent_id}: {e}", file=sys.stderr)
    headless_action(ctx, agent_id, action)


def headless_action(ctx: Context, agent_id: str, action: str) -> None:
    """A notification button clicked with no TUI open: "snooze" snoozes the agent for
    30 minutes; "attach" and a click on the popup itself ("select": there is no TUI
    selection to move) run ``[notify] attach_command`` ({id} {name} {tmux_target}
    {socket} filled in), else switch an attached tmux client of our server to the agent."""
    try:
        if action == "snooze":
            lifecycle.snooze(ctx, agent_id, minutes=30)
            return
        cmd = ctx.config.notify.get("attach_command")
        a = ctx.get(agent_id)
        if cmd:
            values = {
                "id": a.id,
                "name": a.name,
                "tmux_target": a.tmux_target or "",
                "socket": ctx.socket,
            }
            # A remote agent's tmux_target comes from that host: in an `sh -c` script it
            # is "$MULLUI_TMUX_TARGET", never spliced (placeholders.expand_argv).
            argv, env = expand_argv(cmd, values, "[notify] attach_command")
            # Its own session: the terminal it opens must outlive a watch that hands over.
            subprocess.Popen(
                argv,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
            )
        elif a.tmux_target:
            # A client attached to our server (a terminal left open): bring the agent up.
            subprocess.run(
                [*ctx.tmux.base_argv(), "switch-client", "-t", a.tmux_target],
                capture_output=True,
                timeout=5,
                check=False,
            )
    except (MulluiError, OSError, subprocess.SubprocessError) as e:
        print(f"mullui: notification action {action} for {agent_id}: {e}", file=sys.stderr)


def attached_panes(ctx: Context) -> frozenset[str]:
    """Pane ids that a client of mullui's tmux server shows right now (``%N``).

    One ``list-clients``: in a client's context ``#{pane_id}`` is the active pane of its
    current window (tmux 3.3a; control-mode clients count too)."""
    try:
        r = subprocess.run(
            [*ctx.tmux.base_argv(), "list-clients", "-F", "#{pane_id}"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (MulluiError, OSError, subprocess.SubprocessError):
        return frozenset()
    if r.returncode != 0:  # no server: nobody is looking
        return frozenset()
    return frozenset(line.strip() for line in r.stdout.splitlines() if line.strip())


def tui_focused(ctx: Context) -> Callable[[], bool]:
    """``in_app`` for a supervisor: an open TUI whose terminal has focus shows the news in
    its inbox and toast, so no desktop popup (read at each decision: no polling)."""
    state_dir = ctx.paths.state_dir
    return lambda: presence.tui_focused(state_dir)


def attached_focus(ctx: Context) -> Callable[[str], bool]:
    """``is_focused`` for a supervisor with no TUI: an agent whose pane the human is
    looking at (attached in a terminal) needs no popup."""

    def is_focused(agent_id: str) -> bool:
        try:
            a = ctx.store.get(agent_id)
        except MulluiError:
            return False
        if a is None or a.host is not None or not a.tmux_target:
            return False
        return a.tmux_target in attached_panes(ctx)

    return is_focused


#: How long a stopping supervisor waits for popups already decided on (the cursor already
#: counts them as told).  A Notify takes milliseconds; the bound keeps a stop prompt even
#: with a hung notification server.
DRAIN_S = 1.0


async def finish_notifications(
    sup: Supervisor | None, notifier: Any | None, timeout: float = DRAIN_S
) -> None:
    """Deliver the notices a stopping supervisor already handed to its notifier, then
    close the notifier.  The cursor counts them as told, so dropping them here would
    lose them for good (a handover to the TUI, ``--once``, a TUI quitting)."""
    if sup is not None:
        await _drain(sup, timeout)
    if notifier is not None:
        flush = getattr(notifier, "flush", None)  # a held burst summary, when supported
        if flush is not None:
            with contextlib.suppress(Exception):
                await flush()
        await notifier.close()


#: How long a watch that started by itself stays once nothing needs it (seconds):
#: ``MULLUI_WATCH_IDLE_S`` overrides.  Long enough that a script spawning agents one by
#: one does not restart it between them.
IDLE_EXIT_S = 10.0
#: What ``mullui watch --status`` reads: who runs, since when, how it notifies.
STATUS_NAME = "supervisor.json"


def idle_exit_s() -> float:
    try:
        return max(0.0, float(os.environ.get("MULLUI_WATCH_IDLE_S", IDLE_EXIT_S)))
    except ValueError:
        return IDLE_EXIT_S


def _write_status(ctx: Context, **fields: Any) -> None:
    with contextlib.suppress(MulluiError, OSError):
        atomic_write_json(ctx.paths.state_dir / STATUS_NAME, fields)


def watch_main(ctx: Context, *, once: bool = False, lock_fd: int | None = None) -> int:
    """``mullui watch``: the headless supervisor, while it holds ``supervisor.lock``.

    Exits 0 at once when another supervisor (a TUI, another watch) holds the lock, and
    on SIGTERM/SIGINT/SIGHUP.  With ``lock_fd`` (started by :func:`ensure_running` or an
    agent's hook, which took the lock and passed it on) it leaves by itself once nothing
    needs it for :func:`idle_exit_s`; a watch typed by a human (or a login service) stays."""
    lock = SupervisorLock(ctx.paths.supervisor_lock)
    auto = lock_fd is not None
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.setsid()  # started by a hook's shell: out of the agent's session and group
        try:
            lock.adopt(lock_fd)
        except OSError as e:
            print(f"mullui: --lock-fd {lock_fd}: {e.strerror or e}", file=sys.stderr)
            return 1
    elif not lock.acquire(wait=0.5):  # tolerate a starter's instant test of the lock
        print(
            f"mullui: another supervisor is running (pid {lock.holder()}); nothing to do",
            file=sys.stderr,
        )
        return 0
    status: dict[str, Any] = {
        "pid": os.getpid(),
        "since": utcnow().isoformat(),
        "started_by": os.environ.get(autostart.STARTED_BY_ENV, "") if auto else "hand",
        "cwd": str(Path.cwd()),
        "leaves_when_idle": auto and not once,
        "notifications": None,
    }
    _write_status(ctx, **status)

    async def main() -> None:
        # No TUI to toast in: the terminal fallback goes to our own stdout (watch.log
        # for a watch that started by itself, or the terminal `mullui watch` runs in).
        notifier = make_notifier(
            ctx,
            lambda aid, act: popup_action(ctx, aid, act),
            terminal=sys.stdout,
            is_focused=attached_focus(ctx),
            in_app=tui_focused(ctx),
        )
        if notifier is not None:
            await notifier.start()
            status["notifications"] = f"{notifier.backend} ({notifier.reason})"
            _write_status(ctx, **status)
            print(
                f"mullui watch: notifications: {status['notifications']}",
                file=sys.stderr,
                flush=True,
            )
        if auto:
            print(
                f"mullui watch: pid {os.getpid()} started by {status['started_by']} at "
                f"{utcnow().astimezone():%H:%M:%S}; leaves once nothing is live",
                file=sys.stderr,
                flush=True,
            )
        stopping = False
        current: list[Supervisor] = []

        def on_signal() -> None:
            nonlocal stopping
            stopping = True
            if current:
                asyncio.ensure_future(current[-1].stop())

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        try:
            while True:
                sup = Supervisor(
                    ctx, notifier=notifier, idle_exit_s=idle_exit_s() if auto else None
                )
                current.append(sup)
                if once:
                    sup.catch_up_all()
                    await _drain(sup)
                    return
                await sup.run()
                await _drain(sup)
                if stopping or not sup.went_idle:
                    return
                # Nothing left: let go of the lock, then look again.  A spawn or hook that
                # found the lock still held wrote its event before it looked, so whatever
                # came in meanwhile is seen here, or its own starter finds the lock free.
                lock.release()
                _write_status(ctx, **{**status, "pid": None, "left": utcnow().isoformat()})
                if not work_left(ctx):
                    print(
                        f"mullui watch: pid {os.getpid()}: nothing live, queued or snoozed "
                        f"at {utcnow().astimezone():%H:%M:%S}; leaving",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
                if not lock.acquire():
                    return  # another supervisor took over
                _write_status(ctx, **status)
                current.clear()
        finally:
            await finish_notifications(current[-1] if current else None, notifier)

    try:
        asyncio.run(main())
    finally:
        lock.release()
    return 0


async def _drain(sup: Supervisor, timeout: float = DRAIN_S) -> None:
    """Wait for the notices ``sup`` handed to the notifier (its cursor counts them told)."""
    pending = sup.pending_notifications()
    if pending:
        await asyncio.wait(pending, timeout=timeout)


# ---- `mullui watch --status` / `--install` ------------------------------------------------
def _ago(t: datetime, now: datetime) -> str:
    s = int((now - t).total_seconds())
    if s < 60:
        return f"{max(s, 0)}s"
    if s < 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def follows(ctx: Context) -> str:
    """What a supervisor has to follow now, in a few words."""
    now = utcnow()
    agents = [a for a in ctx.store.all() if not a.removed]
    live = [a for a in agents if keeps_a_supervisor(a)]
    local = sum(1 for a in live if a.host is None)
    hosts = sorted({a.host for a in live if a.host is not None})
    queued = sum(1 for a in agents if a.state is State.QUEUED)
    wakes = sorted(
        a.snoozed_until for a in agents if a.snoozed_until is not None and a.snoozed_until > now
    )
    parts = [f"{local} live agent{'s' if local != 1 else ''}"]
    if queued:
        parts.append(f"{queued} queued")
    if wakes:
        parts.append(f"{len(wakes)} snoozed (next wakes {wakes[0].astimezone():%H:%M})")
    if hosts:
        parts.append("hosts " + ", ".join(hosts))
    return ", ".join(parts)


def supervisor_line(ctx: Context) -> str:
    """One line for where the human looks (TUI status line): who supervises, or that
    nobody does."""
    if autostart.held(ctx.paths.state_dir):
        pid = autostart.holder(ctx.paths.state_dir)
        return f"supervisor: mullui watch (pid {pid})" if pid else "supervisor: running"
    if needs_supervisor(ctx.store.all()):
        return "no supervisor: nothing notifies or starts queued agents (`mullui watch`)"
    return "no supervisor (nothing live)"


_FOCUS_WORDS = {
    presence.FOCUSED: "focused",
    presence.BLURRED: "not focused",
    presence.UNKNOWN: "focus not reported by its terminal",
}


def status_main(ctx: Context) -> int:
    """``mullui watch --status``: 0 and who/since/what when a supervisor runs, else 1."""
    state = ctx.paths.state_dir
    what = follows(ctx)
    if not autostart.held(state):
        print("mullui watch: not running")
        if needs_supervisor(ctx.store.all()):
            print(f"  {what}: nothing notifies or starts queued agents until the next spawn,")
            print("  send or agent event starts one; `mullui watch` starts one now")
        return 1
    pid = autostart.holder(state)
    try:
        st = read_json(state / STATUS_NAME) or {}
    except (ValueError, OSError):
        st = {}
    if not isinstance(st, dict) or st.get("pid") != pid:
        st = {}  # written by an earlier supervisor: say only what the lock says
    now = utcnow()
    since = parse_iso(st.get("since")) if st.get("since") else None
    head = f"mullui watch: running, pid {pid}"
    if since is not None:
        head += f", since {since.astimezone():%Y-%m-%d %H:%M:%S} ({_ago(since, now)})"
    if st.get("started_by"):
        by = st["started_by"]
        head += ", started by hand" if by == "hand" else f", started by {by}"
    print(head)
    print(f"  follows: {what} (events in {ctx.paths.spool_dir})")
    if st.get("notifications"):
        print(f"  notifications: {st['notifications']}")
    tuis = presence.live(state)
    if tuis:
        shown = ", ".join(f"pid {p.pid} ({_FOCUS_WORDS[p.focus]})" for p in tuis)
        held = " (no desktop popups while one has focus)"
        print(f"  TUI{'s' if len(tuis) > 1 else ''} open: {shown}{held}")
    if st.get("leaves_when_idle"):
        print(
            "  leaves by itself once nothing is live, queued or snoozed; the next event "
            "starts it again"
        )
    print(f"  log: {state / autostart.LOG_NAME}")
    return 0


UNIT_NAME = "mullui-watch.service"


def unit_text(env: dict[str, str]) -> str:
    """A systemd user unit running ``mullui watch`` (a human's watch: it stays)."""
    import shlex

    keep = ("MULLUI_HOME", "MULLUI_TMUX_SOCKET", "MULLUI_STATE_DIR", "MULLUI_NOTIFY", "PYTHONPATH")
    lines = [
        "[Unit]",
        "Description=mullui supervisor: notifications and the queue for AI coding agents",
        "",
        "[Service]",
        "ExecStart=" + shlex.join(watch_argv()),
    ]
    for k in keep:
        if env.get(k):
            lines.append(f"Environment={shlex.quote(f'{k}={env[k]}')}")
    lines += ["Restart=on-failure", "", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def install_main(ctx: Context) -> int:
    """``mullui watch --install``: a systemd user unit, or the line to add elsewhere."""
    import shlex
    import shutil

    env = watch_env()
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
        unit = base / "systemd" / "user" / UNIT_NAME
        unit.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.with_suffix(".tmp")
        tmp.write_text(unit_text(env))
        os.replace(tmp, unit)
        print(f"wrote {unit}")
        print(f"start it now and at every login: systemctl --user enable --now {UNIT_NAME}")
        return 0
    log = ctx.paths.state_dir / autostart.LOG_NAME
    line = f"{shlex.join(watch_argv())} >>{shlex.quote(str(log))} 2>&1 &"
    pp = env.get("PYTHONPATH")
    if pp:
        line = f"PYTHONPATH={shlex.quote(pp)} {line}"
    print("no systemd user session here: to start the supervisor at login, add this line")
    print("to your login script (~/.profile, your window manager's autostart):")
    print(f"  {line}")
    print("(never required: mullui starts one by itself whenever an agent is live)")
    return 0


# ---- `mullui events` (the feed a remote host's mullui streams over SSH) -------------------------
#: How often ``mullui events --follow`` prints ``{"kind": "heartbeat"}``: the local
#: HostLink counts a stream silent for ~3 of these as dropped, and a write is the only way
#: this side learns that the ssh channel is gone (no tty, so no SIGHUP).
HEARTBEAT_S = 10.0


def _quiet_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush
    does not print a BrokenPipeError traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def events_main(ctx: Context, *, follow: bool, since: str) -> int:
    """Print journal entries after cursor ``since`` as JSON lines with a ``cursor`` (the
    journal's logical offset just after the entry, see :mod:`mullui.journal`); with
    ``--follow`` keep applying events and printing until stdout closes, with a
    ``{"kind": "heartbeat"}`` line once the backlog is out and every :data:`HEARTBEAT_S`
    after."""
    offset = int(since) if since.isdigit() else 0
    out = sys.stdout

    def drain() -> None:
        # Streamed (mullui.journal.read holds one chunk at a time): a new link's
        # `--since 0` costs what one line costs, however long the journal is.
        nonlocal offset
        for entry, cursor in changes.read(ctx.paths.changes_file, offset):
            entry["cursor"] = cursor
            out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
            offset = cursor
        out.flush()

    def heartbeat() -> None:
        out.write('{"kind": "heartbeat"}\n')
        out.flush()

    try:
        agents = lifecycle.agents(ctx, reconcile=True)
        if remote_agents_live(agents):
            # This host's own agents on further hosts move only through a supervisor here.
            ensure_running(ctx)
        drain()
        if not follow:
            return 0
        # After the backlog: the reader knows it has caught up when this line arrives.
        heartbeat()
    except BrokenPipeError:
        _quiet_stdout()
        return 0

    async def main() -> None:
        sup = Supervisor(ctx, notify=False, on_change=lambda a, t: None)
        sup.cursor.offset = offset
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sup.stop()))
        orig = sup.process_journal

        def process() -> None:
            orig()
            try:
                drain()
            except BrokenPipeError:
                _quiet_stdout()
                asyncio.ensure_future(sup.stop())

        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                try:
                    heartbeat()
                except BrokenPipeError:
                    _quiet_stdout()
                    await sup.stop()
                    return

        sup.process_journal = process  # type: ignore[method-assign]
        beater = asyncio.create_task(beat())
        try:
            await sup.run()
        finally:
            beater.cancel()

    try:
        asyncio.run(main())
    except BrokenPipeError:
        _quiet_stdout()
    return 0


__all__ = [
    "WATCH_ENV",
    "ensure_running",
    "events_main",
    "make_notifier",
    "watch_main",
]
