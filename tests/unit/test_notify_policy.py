"""Notification hygiene with a fake clock: dedupe, bursts, focus, quiet hours, reminders."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mullui.errors import ConfigError, MulluiError
from mullui.notify import (
    Delivery,
    Notice,
    Notifier,
    NotifyConfig,
    NotifyPolicy,
    attach_argv,
    notify_mode,
    parse_quiet_hours,
    terminal_sequence,
)

CEST = timezone(timedelta(hours=2))


class FakeClock:
    """Monotonic seconds and local wall time that move only when told."""

    def __init__(self, local: datetime = datetime(2025, 3, 4, 12, 0, tzinfo=CEST)) -> None:
        self.t = 1000.0
        self._start = local

    def monotonic(self) -> float:
        return self.t

    def local_now(self) -> datetime:
        return self._start + timedelta(seconds=self.t - 1000.0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


_seq = 0


def notice(agent: str, state: str = "done", body: str = "", key: str | None = None) -> Notice:
    global _seq
    _seq += 1
    return Notice(agent, agent, state, body, key or f"{agent}:{_seq}", datetime.now(UTC))


def policy(clock: FakeClock, focused: set[str] | None = None, **config: object) -> NotifyPolicy:
    focus = focused if focused is not None else set()
    cfg = NotifyConfig(**{"escalate_after_s": 0, **config})  # type: ignore[arg-type]
    return NotifyPolicy(cfg, is_focused=lambda a: a in focus, clock=clock)


def titles(deliveries: list[Delivery]) -> list[str]:
    return [d.title for d in deliveries]


# -- dedupe -------------------------------------------------------------------


def test_one_state_change_notifies_once_even_when_submitted_twice() -> None:
    clock = FakeClock()
    p = policy(clock)
    n = notice("api", "done", key="api:7")
    assert titles(p.submit(n)) == ["api is done"]
    clock.advance(5)
    assert p.submit(n) == []
    assert p.submit(notice("api", "done", key="api:7")) == []  # same key, new object
    assert p.due() == []


def test_two_changes_of_one_agent_far_apart_notify_twice() -> None:
    clock = FakeClock()
    p = policy(clock)
    assert titles(p.submit(notice("api", "blocked"))) == ["api is blocked"]
    clock.advance(30)
    assert titles(p.submit(notice("api", "done"))) == ["api is done"]


def test_states_outside_the_inbox_never_notify() -> None:
    p = policy(FakeClock())
    for state in ("queued", "starting", "working", "stopped", "unknown"):
        assert p.submit(notice("api", state)) == []
    assert p.next_deadline() is None


def test_only_the_configured_states_notify() -> None:
    p = policy(FakeClock(), states=frozenset({"blocked"}))
    assert p.submit(notice("a", "done")) == []
    assert p.submit(notice("b", "failed")) == []
    assert titles(p.submit(notice("c", "blocked"))) == ["c is blocked"]


# -- bursts ---------------------------------------------------------------------


def test_ten_changes_in_one_second_make_one_summary_and_the_first_is_not_delayed() -> None:
    clock = FakeClock()
    p = policy(clock, coalesce_ms=1000)
    states = [
        "blocked",
        "done",
        "failed",
        "done",
        "done",
        "blocked",
        "done",
        "failed",
        "done",
        "done",
    ]
    first = p.submit(notice("a0", states[0], "Allow Bash?"))
    assert titles(first) == ["a0 is blocked"] and first[0].popup  # at once: no wait
    for i, state in enumerate(states[1:], start=1):
        clock.advance(0.09)
        assert p.submit(notice(f"a{i}", state)) == []
        assert p.due() == []
    assert p.next_deadline() == pytest.approx(1001.0)

    clock.advance(1.0 - 0.09 * 9)
    [summary] = p.due()

    assert summary.is_summary and summary.popup and summary.replaces_burst
    assert summary.title == "10 agents need you"
    assert summary.body == (
        "a0 blocked, a1 done, a2 failed, a3 done, a4 done, a5 blocked, and 4 more"
    )
    assert [n.agent_id for n in summary.notices] == [f"a{i}" for i in range(10)]
    assert summary.agent_id == "a0"  # a click selects the first
    assert summary.critical
    clock.advance(5)
    assert p.due() == [] and p.next_deadline() is None


def test_after_a_quiet_period_the_next_change_is_again_immediate_and_alone() -> None:
    clock = FakeClock()
    p = policy(clock, coalesce_ms=1000)
    p.submit(notice("a"))
    clock.advance(0.5)
    p.submit(notice("b"))
    clock.advance(0.5)
    assert titles(p.due()) == ["2 agents need you"]
    clock.advance(1.0)
    [d] = p.submit(notice("c", "failed", "exit code 3"))
    assert (d.title, d.body, d.replaces_burst) == ("c is failed", "exit code 3", False)


def test_a_steady_stream_pops_up_at_most_once_per_window() -> None:
    clock = FakeClock()
    p = policy(clock, coalesce_ms=1000)
    popups: list[float] = []
    for i in range(30):  # one change every 0.3 s for 9 s
        for d in p.submit(notice(f"a{i}")) + p.due():
            popups.append(clock.t)
            assert d.popup
        clock.advance(0.3)
    gaps = [b - a for a, b in zip(popups, popups[1:], strict=False)]
    assert len(popups) >= 8
    assert min(gaps) >= 1.0 - 1e-9


def test_a_newer_change_of_the_same_agent_replaces_its_held_one_in_the_summary() -> None:
    clock = FakeClock()
    p = policy(clock, coalesce_ms=1000)
    p.submit(notice("a", "done"))
    p.submit(notice("b", "blocked", "Allow Edit?"))
    p.submit(notice("b", "done"))
    clock.advance(1)
    [d] = p.due()
    assert d.body == "a done, b done"
    assert not d.critical


def test_zero_window_never_coalesces() -> None:
    p = policy(FakeClock(), coalesce_ms=0)
    assert len(p.submit(notice("a")) + p.submit(notice("b")) + p.submit(notice("c"))) == 3


# -- focus ------------------------------------------------------------------


def test_nothing_for_the_agent_the_user_is_looking_at() -> None:
    clock = FakeClock()
    focused = {"api"}
    p = policy(clock, focused)
    assert p.submit(notice("api", "blocked")) == []
    assert titles(p.submit(notice("web", "done"))) == ["web is done"]


def test_an_agent_focused_while_held_for_a_summary_is_left_out() -> None:
    clock = FakeClock()
    focused: set[str] = set()
    p = policy(clock, focused, coalesce_ms=1000)
    p.submit(notice("a"))
    p.submit(notice("b"))
    p.submit(notice("c"))
    focused.add("b")  # the user selected b in the TUI meanwhile
    clock.advance(1)
    [d] = p.due()
    assert d.body == "a done, c done"


def test_while_the_human_is_at_a_tui_news_is_in_app_only_and_pops_up_again_after() -> None:
    clock = FakeClock()
    at_tui = [True]
    cfg = NotifyConfig(escalate_after_s=0, coalesce_ms=1000)
    p = NotifyPolicy(cfg, in_app=lambda: at_tui[0], clock=clock)
    [d] = p.submit(notice("api", "done"))
    assert d.popup is False and d.title == "api is done"  # the TUI's toast shows it
    at_tui[0] = False  # the human went to another window
    clock.advance(5)
    [d] = p.submit(notice("web", "failed"))
    assert d.popup is True


def test_popup_when_tui_focused_keeps_the_popups_coming() -> None:
    cfg = NotifyConfig.from_table({"escalate_after_s": 0, "popup_when_tui_focused": True})
    p = NotifyPolicy(cfg, in_app=lambda: True, clock=FakeClock())
    assert [d.popup for d in p.submit(notice("api", "done"))] == [True]


def test_a_burst_held_while_the_human_came_to_the_tui_gives_no_summary_popup() -> None:
    clock = FakeClock()
    at_tui = [False]
    cfg = NotifyConfig(escalate_after_s=0, coalesce_ms=1000)
    p = NotifyPolicy(cfg, in_app=lambda: at_tui[0], clock=clock)
    assert [d.popup for d in p.submit(notice("a"))] == [True]
    assert p.submit(notice("b")) == []  # held for the summary
    at_tui[0] = True
    clock.advance(1)
    assert [(d.title, d.popup) for d in p.due()] == [("b is done", False)]


# -- quiet hours --------------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "quiet"),
    [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True), (6, 59, True), (7, 0, False)],
)
def test_quiet_hours_wrap_past_midnight(hh: int, mm: int, quiet: bool) -> None:
    clock = FakeClock(datetime(2025, 3, 4, hh, mm, tzinfo=CEST))
    p = policy(clock, quiet_hours="22:00-07:00")
    [d] = p.submit(notice("api", "failed"))
    assert d.popup is not quiet  # the in-app toast still gets it either way


def test_changes_during_quiet_hours_are_not_popped_up_when_they_end() -> None:
    clock = FakeClock(datetime(2025, 3, 4, 6, 59, 30, tzinfo=CEST))
    p = policy(clock, quiet_hours="22:00-07:00", coalesce_ms=1000)
    assert [d.popup for d in p.submit(notice("a")) + p.submit(notice("b"))] == [False, False]
    clock.advance(60)  # 07:00:30
    assert p.due() == [] and p.next_deadline() is None


def test_quiet_hours_within_one_day() -> None:
    q = parse_quiet_hours("12:30-13:45")
    assert q.contains(datetime(2025, 1, 1, 13, 0).time())
    assert not q.contains(datetime(2025, 1, 1, 14, 0).time())


@pytest.mark.parametrize("text", ["22-07", "25:00-07:00", "22:00-07:60", "22:00-22:00", ""])
def test_bad_quiet_hours_are_a_config_error_naming_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match="notify.quiet_hours"):
        NotifyConfig(quiet_hours=text)


# -- escalation ---------------------------------------------------------------


def test_a_still_blocked_agent_is_reminded_once() -> None:
    clock = FakeClock()
    p = policy(clock, escalate_after_s=600)
    p.submit(notice("api", "blocked", "Allow Bash: make deploy?"))
    assert p.next_deadline() == pytest.approx(1600.0)
    clock.advance(599)
    assert p.due() == []
    clock.advance(1)
    [d] = p.due()
    assert d.title == "api is still blocked"
    assert d.body == "waiting 10 min: Allow Bash: make deploy?"
    assert d.critical and d.popup and not d.replaces_burst
    clock.advance(6000)
    assert p.due() == [] and p.next_deadline() is None


def test_resolve_cancels_the_reminder() -> None:
    clock = FakeClock()
    p = policy(clock, escalate_after_s=600)
    p.submit(notice("api", "blocked"))
    p.resolve("api")
    clock.advance(601)
    assert p.due() == [] and p.next_deadline() is None


def test_a_newer_state_cancels_the_reminder() -> None:
    clock = FakeClock()
    p = policy(clock, escalate_after_s=600)
    p.submit(notice("api", "blocked"))
    clock.advance(60)
    p.submit(notice("api", "working"))
    clock.advance(600)
    assert p.due() == []


def test_resolve_drops_a_blocked_change_held_for_a_summary() -> None:
    clock = FakeClock()
    p = policy(clock, coalesce_ms=1000)
    p.submit(notice("a", "done"))
    p.submit(notice("b", "blocked"))
    p.resolve("b")
    clock.advance(1)
    assert p.due() == []  # nothing new left to say; a's popup stands


def test_reminders_are_suppressed_while_the_agent_is_focused() -> None:
    clock = FakeClock()
    focused: set[str] = set()
    p = policy(clock, focused, escalate_after_s=60)
    p.submit(notice("api", "blocked"))
    focused.add("api")
    clock.advance(60)
    assert p.due() == []


# -- config, mode, terminal text -------------------------------------------------


def test_config_defaults_and_validation() -> None:
    c = NotifyConfig()
    assert (c.coalesce_ms, c.quiet_hours, c.escalate_after_s, c.attach_command) == (
        1000,
        None,
        600.0,
        None,
    )
    assert c.states == frozenset({"blocked", "done", "failed"})
    with pytest.raises(ConfigError, match="notify.coalesce_ms"):
        NotifyConfig(coalesce_ms=-1)
    with pytest.raises(ConfigError, match="notify.states: working"):
        NotifyConfig(states=frozenset({"working"}))
    assert NotifyConfig(states=["done"]).states == frozenset({"done"})  # type: ignore[arg-type]


def test_config_from_the_notify_toml_table() -> None:
    c = NotifyConfig.from_table(
        {
            "mode": "terminal",
            "coalesce_ms": 250,
            "quiet_hours": "23:00-06:30",
            "escalate_after_s": 300,
            "attach_command": ["foot", "-e", "mullui", "attach", "{id}"],
            "states": ["blocked", "failed"],
        }
    )
    assert c == NotifyConfig(
        coalesce_ms=250,
        quiet_hours="23:00-06:30",
        escalate_after_s=300,
        attach_command=["foot", "-e", "mullui", "attach", "{id}"],
        states=frozenset({"blocked", "failed"}),
    )
    with pytest.raises(ConfigError, match="notify.quiet_hours"):
        NotifyConfig.from_table({"quiet_hours": "24:00-06:00"})


def test_attach_argv_fills_in_the_agent_id() -> None:
    cfg = NotifyConfig(attach_command=["foot", "-e", "mullui", "attach", "{id}"])
    assert attach_argv(cfg, "a1b2") == ["foot", "-e", "mullui", "attach", "a1b2"]
    assert attach_argv(NotifyConfig(), "a1b2") is None


def test_notify_mode_comes_from_the_environment() -> None:
    assert notify_mode({}) == "desktop"
    assert notify_mode({"MULLUI_NOTIFY": "Terminal"}) == "terminal"
    assert notify_mode({"MULLUI_NOTIFY": "none"}) == "none"
    assert notify_mode({}, configured="terminal") == "terminal"
    assert notify_mode({"MULLUI_NOTIFY": "none"}, configured="terminal") == "none"
    with pytest.raises(MulluiError, match="MULLUI_NOTIFY='popup'"):
        notify_mode({"MULLUI_NOTIFY": "popup"})


def test_terminal_text_cannot_break_out_of_the_escape_sequence() -> None:
    hostile = "done\x1b]0;pwned\x07\x9b2J;next\n\tline" + "x" * 500
    seq = terminal_sequence("api;x is done", hostile)
    osc777, osc9, bell = seq.split("\x07")[0], seq.split("\x07")[1], seq.split("\x07")[2:]
    assert osc777.startswith("\x1b]777;notify;api,x is done;done ]0,pwned 2J,next line")
    assert osc9.startswith("\x1b]9;api,x is done: done")
    assert bell == ["", ""]  # one BEL after OSC 9, one bell of its own
    assert seq.count("\x1b") == 2 and "\x9b" not in seq and "\n" not in seq
    assert osc777.endswith("...") and len(osc777) < 80 + 240 + 20


def test_inside_tmux_the_sequences_use_passthrough() -> None:
    seq = terminal_sequence("a is done", "ok", tmux=True)
    assert seq == (
        "\x1bPtmux;\x1b\x1b]777;notify;a is done;ok\x07\x1b\\"
        "\x1bPtmux;\x1b\x1b]9;a is done: ok\x07\x1b\\"
        "\x07"
    )


# -- the notifier driven by the fake clock (terminal backend, no D-Bus) ---------------


async def test_notifier_delivers_a_burst_summary_to_the_terminal_on_tick() -> None:
    clock = FakeClock()
    tty = io.StringIO()
    toasts: list[tuple[str, str, str]] = []
    n = Notifier(
        "terminal",
        config=NotifyConfig(coalesce_ms=1000, escalate_after_s=0),
        on_action=lambda a, b: None,
        terminal=tty,
        toast=lambda *t: toasts.append(t),
        clock=clock,
        tmux=False,
    )
    await n.start()
    await n.submit(notice("a", "blocked", "Allow Bash?"))
    await n.submit(notice("b", "done"))
    assert tty.getvalue().count("\x1b]777;") == 1
    clock.advance(1)
    await n.tick()
    await n.close()
    assert tty.getvalue().count("\x1b]777;") == 2
    assert "\x1b]777;notify;2 agents need you;a blocked, b done\x07" in tty.getvalue()
    assert toasts == [
        ("a", "a is blocked", "Allow Bash?"),
        ("a", "2 agents need you", "a blocked, b done"),
    ]


async def test_during_quiet_hours_only_the_in_app_toast_is_given() -> None:
    clock = FakeClock(datetime(2025, 3, 4, 23, 0, tzinfo=CEST))
    tty = io.StringIO()
    toasts: list[tuple[str, str, str]] = []
    n = Notifier(
        "terminal",
        config=NotifyConfig(quiet_hours="22:00-07:00"),
        on_action=lambda a, b: None,
        terminal=tty,
        toast=lambda *t: toasts.append(t),
        clock=clock,
    )
    await n.start()
    await n.submit(notice("api", "failed", "exit code 2"))
    await n.close()
    assert tty.getvalue() == ""
    assert toasts == [("api", "api is failed", "exit code 2")]
