"""When to tell the human, and what: the pure part of notifications.

No I/O and no event loop here: the policy is fed notices and clock readings and answers
with :class:`Delivery` values; :mod:`mullui.notify.notifier` turns those into popups,
terminal sequences and toasts.  That keeps every hygiene rule testable with a fake clock.

Timing design (latency target: state change -> Notify p95 < 250 ms, with a 1 s burst
window): the *first* notice after a quiet period is delivered at once (leading edge);
notices arriving within ``coalesce_ms`` of the last popup are held and, when the window
closes, delivered as one summary that covers the whole burst (leading notice included)
and replaces the burst's earlier popup.  So a lone change is never delayed, a burst of
ten costs at most two popups with one left on screen, and a steady stream is throttled
to one popup per window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Defined with the config that validates them; kept importable from here.
from mullui.config import QuietHours as QuietHours
from mullui.config import parse_quiet_hours as parse_quiet_hours
from mullui.errors import ConfigError

#: The states worth interrupting a human for (SPEC: the inbox states).
NOTIFIED_STATES: frozenset[str] = frozenset({"blocked", "done", "failed"})
#: Not a state: an agent's work newly conflicts with another's (collision radar).  Always
#: notified (``[collisions] notify`` decides upstream), never coalesced away by states.
CONFLICT = "conflict"
#: States whose popup is urgent: someone is waiting, or something broke.
CRITICAL_STATES: frozenset[str] = frozenset({"blocked", "failed", CONFLICT})
#: How many agents a summary names before "and N more".
SUMMARY_NAMES = 6
#: In-memory dedupe memory; the supervisor's durable cursor covers restarts.
SEEN_KEYS_MAX = 10_000


@dataclass(frozen=True)
class Notice:
    """One agent state change worth telling the human about."""

    agent_id: str
    agent_name: str
    state: str  # "blocked" | "done" | "failed" | "conflict"; others are ignored
    body: str  # why: the question / tool call, the last message, "exit code 3"
    key: str  # unique per state change (e.g. f"{agent_id}:{seq}"): the dedupe key
    at: datetime  # when the change happened (UTC)
    reminder: bool = False  # set by the policy on its one escalation re-notice
    title: str | None = None  # instead of "NAME is STATE" ("a conflicts with b")


@dataclass(frozen=True)
class NotifyConfig:
    """The ``[notify]`` table of config.toml; every field has a default."""

    coalesce_ms: int = 1000  # burst window; 0 = never coalesce
    quiet_hours: str | None = None  # "22:00-07:00", local time; None = never quiet
    escalate_after_s: float = 600.0  # re-notify a still-blocked agent once; 0 = never
    attach_command: list[str] | None = None  # argv run for "Attach" with no TUI; {id}
    states: frozenset[str] = field(default=NOTIFIED_STATES)  # which states notify
    #: True: desktop popups even while a TUI's terminal has focus (its toast shows them too)
    popup_when_tui_focused: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.coalesce_ms, bool) or self.coalesce_ms < 0:
            raise ConfigError(f"notify.coalesce_ms must be >= 0, got {self.coalesce_ms!r}")
        if self.escalate_after_s < 0:
            raise ConfigError(
                f"notify.escalate_after_s must be >= 0 (0 disables), got {self.escalate_after_s!r}"
            )
        unknown = set(self.states) - NOTIFIED_STATES
        if unknown:
            raise ConfigError(
                f"notify.states: {', '.join(sorted(unknown))} cannot notify; "
                f"choose from {', '.join(sorted(NOTIFIED_STATES))}"
            )
        if not isinstance(self.states, frozenset):
            object.__setattr__(self, "states", frozenset(self.states))
        if self.quiet_hours is not None:
            parse_quiet_hours(self.quiet_hours)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> NotifyConfig:
        """From the ``[notify]`` TOML table (types already checked by config.py);
        ``mode`` is not policy and is left to :func:`notify_mode`."""
        kw = {k: v for k, v in table.items() if k != "mode"}
        if "attach_command" in kw:
            kw["attach_command"] = list(kw["attach_command"])
        if "states" in kw:
            kw["states"] = frozenset(kw["states"])
        try:
            return cls(**kw)
        except TypeError as e:  # an unknown key: config.py should have caught it
            raise ConfigError(f"[notify]: {e}") from e

    @property
    def quiet(self) -> QuietHours | None:
        return None if self.quiet_hours is None else parse_quiet_hours(self.quiet_hours)


def attach_argv(config: NotifyConfig, agent_id: str) -> list[str] | None:
    """``attach_command`` with ``{id}`` filled in, or None when none is configured.

    For ``mullui watch``: with no TUI open, an "Attach" click has to open a terminal."""
    if not config.attach_command:
        return None
    return [part.replace("{id}", agent_id) for part in config.attach_command]


class Clock(Protocol):
    """Two readings: a monotonic one for windows and timers, local wall time for quiet
    hours.  Tests pass a fake."""

    def monotonic(self) -> float: ...

    def local_now(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def local_now(self) -> datetime:
        return datetime.now().astimezone()


@dataclass(frozen=True)
class Delivery:
    """What to show now: one notice, or a summary of a burst."""

    notices: tuple[Notice, ...]
    popup: bool  # False in quiet hours or while a TUI has focus: in-app only (toast)
    replaces_burst: bool = False  # a summary superseding the burst's earlier popup(s)

    @property
    def agent_id(self) -> str:
        """The agent a click selects: the single one, or the burst's first."""
        return self.notices[0].agent_id

    @property
    def is_summary(self) -> bool:
        return len(self.notices) > 1

    @property
    def critical(self) -> bool:
        return any(n.state in CRITICAL_STATES for n in self.notices)

    @property
    def title(self) -> str:
        if self.is_summary:
            return f"{len(self.notices)} agents need you"
        n = self.notices[0]
        if n.title:
            return n.title
        still = "still " if n.reminder else ""
        return f"{n.agent_name} is {still}{n.state}"

    @property
    def body(self) -> str:
        if self.is_summary:
            named = [
                f"{n.agent_name} {'conflicts' if n.state == CONFLICT else n.state}"
                for n in self.notices[:SUMMARY_NAMES]
            ]
            rest = len(self.notices) - SUMMARY_NAMES
            return ", ".join(named) + (f", and {rest} more" if rest > 0 else "")
        n = self.notices[0]
        return n.body or _DEFAULT_BODY.get(n.state, n.state)


