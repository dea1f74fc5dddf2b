"""Desktop popups through desktop-notifier (org.freedesktop.Notifications on Linux).

desktop-notifier 6.2 never raises: with no session bus or no notification server it logs
a warning and still returns an identifier.  So mullui asks the bus itself first
(:func:`probe_notification_server`) and learns per popup whether it was really handed
to the server (the ``on_dispatched`` callback only fires after a successful Notify).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from desktop_notifier import Button, DesktopNotifier, Icon, Notification, Urgency

log = logging.getLogger(__name__)

NOTIFICATIONS = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
APP_NAME = "mullui"


class NoDesktop(Exception):
    """No usable notification server; ``str()`` says why, for ``Notifier.reason``."""


@dataclass(frozen=True)
class ServerInfo:
    """What the notification server says about itself."""

    name: str
    vendor: str
    version: str
    spec_version: str
    capabilities: frozenset[str]


async def probe_notification_server(timeout_s: float = 1.0) -> ServerInfo:
    """Ask the session bus's notification server who it is; raise :class:`NoDesktop`.

    Calls GetServerInformation and GetCapabilities on a throw-away connection, each
    bounded by ``timeout_s`` (a D-Bus-activated server may be started by this call)."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        raise NoDesktop("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
    try:
        bus = await asyncio.wait_for(MessageBus(bus_type=BusType.SESSION).connect(), timeout_s)
    except Exception as e:  # OSError, TimeoutError, InvalidAddressError, AuthError, ...
        raise NoDesktop(f"cannot connect to the D-Bus session bus: {e or type(e).__name__}") from e
    try:
        info = await _call(bus, "GetServerInformation", timeout_s)
        caps = await _call(bus, "GetCapabilities", timeout_s)
    finally:
        bus.disconnect()
    name, vendor, version, spec = (str(v) for v in info[:4])
    return ServerInfo(name, vendor, version, spec, frozenset(str(c) for c in caps[0]))


async def _call(bus: MessageBus, member: str, timeout_s: float) -> list[Any]:
    msg = Message(
        destination=NOTIFICATIONS, path=NOTIFICATIONS_PATH, interface=NOTIFICATIONS, member=member
    )
    try:
        reply = await asyncio.wait_for(bus.call(msg), timeout_s)
    except TimeoutError as e:
        raise NoDesktop(
            f"the notification server did not answer {member} in {timeout_s:g} s"
        ) from e
    if reply is None or reply.message_type == MessageType.ERROR:
        err = getattr(reply, "error_name", None) or "no reply"
        raise NoDesktop(f"no notification server on the session bus ({err})")
    return list(reply.body)


#: One popup button: (action key, label, callback).
ButtonSpec = tuple[str, str, Callable[[], None]]


class DesktopPopups:
    """Sends and closes popups; one D-Bus connection, opened by :meth:`start`."""

    def __init__(
        self, app_name: str = APP_NAME, *, timeout_s: float = 2.0, body_markup: bool = False
    ) -> None:
        self._dn = DesktopNotifier(app_name=app_name, app_icon=Icon(name="utilities-terminal"))
        self._timeout_s = timeout_s
        #: the server renders a body's markup (capability ``body-markup``): agent text in
        #: it is escaped, so ``<a href>`` / ``<img src=file://...>`` show as typed
        self._body_markup = body_markup

    async def start(self) -> None:
        """Connect and introspect now, so the first popup does not pay for it."""
        await asyncio.wait_for(self._dn.get_capabilities(), self._timeout_s)

    async def show(
        self,
        title: str,
        body: str,
        *,
        critical: bool,
        buttons: list[ButtonSpec],
        on_clicked: Callable[[], None],
    ) -> str | None:
        """Show one popup; its identifier, or None when the server did not take it."""
        dispatched = False

        def mark() -> None:
            nonlocal dispatched
            dispatched = True

        note = Notification(
            title=title,
            message=html.escape(body, quote=False) if self._body_markup else body,
            urgency=Urgency.Critical if critical else Urgency.Normal,
            # The identifier doubles as the action key the server sends back.
            buttons=tuple(Button(title=t, identifier=k, on_pressed=cb) for k, t, cb in buttons),
            on_clicked=on_clicked,
            on_dispatched=mark,
        )
        try:
            ident = await asyncio.wait_for(self._dn.send_notification(note), self._timeout_s)
        except TimeoutError:
            log.warning("notification server did not answer Notify in %g s", self._timeout_s)
            return None
        return ident if dispatched else None

    async def close_popup(self, ident: str) -> None:
        """Take a popup off the screen (it may be gone already: clicked or expired)."""
        try:
            await asyncio.wait_for(self._dn.clear(ident), self._timeout_s)
        except (KeyError, TimeoutError):
            # desktop-notifier 6.2 forgets popups the user already acted on or closed,
            # and clear() then raises KeyError from its id map.
            pass

    async def close(self) -> None:
        # desktop-notifier 6.2 has no close(); its backend keeps a MessageBus open for
        # the process lifetime.  Disconnect it so each Notifier leaves no socket behind.
        bus = getattr(self._dn._backend, "bus", None)
        if bus is not None:
            bus.disconnect()
