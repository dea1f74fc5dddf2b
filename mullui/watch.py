"""``mullui watch`` and its helpers: the headless supervisor process, starting it in a
hidden tmux window, what a notification button does with no TUI open, and the
``mullui events`` feed that a remote host's mullui streams over SSH.

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
from typing import Any

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.loop import WATCH_ENV, WATCH_SESSION, SupervisorLock, ensure_running, remote_agents_live
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
#: counts them as told).  A Notify takes milliseconds; the bound keeps a handover well
#: inside ``SupervisorLock.take_over``'s 3 s even with a hung notification server.
DRAIN_S = 1.0


async def finish_notifications(
    sup: Supervisor, notifier: Any | None, timeout: float = DRAIN_S
) -> None:
    """Deliver the notices a stopping supervisor already handed to its notifier, then
    close the notifier.  The cursor counts them as told, so dropping them here would
    lose them for good (a handover to the TUI, ``--once``, a TUI quitting)."""
    pending = sup.pending_notifications()
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    if notifier is not None:
        flush = getattr(notifier, "flush", None)  # a held burst summary, when supported
        if flush is not None:
            with contextlib.suppress(Exception):
                await flush()
        await notifier.close()


def watch_main(ctx: Context, *, once: bool = False) -> int:
    """``mullui watch``: the headless supervisor, while it holds ``supervisor.lock``.

    Exits 0 at once when another supervisor (a TUI, another watch) holds the lock, and
    on SIGTERM/SIGINT/SIGHUP (what :meth:`SupervisorLock.take_over` sends)."""
    lock = SupervisorLock(ctx.paths.supervisor_lock)
    if not lock.acquire():
        print(
            f"mullui: another supervisor is running (pid {lock.holder()}); nothing to do",
            file=sys.stderr,
        )
        return 0

    async def main() -> None:
        # No TUI to toast in: the terminal fallback goes to our own stdout (the hidden
        # tmux window, or the terminal `mullui watch` was started in).
        notifier = make_notifier(
            ctx,
            lambda aid, act: headless_action(ctx, aid, act),
            terminal=sys.stdout,
            is_focused=attached_focus(ctx),
        )
        if notifier is not None:
            await notifier.start()
            print(
                f"mullui watch: notifications: {notifier.backend} ({notifier.reason})",
                file=sys.stderr,
                flush=True,
            )
        sup = Supervisor(ctx, notifier=notifier)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sup.stop()))
        try:
            if once:
                sup.catch_up_all()
            else:
                await sup.run()
        finally:
            await finish_notifications(sup, notifier)

    try:
        asyncio.run(main())
    finally:
        lock.release()
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
    """Print journal entries after byte offset ``since`` as JSON lines with a ``cursor``
    (the byte offset just after the entry); with ``--follow`` keep applying events and
    printing until stdout closes, with a ``{"kind": "heartbeat"}`` line once the backlog
    is out and every :data:`HEARTBEAT_S` after."""
    offset = int(since) if since.isdigit() else 0
    out = sys.stdout

    def drain() -> None:
        nonlocal offset
        path = ctx.paths.changes_file
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        pos = offset
        for raw in data[: end + 1].splitlines(keepends=True):
            pos += len(raw)
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            entry["cursor"] = pos
            out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        out.flush()
        offset += end + 1

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
    "WATCH_SESSION",
    "ensure_running",
    "events_main",
    "make_notifier",
    "watch_main",
]
