"""A stand-in ``org.freedesktop.Notifications`` server on a private D-Bus session bus.

Real D-Bus, fake desktop: tests (and the benchmark) start their own ``dbus-daemon``,
export :class:`FakeNotificationServer` on it with dbus-fast, and see every Notify call
that mullui makes, exactly as a desktop's notification daemon would.  It can click a
popup's button (emit ActionInvoked) on demand.  Works as root with no display.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from dbus_fast import BusType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

from tests.support.missing import missing

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusHints = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
DBusInt32 = Annotated[int, DBusSignature("i")]
ServerInfoT = Annotated[tuple[str, str, str, str], DBusSignature("ssss")]
ActionT = Annotated[list[Any], DBusSignature("us")]
ClosedT = Annotated[list[Any], DBusSignature("uu")]


@dataclass
class NotifyCall:
    """One Notify call as the server saw it."""

    id: int
    app_name: str
    replaces_id: int
    icon: str
    title: str
    body: str
    actions: dict[str, str]  # action key -> label (D-Bus sends a flat key, label list)
    hints: dict[str, Any]  # unwrapped Variant values
    timeout: int
    received: float  # time.perf_counter() when the call arrived

    @property
    def urgency(self) -> int | None:
        """0 low, 1 normal, 2 critical (the ``urgency`` hint byte)."""
        value = self.hints.get("urgency")
        return None if value is None else int(value)


@dataclass
class FakeState:
    calls: list[NotifyCall] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeNotificationServer(ServiceInterface):
    """org.freedesktop.Notifications (spec 1.2) that records instead of drawing."""

    def __init__(self, capabilities: tuple[str, ...] = ("actions", "body", "persistence")):
        super().__init__(NAME)
        self.capabilities = list(capabilities)
        self.state = FakeState()
        self._next_id = 1

    @property
    def calls(self) -> list[NotifyCall]:
        return self.state.calls

    @dbus_method(name="Notify")
    def notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: DBusStrList,
        hints: DBusHints,
        expire_timeout: DBusInt32,
    ) -> DBusUInt32:
        received = time.perf_counter()
        nid = replaces_id or self._next_id
        self._next_id += 1
        self.state.calls.append(
            NotifyCall(
                id=nid,
                app_name=app_name,
                replaces_id=replaces_id,
                icon=app_icon,
                title=summary,
                body=body,
                actions=dict(zip(actions[0::2], actions[1::2], strict=True)),
                hints={k: v.value for k, v in hints.items()},
                timeout=expire_timeout,
                received=received,
            )
        )
        self.state.changed.set()
        return nid

    @dbus_method(name="GetCapabilities")
    def get_capabilities(self) -> DBusStrList:
        return self.capabilities

    @dbus_method(name="GetServerInformation")
    def get_server_information(self) -> ServerInfoT:
        return ("fake-notifications", "mullui tests", "1.0", "1.2")

    @dbus_method(name="CloseNotification")
    def close_notification(self, id: DBusUInt32):  # type: ignore[no-untyped-def]  # noqa: A002
        self.state.closed.append(id)
        self.state.changed.set()
        self.notification_closed(id, 3)  # 3 = closed by CloseNotification

    @dbus_signal(name="ActionInvoked")
    def action_invoked(self, id: int, action_key: str) -> ActionT:  # noqa: A002
        return [id, action_key]

    @dbus_signal(name="NotificationClosed")
    def notification_closed(self, id: int, reason: int) -> ClosedT:  # noqa: A002
        return [id, reason]

    def click(self, call: NotifyCall, action_key: str = "default") -> None:
        """What the user's click does: ActionInvoked, then the popup closes (reason 2)."""
        self.action_invoked(call.id, action_key)
        self.notification_closed(call.id, 2)

    async def wait_calls(self, count: int, timeout_s: float = 5.0) -> list[NotifyCall]:
        """Wait until at least ``count`` Notify calls arrived; return all of them."""
        async with asyncio.timeout(timeout_s):
            while len(self.state.calls) < count:
                self.state.changed.clear()
                await self.state.changed.wait()
        return list(self.state.calls)


