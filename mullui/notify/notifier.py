"""The notifier: policy decisions delivered as desktop popups, terminal sequences, toasts.

The supervisor calls :meth:`Notifier.submit` for each agent state change and
:meth:`Notifier.resolve` when an agent leaves ``blocked``; the notifier owns one asyncio
timer task (burst summaries, escalation reminders) that sleeps until the policy's next
deadline and never polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import TextIO

from mullui.errors import MulluiError
from mullui.notify.desktop import (
    ButtonSpec,
    DesktopPopups,
    NoDesktop,
    ServerInfo,
    probe_notification_server,
)
from mullui.notify.policy import Clock, Delivery, Notice, NotifyConfig, NotifyPolicy
from mullui.notify.terminal import terminal_sequence

log = logging.getLogger(__name__)

MODES = ("desktop", "terminal", "none")

#: ``on_action(agent_id, action)``; action is "attach", "snooze" or "select".
ActionCallback = Callable[[str, str], None]
#: ``toast(agent_id, title, body)``: an in-app notice (the TUI's toast).
ToastCallback = Callable[[str, str, str], None]

ATTACH, SNOOZE, SELECT = "attach", "snooze", "select"


def notify_mode(env: Mapping[str, str] | None = None, configured: str | None = None) -> str:
    """The notification mode: ``MULLUI_NOTIFY`` if set, else ``[notify] mode`` from the
    config (``configured``), else ``desktop``."""
    e = os.environ if env is None else env
    value = e.get("MULLUI_NOTIFY", "").strip().lower() or configured or "desktop"
    if value not in MODES:
        raise MulluiError(
            f"MULLUI_NOTIFY={value!r} is not a notification mode; use desktop, terminal or none"
        )
    return value


class Notifier:
    """Tells the human when agents become blocked, done or failed.

    ``backend`` is what is actually in use after :meth:`start` ("desktop", "terminal" or
    "none") and ``reason`` says why, e.g. "no notification server on the session bus
    (org.freedesktop.DBus.Error.ServiceUnknown)"."""

    def __init__(
        self,
        mode: str = "desktop",
        *,
        config: NotifyConfig,
        on_action: ActionCallback,
        terminal: TextIO | None = None,
        toast: ToastCallback | None = None,
        is_focused: Callable[[str], bool] = lambda agent_id: False,
        in_app: Callable[[], bool] = lambda: False,
        clock: Clock | None = None,
        tmux: bool | None = None,
        probe_timeout_s: float = 1.0,
        send_timeout_s: float = 2.0,
        app_name: str = "mullui",
    ) -> None:
        if mode not in MODES:
            raise MulluiError(f"notification mode {mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self.config = config
        self.backend = "none"
        self.reason = "not started"
        self.server: ServerInfo | None = None
        self.desktop_failures = 0  # popups the server did not take (sent to terminal)
        self._policy = NotifyPolicy(config, is_focused=is_focused, in_app=in_app, clock=clock)
        self._on_action = on_action
        self._terminal = terminal
        self._toast = toast
        self._tmux = bool(os.environ.get("TMUX")) if tmux is None else tmux
        self._probe_timeout_s = probe_timeout_s
        self._send_timeout_s = send_timeout_s
        self._app_name = app_name
        self._popups: DesktopPopups | None = None
        self._burst_popups: list[str] = []  # on-screen popups of the current burst
        self._lock = asyncio.Lock()  # one delivery at a time, in decision order
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._started = False

    def reconfigure(self, config: NotifyConfig, mode: str | None = None) -> None:
        """Apply an edited ``[notify]`` (quiet hours, states, bursts, escalation) from now
        on; a new ``mode`` takes effect at the next :meth:`start` (the backend is probed
        once)."""
        self.config = config
        self._policy.reconfigure(config)
        if mode is not None and mode in MODES:
            self.mode = mode

    async def start(self) -> None:
        """Pick the backend (probing D-Bus for ``desktop``) and start the timer."""
        if self._started:
            return
        self._started = True
        if self.mode == "none":
            self.backend, self.reason = "none", "MULLUI_NOTIFY=none"
            return
        if self.mode == "terminal":
            self.backend, self.reason = "terminal", "MULLUI_NOTIFY=terminal"
        else:
            await self._start_desktop()
        self._timer = asyncio.create_task(self._run_timer(), name="mullui-notify-timer")

    async def _start_desktop(self) -> None:
        try:
            self.server = await probe_notification_server(self._probe_timeout_s)
            popups = DesktopPopups(
                self._app_name,
                timeout_s=self._send_timeout_s,
                body_markup="body-markup" in self.server.capabilities,
            )
            try:
                await popups.start()
            except Exception as e:  # TimeoutError, DBusError: the server left meanwhile
                await popups.close()
                raise NoDesktop(f"the notification server failed: {e!r}") from e
        except NoDesktop as e:
            self.backend = "terminal"
            self.reason = f"{e}; using terminal"
            log.info("desktop notifications unavailable: %s", self.reason)
            return
        self._popups = popups
        self.backend = "desktop"
        self.reason = f"notification server {self.server.name} {self.server.version}".strip()

    async def submit(self, notice: Notice) -> None:
        """Take one agent state change; deliver it now, fold it into a burst, or drop it
        (duplicate key, focused agent, state not enabled)."""
        if not self._started:
            await self.start()
        if self.backend == "none":
            return
        deliveries = self._policy.submit(notice)
        self._wake.set()  # the next deadline may have moved
        await self._deliver(deliveries)

    def resolve(self, agent_id: str) -> None:
        """The agent left ``blocked``: cancel its reminder and drop held news of it."""
        self._policy.resolve(agent_id)
        self._wake.set()

    async def tick(self) -> None:
        """Deliver whatever is due now (the timer does this by itself; tests with a fake
        clock call it after moving the clock)."""
        if self.backend != "none":
            await self._deliver(self._policy.due())

    async def close(self) -> None:
        """Stop the timer and drop the D-Bus connection; popups on screen stay."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self._popups is not None:
            await self._popups.close()
            self._popups = None

    async def _run_timer(self) -> None:
        while True:
            self._wake.clear()
            deadline = self._policy.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self._monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            try:
                await self.tick()
            except Exception:
                # A failed delivery must not end all future reminders and summaries.
                log.exception("delivering a due notification failed")

    def _monotonic(self) -> float:
        return self._policy._clock.monotonic()

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        async with self._lock:
            for d in deliveries:
                await self._deliver_one(d)

    async def _deliver_one(self, d: Delivery) -> None:
        if d.popup:
            if self._popups is not None:
                shown = await self._show_popup(d)
                if not shown:
                    self.desktop_failures += 1
                    log.warning("notification server refused a popup; using the terminal")
                    self._write_terminal(d)
            else:
                self._write_terminal(d)
        if self._toast is not None:
            self._toast(d.agent_id, d.title, d.body)

    async def _show_popup(self, d: Delivery) -> bool:
        assert self._popups is not None
        if d.replaces_burst:
            for old in self._burst_popups:
                await self._popups.close_popup(old)
        agent = d.agent_id
        buttons: list[ButtonSpec] = []
        if not d.is_summary:
            # Attach/snooze of one agent out of a summary would be a guess: summaries
            # only select (the first agent) on click.
            buttons = [
                (ATTACH, "Attach", self._action(agent, ATTACH)),
                (SNOOZE, "Snooze 30 min", self._action(agent, SNOOZE)),
            ]
        ident = await self._popups.show(
            d.title,
            d.body,
            critical=d.critical,
            buttons=buttons,
            on_clicked=self._action(agent, SELECT),
        )
        if ident is None:
            return False
        self._burst_popups = [ident]
        return True

    def _action(self, agent_id: str, action: str) -> Callable[[], None]:
        def invoke() -> None:
            # Runs inside dbus-fast's signal dispatch, which would swallow the error.
            try:
                self._on_action(agent_id, action)
            except Exception:
                log.exception("notification action %s for %s failed", action, agent_id)

        return invoke

    def _write_terminal(self, d: Delivery) -> None:
        if self._terminal is None:
            return
        try:
            self._terminal.write(terminal_sequence(d.title, d.body, tmux=self._tmux))
            self._terminal.flush()
        except (OSError, ValueError) as e:
            # The tty went away (closed, hung up) or cannot encode the text; the toast
            # and the inbox still carry the news.
            log.warning("cannot write a terminal notification: %s", e)
