"""Local mirrors of remote agents, kept current by one event stream per host.

The supervisor (the TUI or ``mullui watch``, whichever holds the supervisor lock) runs
one :class:`~mullui.remote.hosts.HostLink` per host that has agents here.  Each entry of
the host's change journal becomes a local ``mirror`` event for the agent with the same
id, so the local store journals it and local notifications, inbox, report and TUI treat
a remote agent like any other.  Exactly once: the link drops replays at or below its
durable cursor, and :func:`mirrored` numbers remote state changes into the local
history only past the remote ``seq`` already taken (kept in the record's
``extra["remote_seq"]``).

Why renumber instead of copying the remote history: the local history also holds
changes the host never saw (``unknown`` while it was away, a stop recorded here), so
local and remote ``seq`` drift apart, and the notifier dedupes by local ``seq``.

A dropped link marks the host's live agents ``unknown`` (never ``failed``); on
reconnect the missed changes replay, and the first heartbeat after the backlog returns
any agent that did not change to the state it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, State, Transition, iso, utcnow
from mullui.remote import dispatch, untrusted
from mullui.remote.hosts import UNREACHABLE, HostLink, cursor_file

log = logging.getLogger(__name__)

#: Fields that belong to the local side: what the user did here (snooze, ack, merge,
#: rm), the local name, the repository the config names, and the bookkeeping of the
#: mirror itself.
LOCAL_ONLY = frozenset(
    {
        "id",
        "name",
        "host",
        "repo",
        "snoozed_until",
        "snooze_until_change",
        "acked_seq",
        "merged_into",
        "merged_sha",
        "removed",
        "collisions",
        "seq",
        "history",
        "extra",
    }
)
_FIELDS = frozenset(f.name for f in dataclasses.fields(Agent))
#: States an unreachable host leaves as they are: they cannot change by themselves.
_SETTLED = (State.STOPPED, State.FAILED, State.UNKNOWN)
#: Entries kept for agents whose local record does not exist yet (a spawn in flight).
PENDING_MAX = 256
#: A stream silent this long counts as dropped (``mullui events`` beats every 10 s).
IDLE_TIMEOUT_S = 35.0


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def mirrored(
    local: Agent, remote: dict[str, Any], now: datetime | None = None
) -> dict[str, Any] | None:
    """The record fields a ``mirror`` event should set on ``local`` for the remote record
    ``remote`` (one entry of the host's journal), or None when it brings nothing new.

    Remote transitions past ``extra["remote_seq"]`` are appended to the local history with
    local sequence numbers (times clamped so history never runs backwards).  An entry
    older than what was already taken is ignored; one with no new transition never moves
    the local state, except out of ``unknown`` (the host answers again).
    """
    now = now or utcnow()
    try:
        target = State(remote["state"])
        rhist = [Transition.from_json(t) for t in remote.get("history") or ()]
    except (KeyError, ValueError, TypeError):
        return None
    rseq = _int(remote.get("seq"))
    taken = _int(local.extra.get("remote_seq"))
    if rseq < taken:
        return None  # a replay of an older state
    rec = {k: v for k, v in remote.items() if k in _FIELDS and k not in LOCAL_ONLY}
    # The host may be compromised: no foreign branch, ref pattern, path or target.
    rec = untrusted.checked(local.id, rec, local.host or "?")
    if local.seq <= 1 and taken == 0:
        # The first news of an agent just spawned: its history on the host replaces the
        # placeholder "starting" recorded here before the host had said anything.
        seq, hist, state = 0, [], None
        last_at = local.created_at
        rec.pop("created_at", None)
    else:
        seq, hist, state = local.seq, list(local.history), local.state
        last_at = hist[-1].at if hist else local.created_at
    for t in rhist:
        if t.seq <= taken or t.state is state:
            continue
        seq += 1
        last_at = max(t.at, last_at)
        hist.append(Transition(seq, t.state, t.cause, last_at))
        state = t.state
    if state is None:
        seq, hist = local.seq, list(local.history)
        state = local.state
    if state is not target:
        if state is State.UNKNOWN:
            # Back from an outage with nothing newer than the host's current state.
            seq += 1
            last_at = max(now, last_at)
            hist.append(Transition(seq, target, str(remote.get("cause") or "reachable"), last_at))
            state = target
        else:
            # A change recorded here that the host has not caught up with (a stop on its
            # way there, a budget stop): the local state stands.
            for k in ("state", "cause", "state_since"):
                rec.pop(k, None)
    if seq != local.seq:
        rec["state_since"] = iso(hist[-1].at)
    rec["seq"] = seq
    rec["history"] = [t.to_json() for t in hist]
    rec["extra"] = {**local.extra, "remote_seq": max(taken, rseq)}
    _keep_ack(local, hist, rec)
    after = Agent.from_record({**local.to_record(), **rec})
    if after.to_record() == local.to_record():
        return None
    return rec


def _keep_ack(local: Agent, hist: list[Transition], rec: dict[str, Any]) -> None:
    """An item the human had handled before the host dropped stays handled when the
    agent comes back in the very same state."""
    if (
        local.state is not State.UNKNOWN
        or len(local.history) < 2
        or len(hist) != len(local.history) + 1
    ):
        return
    before = local.history[-2]
    if local.acked_seq == before.seq and hist[-1].state is before.state:
        rec["acked_seq"] = hist[-1].seq


def returned(local: Agent, now: datetime | None = None) -> dict[str, Any] | None:
    """Record fields for an ``unknown`` agent whose host answers again with no change
    for it: the state (and cause) it had before the outage."""
    if local.state is not State.UNKNOWN or len(local.history) < 2:
        return None
    before = local.history[-2]
    at = max(now or utcnow(), local.history[-1].at)
    seq = local.seq + 1
    hist = [*local.history, Transition(seq, before.state, before.cause, at)]
    rec: dict[str, Any] = {
        "state": before.state.value,
        "cause": before.cause,
        "state_since": iso(at),
        "seq": seq,
        "history": [t.to_json() for t in hist],
    }
    _keep_ack(local, hist, rec)
    return rec


def back_from_unknown(a: Agent, t: Transition) -> bool:
    """True when ``t`` only returns ``a`` from ``unknown`` to the state it had before:
    nothing happened on the host, so nothing is worth a notification."""
    by_seq = {x.seq: x for x in a.history}
    prev, before = by_seq.get(t.seq - 1), by_seq.get(t.seq - 2)
    return (
        prev is not None
        and before is not None
        and prev.state is State.UNKNOWN
        and before.state is t.state
    )


class RemoteLinks:
    """The supervisor's links to the hosts its remote agents run on.

    ``poke(agent_id)`` asks the supervisor to process an agent's change now (its journal
    entry is already written).  Runs inside the supervisor's event loop.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        poke: Callable[[str], None],
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.ctx = ctx
        self.poke = poke
        self.idle_timeout_s = idle_timeout_s
        self.links: dict[str, HostLink] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, dict[str, dict[str, Any]]] = {}
        self._warned: set[str] = set()

    # -- which hosts ----------------------------------------------------------------------
    def sync(self, agents: Iterable[Agent]) -> None:
        """Follow every host that one of ``agents`` runs on (not removed), and apply any
        change that arrived before that agent's local record existed."""
        for a in agents:
            if a.host is None or a.removed:
                continue
            if a.host not in self.links:
                self._start(a.host)
            entry = self._pending.get(a.host, {}).pop(a.id, None)
            if entry is not None:
                self._apply(a.host, a, entry)

    def _start(self, name: str) -> None:
        try:
            cfg, host = dispatch.transport(self.ctx, name)
        except MulluiError as e:
            if name not in self._warned:
                self._warned.add(name)
                print(f"mullui: {e}", file=sys.stderr)
            return
        link = HostLink(
            host,
            cursor_path=cursor_file(self.ctx.paths, name),
            on_event=lambda ev: self._on_event(name, ev),
            on_state=lambda state, since: self._on_state(name, state, since),
            on_caught_up=lambda: self._on_caught_up(name),
            mullui=cfg.mullui,
            idle_timeout_s=self.idle_timeout_s,
            cwd=cfg.repo,
        )
        self.links[name] = link
        self._tasks[name] = asyncio.get_running_loop().create_task(link.run())

    async def close(self) -> None:
        """Stop every link (their remote streams end)."""
        for link in self.links.values():
            link.stop()
        tasks = list(self._tasks.values())
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    # -- callbacks ------------------------------------------------------------------------
    def _host_agents(self, name: str) -> list[Agent]:
        return [a for a in self.ctx.store.all() if a.host == name and not a.removed]

    def _on_event(self, name: str, entry: dict[str, Any]) -> None:
        aid, rec = entry.get("agent"), entry.get("record")
        if not isinstance(aid, str) or not isinstance(rec, dict):
            return
        try:
            local = self.ctx.store.get(aid)
        except MulluiError as e:
            print(f"mullui: {name}: {e}", file=sys.stderr)
            return
        if local is None:
            # Spawned there a moment ago; its local record is being created (sync()
            # applies this when it shows up).  Only the newest record matters.
            pending = self._pending.setdefault(name, {})
            pending.pop(aid, None)
            pending[aid] = rec
            while len(pending) > PENDING_MAX:
                pending.pop(next(iter(pending)))
            return
        if local.host != name or local.removed:
            return
        self._apply(name, local, rec)

    def _apply(self, name: str, local: Agent, rec: dict[str, Any]) -> None:
        fields = mirrored(local, rec)
        if fields is None:
            return
        self.ctx.store.emit(local.id, "mirror", record=fields)
        self.poke(local.id)

    def _on_state(self, name: str, state: str, since: datetime) -> None:
        if state != UNREACHABLE:
            return
        link = self.links.get(name)
        reason = link.reason if link is not None else None
        print(f"mullui: host {name} unreachable: {reason}", file=sys.stderr)
        local_since = since.astimezone().strftime("%H:%M:%S")
        for a in self._host_agents(name):
            if a.state in _SETTLED:
                continue
            self.ctx.store.emit(
                a.id, "unknown", cause=f"host {name} unreachable since {local_since}"
            )
            self.poke(a.id)

    def _on_caught_up(self, name: str) -> None:
        for a in self._host_agents(name):
            fields = returned(a)
            if fields is not None:
                self.ctx.store.emit(a.id, "mirror", record=fields)
                self.poke(a.id)

    # -- for the TUI and `mullui hosts` ---------------------------------------------------------
    def status(self) -> dict[str, tuple[str, datetime, str | None]]:
        """Per followed host: its link state, since when, and why it dropped."""
        return {n: (link.state, link.since, link.reason) for n, link in self.links.items()}