@contextmanager
def private_session_bus() -> Iterator[str]:
    """Run a throw-away ``dbus-daemon --session``; yield its address.

    The listening socket lives in a private temp dir (not /tmp's abstract namespace), so
    parallel runs never meet.  No X and no systemd needed; root is fine."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        missing("dbus-daemon is not installed")
    with tempfile.TemporaryDirectory(prefix="mullui-dbus-") as tmp:
        config = Path(tmp) / "session.conf"
        config.write_text(
            "<!DOCTYPE busconfig PUBLIC '-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN'"
            " 'http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd'>\n"
            "<busconfig><type>session</type>"
            f"<listen>unix:dir={tmp}</listen>"
            "<policy context='default'><allow send_destination='*' eavesdrop='true'/>"
            "<allow eavesdrop='true'/><allow own='*'/></policy></busconfig>\n"
        )
        proc = subprocess.Popen(
            [daemon, f"--config-file={config}", "--print-address=1", "--nofork", "--nopidfile"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            address = proc.stdout.readline().strip()
            if not address:
                raise RuntimeError(
                    f"dbus-daemon did not start: {proc.stderr and proc.stderr.read()}"
                )
            yield address
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@asynccontextmanager
async def fake_server(
    capabilities: tuple[str, ...] = ("actions", "body", "persistence"),
) -> AsyncIterator[FakeNotificationServer]:
    """Export a :class:`FakeNotificationServer` on the session bus in the environment."""
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    server = FakeNotificationServer(capabilities)
    bus.export(PATH, server)
    reply = await bus.request_name(NAME, NameFlag.DO_NOT_QUEUE)
    assert reply == RequestNameReply.PRIMARY_OWNER, reply
    try:
        yield server
    finally:
        bus.disconnect()


@pytest.fixture
def dbus_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private session bus for one test; DBUS_SESSION_BUS_ADDRESS points at it."""
    with private_session_bus() as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


@pytest.fixture
async def notification_server(dbus_session: str) -> AsyncIterator[FakeNotificationServer]:
    """The fake notification server, running on the test's private session bus."""
    async with fake_server() as server:
        yield server


@dataclass(frozen=True)
class LatencyStats:
    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float


async def measure_submit_to_notify(count: int = 50, coalesce_ms: int = 100) -> LatencyStats:
    """Latency from ``Notifier.submit`` to the Notify call arriving at the server.

    Uses the session bus in the environment (see :func:`private_session_bus`) and spaces
    notices beyond the coalescing window, so each is a first-of-a-quiet-period notice."""
    from mullui.notify import Notice, Notifier, NotifyConfig

    async with fake_server() as server:
        notifier = Notifier(
            "desktop",
            config=NotifyConfig(coalesce_ms=coalesce_ms, escalate_after_s=0),
            on_action=lambda agent_id, action: None,
        )
        await notifier.start()
        assert notifier.backend == "desktop", notifier.reason
        samples: list[float] = []
        try:
            for i in range(count):
                start = time.perf_counter()
                await notifier.submit(
                    Notice(f"a{i}", f"agent-{i}", "done", "finished", f"a{i}:1", datetime.now(UTC))
                )
                calls = await server.wait_calls(i + 1)
                samples.append((calls[i].received - start) * 1000)
                await asyncio.sleep(coalesce_ms / 1000 * 1.2)
        finally:
            await notifier.close()
    q = statistics.quantiles(samples, n=20, method="inclusive")
    return LatencyStats(len(samples), statistics.median(samples), q[18], max(samples))


def main() -> None:
    """``python -m tests.support.fake_notifications``: print the latency numbers."""
    with private_session_bus() as address:
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
        stats = asyncio.run(measure_submit_to_notify())
    print(
        f"submit -> Notify over {stats.count} notices: p50 {stats.p50_ms:.2f} ms, "
        f"p95 {stats.p95_ms:.2f} ms, max {stats.max_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
