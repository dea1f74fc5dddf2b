"""Notifications on a real (private) D-Bus session bus with a stand-in notification server."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest

from mullui.notify import Notice, Notifier, NotifyConfig
from tests.support.fake_notifications import (
    FakeNotificationServer,
    dbus_session,
    fake_server,
    measure_submit_to_notify,
    notification_server,
)

__all__ = ["dbus_session", "notification_server"]  # fixtures, imported for pytest

pytestmark = pytest.mark.timeout(30)

ESC, BEL = "\x1b", "\x07"


def notice(agent: str, state: str, body: str = "", seq: int = 1) -> Notice:
    return Notice(agent, agent, state, body, f"{agent}:{seq}", datetime.now(UTC))


class Toasts:
    """Records toasts; a toast comes after its popup was handed over (Notify returned),
    so waiting for one proves the popup's actions are wired up."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self._event = asyncio.Event()

    def __call__(self, agent_id: str, title: str, body: str) -> None:
        self.seen.append((agent_id, title, body))
        self._event.set()

    async def wait(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.seen) < count:
                self._event.clear()
                await self._event.wait()


class Actions:
    """Records on_action calls; tests await the next one."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._event = asyncio.Event()

    def __call__(self, agent_id: str, action: str) -> None:
        self.seen.append((agent_id, action))
        self._event.set()

    async def next(self, timeout_s: float = 5.0) -> tuple[str, str]:
        count = len(self.seen)
        async with asyncio.timeout(timeout_s):
            while len(self.seen) <= count:
                self._event.clear()
                await self._event.wait()
        return self.seen[count]


def make(mode: str = "desktop", **kw: object) -> tuple[Notifier, Actions, io.StringIO, Toasts]:
    actions = Actions()
    tty = io.StringIO()
    toasts = Toasts()
    config = kw.pop("config", NotifyConfig(coalesce_ms=100, escalate_after_s=0))
    n = Notifier(
        mode,
        config=config,  # type: ignore[arg-type]
        on_action=actions,
        terminal=tty,
        toast=toasts,
        tmux=False,
        **kw,  # type: ignore[arg-type]
    )
    return n, actions, tty, toasts


@pytest.mark.parametrize(
    ("state", "body", "urgency"),
    [
        ("blocked", "Bash: rm -rf build/ ?", 2),
        ("done", "Refactored the API client; tests pass", 1),
        ("failed", "exit code 3", 2),
    ],
)
async def test_each_state_change_is_one_popup_with_title_body_urgency_and_buttons(
    notification_server: FakeNotificationServer, state: str, body: str, urgency: int
) -> None:
    notifier, _, tty, toasts = make()
    await notifier.start()
    assert notifier.backend == "desktop", notifier.reason
    assert "fake-notifications" in notifier.reason

    await notifier.submit(notice("api-refactor", state, body))
    await notifier.submit(notice("api-refactor", state, body))  # same key: a duplicate
    [call] = await notification_server.wait_calls(1)
    await asyncio.sleep(0.2)  # past the burst window: nothing else may follow
    await notifier.close()

    assert len(notification_server.calls) == 1
    assert call.app_name == "mullui"
    assert call.title == f"api-refactor is {state}"
    assert call.body == body
    assert call.urgency == urgency
    assert call.actions == {"default": "", "attach": "Attach", "snooze": "Snooze 30 min"}
    assert tty.getvalue() == ""  # the desktop took it: no terminal sequences
    assert toasts.seen == [("api-refactor", f"api-refactor is {state}", body)]


@pytest.mark.parametrize(
    ("key", "action"), [("attach", "attach"), ("snooze", "snooze"), ("default", "select")]
)
async def test_clicking_a_popup_calls_on_action_with_agent_and_action(
    notification_server: FakeNotificationServer, key: str, action: str
) -> None:
    notifier, actions, _, toasts = make()
    await notifier.start()
    await notifier.submit(notice("docs", "blocked", "Allow WebFetch?"))
    [call] = await notification_server.wait_calls(1)
    await toasts.wait(1)  # no human clicks before the popup is up

    notification_server.click(call, key)

    assert await actions.next() == ("docs", action)
    await notifier.close()


async def test_a_burst_becomes_one_summary_that_replaces_the_first_popup_and_selects_the_first(
    notification_server: FakeNotificationServer,
) -> None:
    notifier, actions, _, toasts = make(config=NotifyConfig(coalesce_ms=150, escalate_after_s=0))
    await notifier.start()
    await notifier.submit(notice("a", "blocked", "Allow Bash?"))
    await notifier.submit(notice("b", "done"))
    await notifier.submit(notice("c", "failed", "exit code 1"))

    first, summary = await notification_server.wait_calls(2)
    assert first.title == "a is blocked"
    assert summary.title == "3 agents need you"
    assert summary.body == "a blocked, b done, c failed"
    assert summary.urgency == 2
    assert summary.actions == {"default": ""}  # no attach/snooze guesses on a summary
    assert notification_server.state.closed == [first.id]  # one popup left on screen

    await toasts.wait(2)
    notification_server.click(summary)
    assert await actions.next() == ("a", "select")
    await notifier.close()


async def test_a_still_blocked_agent_is_reminded_once_by_the_timer(
    notification_server: FakeNotificationServer,
) -> None:
    notifier, _, _, _ = make(config=NotifyConfig(coalesce_ms=50, escalate_after_s=0.3))
    await notifier.start()
    await notifier.submit(notice("api", "blocked", "Allow Edit?"))
    await notifier.submit(notice("web", "blocked", "Allow Bash?"))
    notifier.resolve("web")  # answered in its pane before the reminder

    first, reminder = await notification_server.wait_calls(2)
    assert first.title == "api is blocked"  # web's was held for the burst, then resolved
    assert reminder.title == "api is still blocked"
    assert reminder.body == "waiting 0.3 s: Allow Edit?"
    assert reminder.urgency == 2
    await asyncio.sleep(0.4)  # a second reminder, or web's, would have arrived by now
    assert len(notification_server.calls) == 2
    await notifier.close()


def assert_terminal_notice(output: str, title: str, body: str) -> None:
    assert output == (f"{ESC}]777;notify;{title};{body}{BEL}{ESC}]9;{title}: {body}{BEL}{BEL}")


async def test_no_session_bus_falls_back_to_terminal_sequences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    notifier, _, tty, toasts = make()
    await notifier.start()
    assert notifier.backend == "terminal"
    assert "DBUS_SESSION_BUS_ADDRESS" in notifier.reason

    await notifier.submit(notice("api", "failed", "exit code 3"))

    assert_terminal_notice(tty.getvalue(), "api is failed", "exit code 3")
    assert toasts.seen == [("api", "api is failed", "exit code 3")]
    await notifier.close()


async def test_a_bus_address_pointing_nowhere_falls_back_to_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus-here")
    notifier, _, tty, _ = make()
    await notifier.start()
    assert notifier.backend == "terminal"
    assert "cannot connect" in notifier.reason

    await notifier.submit(notice("api", "done", "all green"))

    assert_terminal_notice(tty.getvalue(), "api is done", "all green")
    await notifier.close()


async def test_a_bus_without_a_notification_server_falls_back_to_terminal(
    dbus_session: str,
) -> None:
    notifier, _, tty, _ = make()
    await notifier.start()
    assert notifier.backend == "terminal"
    assert "ServiceUnknown" in notifier.reason

    await notifier.submit(notice("api", "blocked", "Allow Bash: make build; make deploy?"))

    # ';' would split OSC 777's fields: the sanitizer turns it into ','.
    assert_terminal_notice(tty.getvalue(), "api is blocked", "Allow Bash: make build, make deploy?")
    await notifier.close()


async def test_a_notification_server_that_goes_away_later_falls_back_per_popup(
    dbus_session: str,
) -> None:
    notifier, _, tty, toasts = make(config=NotifyConfig(coalesce_ms=0, escalate_after_s=0))
    async with fake_server() as server:
        await notifier.start()
        assert notifier.backend == "desktop"
        await notifier.submit(notice("a", "done", "first"))
        await server.wait_calls(1)
    # The daemon quit (a desktop session restarting it, say); desktop-notifier only logs.

    await notifier.submit(notice("b", "failed", "exit code 1", seq=2))

    assert notifier.desktop_failures == 1
    assert_terminal_notice(tty.getvalue(), "b is failed", "exit code 1")
    assert [t[1] for t in toasts.seen] == ["a is done", "b is failed"]
    await notifier.close()


async def test_mode_none_sends_nothing_anywhere(
    notification_server: FakeNotificationServer,
) -> None:
    notifier, actions, tty, toasts = make("none")
    await notifier.start()
    assert notifier.backend == "none"

    await notifier.submit(notice("api", "failed", "exit code 3"))
    await notifier.tick()
    await notifier.close()

    assert notification_server.calls == []
    assert tty.getvalue() == "" and toasts.seen == [] and actions.seen == []


async def test_mode_terminal_ignores_a_working_desktop(
    notification_server: FakeNotificationServer,
) -> None:
    notifier, _, tty, _ = make("terminal")
    await notifier.start()
    await notifier.submit(notice("api", "done", "ok"))
    await notifier.close()

    assert notification_server.calls == []
    assert_terminal_notice(tty.getvalue(), "api is done", "ok")


async def test_submit_to_notify_latency_on_the_real_bus(dbus_session: str) -> None:
    stats = await measure_submit_to_notify(count=50, coalesce_ms=20)
    print(
        f"\nsubmit -> Notify latency over {stats.count}: p50 {stats.p50_ms:.2f} ms, "
        f"p95 {stats.p95_ms:.2f} ms, max {stats.max_ms:.2f} ms"
    )
    assert stats.p95_ms < 250