_DEFAULT_BODY = {
    "blocked": "waiting for your answer",
    "done": "finished; its work awaits review",
    "failed": "stopped with an error",
    CONFLICT: "its changes conflict with another agent's",
}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


class NotifyPolicy:
    """Dedupe, focus suppression, quiet hours, burst coalescing and escalation.

    Single-threaded: call it from one event loop.  ``submit``/``due`` return what to
    deliver; nothing here blocks or sleeps."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        is_focused: Callable[[str], bool] = lambda agent_id: False,
        in_app: Callable[[], bool] = lambda: False,
        clock: Clock | None = None,
    ) -> None:
        """``is_focused(agent_id)``: the human is looking at that agent (its pane): say
        nothing at all.  ``in_app()``: the human is looking at a TUI (its terminal has
        focus): its inbox and toast tell them, so no desktop popup or terminal sequence
        (deliveries come with ``popup=False``, as in quiet hours)."""
        self.config = config
        self._quiet = config.quiet
        self._is_focused = is_focused
        self._in_app = in_app
        self._clock: Clock = clock or SystemClock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._burst: dict[str, Notice] = {}  # agent -> notice, on screen in this burst
        self._pending: dict[str, Notice] = {}  # held for the burst summary
        self._last_popup: float | None = None
        self._flush_at: float | None = None
        self._escalations: dict[str, tuple[float, Notice]] = {}

    def reconfigure(self, config: NotifyConfig) -> None:
        """Use an edited config from now on (dedupe and burst state are kept)."""
        self.config = config
        self._quiet = config.quiet

    @property
    def window_s(self) -> float:
        return self.config.coalesce_ms / 1000

    def submit(self, notice: Notice) -> list[Delivery]:
        """Take one state change; answer with what to show now (maybe nothing)."""
        if notice.key in self._seen:
            return []
        self._seen[notice.key] = None
        if len(self._seen) > SEEN_KEYS_MAX:
            self._seen.popitem(last=False)
        if notice.state == CONFLICT:
            return self._route(notice)  # not a state change: the agent's reminder stays
        # Any newer change of this agent supersedes its old escalation.
        self._escalations.pop(notice.agent_id, None)
        if notice.state not in self.config.states:
            # The agent moved on (e.g. back to working): what we hold about it is stale.
            self._forget(notice.agent_id, states=NOTIFIED_STATES)
            return []
        if notice.state == "blocked" and self.config.escalate_after_s > 0:
            deadline = self._clock.monotonic() + self.config.escalate_after_s
            self._escalations[notice.agent_id] = (deadline, notice)
        return self._route(notice)

    def resolve(self, agent_id: str) -> None:
        """The agent left ``blocked``: cancel its reminder and drop held blocked news."""
        self._escalations.pop(agent_id, None)
        self._forget(agent_id, states=frozenset({"blocked"}))

    def due(self) -> list[Delivery]:
        """Deliveries whose time has come (burst summaries, escalations)."""
        now = self._clock.monotonic()
        out: list[Delivery] = []
        for agent_id, (deadline, notice) in list(self._escalations.items()):
            if now >= deadline:
                del self._escalations[agent_id]
                waited = self.config.escalate_after_s
                reminder = Notice(
                    agent_id=notice.agent_id,
                    agent_name=notice.agent_name,
                    state=notice.state,
                    body=f"waiting {_minutes(waited)}: {notice.body or _DEFAULT_BODY['blocked']}",
                    key=f"{notice.key}#reminder",
                    at=notice.at,
                    reminder=True,
                )
                out += self._route(reminder)
        if self._flush_at is not None and now >= self._flush_at:
            out += self._flush(now)
        return out

    def next_deadline(self) -> float | None:
        """Monotonic time of the next thing ``due`` would deliver, if any."""
        times = [d for d, _ in self._escalations.values()]
        if self._flush_at is not None:
            times.append(self._flush_at)
        return min(times, default=None)

    def _forget(self, agent_id: str, *, states: frozenset[str]) -> None:
        for held in (self._pending, self._burst):
            n = held.get(agent_id)
            if n is not None and n.state in states:
                del held[agent_id]
        if not self._pending:
            self._flush_at = None

    def _is_quiet(self) -> bool:
        return self._quiet is not None and self._quiet.contains(self._clock.local_now().time())

    def _no_popup(self) -> bool:
        """Quiet hours, or the human is at a TUI: in-app only."""
        if self._is_quiet():
            return True
        return not self.config.popup_when_tui_focused and self._in_app()

    def _route(self, notice: Notice) -> list[Delivery]:
        if self._is_focused(notice.agent_id):
            self._pending.pop(notice.agent_id, None)
            return []
        if self._no_popup():
            return [Delivery((notice,), popup=False)]
        now = self._clock.monotonic()
        window = self.window_s
        quiet_period = self._last_popup is None or now - self._last_popup >= window
        if window == 0 or (self._flush_at is None and quiet_period):
            self._burst = {notice.agent_id: notice}
            self._last_popup = now
            return [Delivery((notice,), popup=True)]
        self._pending.pop(notice.agent_id, None)  # re-insert: keep arrival order
        self._pending[notice.agent_id] = notice
        if self._flush_at is None:
            assert self._last_popup is not None
            self._flush_at = self._last_popup + window
        return []

    def _flush(self, now: float) -> list[Delivery]:
        self._flush_at = None
        fresh = {a: n for a, n in self._pending.items() if not self._is_focused(a)}
        self._pending.clear()
        if not fresh:
            return []
        if self._no_popup():
            # Quiet hours began (or the human came to a TUI) while these were held:
            # in-app only, no summary popup.
            return [Delivery((n,), popup=False) for n in fresh.values()]
        self._burst = {a: n for a, n in self._burst.items() if not self._is_focused(a)}
        replaces = bool(self._burst)
        self._burst.update(fresh)
        self._last_popup = now
        return [Delivery(tuple(self._burst.values()), popup=True, replaces_burst=replaces)]
