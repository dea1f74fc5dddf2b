"""The one loop: events in -> state -> store -> notifications, queue, collisions.

The supervisor follows the spool directory with watchfiles (inotify; kept apart from the
busy output logs), brings each touched agent's record up to date (the store applies each
event exactly once under the agent's lock and journals the change), then reads the change
journal from its durable cursor: on_change callbacks (the TUI), notifications, starting
queued agents, budgets.  Timers exist only for deadlines that are known (a stall limit, a
snooze ending) plus a slow tmux safety check while local agents run - no per-agent polling.

Exactly one supervisor notifies at a time: ``supervisor.lock`` in the state dir.  It is a
hidden ``mullui watch`` that whoever makes an agent live starts (:mod:`mullui.loop`,
:mod:`mullui.autostart`); TUIs only follow (a TUI supervises itself only when nothing may
be started for it).  A supervisor started that way leaves once nothing is live, queued or
snoozed with a wake time; the next event starts one again, which replays from the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watchfiles import awatch

from mullui import journal as changes
from mullui import ledger, queue, radar
from mullui.config_follow import ConfigChange, ConfigFollower
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.files import atomic_write_json, read_json
from mullui.loop import SupervisorLock, needs_supervisor
from mullui.model import (
    INBOX_STATES,
    RESUME_AFTER_RESTART,
    RUNNING,
    Agent,
    State,
    Transition,
    utcnow,
)
from mullui.operations import lifecycle, reconcile
from mullui.operations.admission import repo_config
from mullui.operations.location import Resume
from mullui.remote.mirror import RemoteLinks, back_from_unknown

#: How often, while local agents are live, tmux is asked whether their windows still
#: exist: a tmux server killed with -9 runs no hooks, so this is the only way to know.
SAFETY_CHECK_S = 30.0

OnChange = Callable[[Agent, tuple[Transition, ...]], None]


# ---- the notify cursor ----------------------------------------------------------------------
@dataclass
class Cursor:
    """How far the journal has been read, and the last notified seq per agent (so a
    journal line replayed after a crash is not notified twice)."""

    offset: int = 0
    seqs: dict[str, int] | None = None

    @classmethod
    def load(cls, path: Path, journal: Path | None = None) -> Cursor:
        try:
            d = read_json(path)
            if d is not None:
                seqs = d.get("seqs") or {}
                cur = cls(int(d.get("offset", 0)), {str(k): int(v) for k, v in seqs.items()})
        except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
            # Torn, or valid JSON of the wrong shape (`{"offset": "x"}`, a list).
            print(
                f"mullui: {path} was corrupt; notifications restart from the journal",
                file=sys.stderr,
            )
            return cls(0, {})
        if d is None:
            return cls(0, {})
        if journal is not None and cur.offset > changes.end_cursor(journal):
            # The journal was cut or replaced behind the cursor: read it again from the
            # start; the per-agent seqs keep what was already told from being told twice.
            # (A cursor from before a compaction is fine: the reader starts at the
            # compacted lines, see mullui.journal.)
            print(
                f"mullui: {path} points past the end of {journal}; re-reading the journal",
                file=sys.stderr,
            )
            cur.offset = 0
        return cur

    def save(self, path: Path) -> None:
        atomic_write_json(path, {"offset": self.offset, "seqs": self.seqs or {}})


# ---- the supervisor ---------------------------------------------------------------------------
class Supervisor:
    """Follow every agent's events and act on each change once."""

    def __init__(
        self,
        ctx: Context,
        *,
        on_change: OnChange | None = None,
        notifier: Any | None = None,
        notify: bool = True,
        run_queue: bool = True,
        idle_exit_s: float | None = None,
        follow_config: bool = True,
        on_config: Callable[[str | None, str | None], None] | None = None,
        on_gone: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        #: hears the ids of agents that left the live store (folded into the history, by
        #: this supervisor or another process): a TUI drops their rows
        self.on_gone = on_gone
        #: reloads the config files on change (mullui.config_follow); ``on_config`` hears
        #: (the reload's line, None) after a reload and (None, the error or None) when an
        #: invalid edit is kept out or fixed (the TUI shows it on its status line)
        self.config: ConfigFollower | None = None
        if follow_config:
            self.config = ConfigFollower(
                ctx, on_reload=self._config_reloaded, on_error=self._config_error
            )
        self.on_config = on_config
        self.paths = ctx.paths
        self.on_change = on_change
        self.notifier = notifier
        self.notify = notify
        self.run_queue = run_queue
        #: Leave :meth:`run` once nothing needed a supervisor for this long (a watch that
        #: started by itself); None: run until :meth:`stop`.
        self.idle_exit_s = idle_exit_s
        self.went_idle = False  # run() returned because nothing was left
        self._has_work = True
        self._idle_since: float | None = None
        self.cursor = Cursor(0, {})
        if notify:
            self.cursor = Cursor.load(self.paths.notify_cursor, self.paths.changes_file)
        if not notify:
            # A non-notifying observer (a second TUI) starts at the journal's end.
            with contextlib.suppress(OSError):
                self.cursor.offset = changes.end_cursor(self.paths.changes_file)
        self._stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._dirty: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._saved_offset = 0
        self._radar: radar.Scheduler | None = None  # the collision radar, while run() runs
        self.last_change_at: float | None = None  # monotonic, for benchmarks
        # Links to the hosts remote agents run on: only the notifying supervisor (the
        # lock holder) follows them, so each remote change is mirrored here once.
        self.remote: Any | None = None

    # -- public ------------------------------------------------------------------------
    async def run(self) -> None:
        """Replay what was missed, then follow the spool until :meth:`stop`."""
        # Follow first, then replay: a line landing between the replay and the moment
        # inotify is set up would otherwise wait for the next event or the safety check.
        ready = asyncio.Event()
        watcher = asyncio.create_task(self._watch(ready))
        following: asyncio.Task[None] | None = None
        config_ready = asyncio.Event()
        if self.config is not None:
            following = asyncio.create_task(self.config.run(config_ready))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5.0)
        if self.config is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(config_ready.wait(), 5.0)
            # An edit made while we were down (or while starting) counts too.
            self.config.reload()
        if self.notify:
            self.remote = RemoteLinks(self.ctx, poke=self.poke)
        if self.notify:  # the one supervisor that notifies keeps the radar (not observers)
            cfg = self.ctx.config
            self._radar = radar.Scheduler(
                self.ctx, cfg.collisions_interval_s, notify=cfg.collisions_notify
            )
        if not self._stop.is_set():
            # A supervisor told to stop while starting (SIGHUP from a dying tmux server)
            # releases its lock at once instead of replaying first.
            self.catch_up_all()
        if self.notify and not self._stop.is_set():
            self.auto_resume()
        if self._radar is not None and not self._stop.is_set():
            self._radar.begin(self.ctx.store.all())
        try:
            while not self._stop.is_set():
                timeout = self._next_timeout()
                if self.idle_exit_s is not None:
                    left = self._idle_left()
                    if left is not None and left <= 0:
                        self.went_idle = True
                        break
                    if left is not None:
                        timeout = left if timeout is None else min(timeout, left)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), timeout)
                self._kick.clear()
                if self._stop.is_set():
                    break
                dirty, self._dirty = self._dirty, set()
                if dirty:
                    self.catch_up(dirty)
                else:
                    self.on_timer()
        finally:
            self._stop.set()
            if self._radar is not None:
                await self._radar.close()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            if following is not None and self.config is not None:
                self.config.stop()
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await following
            if self.remote is not None:
                await self.remote.close()

    def _idle_left(self) -> float | None:
        """Seconds until this supervisor may leave (None: something needs it)."""
        if self._has_work:
            self._idle_since = None
            return None
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        left = self._idle_since + (self.idle_exit_s or 0.0) - now
        if self._tasks:  # notices still on their way out: look again soon
            return max(left, 0.25)
        return max(0.0, left)

    async def stop(self) -> None:
        self._stop.set()
        self._kick.set()

    def pending_notifications(self) -> list[asyncio.Task[Any]]:
        """Notifications handed to the notifier and not yet out (the cursor already
        counts them as told: a stopping supervisor waits for these)."""
        return [t for t in self._tasks if not t.done()]

    def poke(self, agent_id: str | None = None) -> None:
        """Ask for a catch-up now (the TUI calls this after its own actions)."""
        if agent_id:
            self._dirty.add(agent_id)
        self._kick.set()

    # -- work --------------------------------------------------------------------------
    def catch_up_all(self) -> None:
        agents = lifecycle.agents(self.ctx, reconcile=True)
        gone: set[str] = set()
        if self.notify:  # the one supervisor moves finished work to the history
            kept = ledger.live_and_recent(self.ctx, agents)
            gone = {a.id for a in agents} - {a.id for a in kept}
            agents = kept
        self._after_apply(agents)
        self._gone(gone)

    def catch_up(self, ids: set[str]) -> None:
        agents = []
        gone = set()
        for i in ids:
            try:
                a = self.ctx.store.get(i)
            except MulluiError as e:
                print(f"mullui: {e}", file=sys.stderr)
                continue
            if a is not None:
                agents.append(a)
            elif not self.ctx.store.paths.spool_file(i).exists():
                gone.add(i)  # its spool went (to the history): no record, no events
        self._after_apply(agents)
        self._gone(gone)

    def _gone(self, ids: set[str]) -> None:
        """After the journal's last changes of these agents were told: they are gone."""
        if ids and self.on_gone is not None:
            try:
                self.on_gone(ids)
            except Exception as ex:  # a UI callback bug must not stop supervision
                print(f"mullui: on_gone failed: {ex}", file=sys.stderr)

    def auto_resume(self) -> list[Agent]:
        """``[limits] auto_resume``: the agents an interruption failed (a reboot, a dead
        tmux server, a killed CLI) start again, once, as this supervisor starts - cause
        ``resume:after-restart``; ``max_running`` queues the rest.  A resume that cannot
        happen is said on stderr and leaves the agent as it was."""
        out: list[Agent] = []
        for a in lifecycle.interrupted(self.ctx.store.all()):
            if not repo_config(self.ctx, a.repo).limits.auto_resume:
                continue
            try:
                out.append(lifecycle.resume(self.ctx, a.id, Resume(cause=RESUME_AFTER_RESTART)))
            except MulluiError as e:
                print(f"mullui: auto_resume {a.name}: {e}", file=sys.stderr)
        if out:
            self.process_journal()
        return out

    def on_timer(self) -> None:
        """A deadline passed: stall limits, snooze ends, the tmux safety check."""
        self.catch_up_all()

    def _after_apply(self, touched: list[Agent]) -> None:
        if self.config is not None:
            # Outside a repository (`mullui watch` runs in $HOME) the agents' own
            # repositories' .mullui.toml decide their limits: follow those too.
            self.config.follow_repos({Path(a.repo) for a in touched if a.repo})
        if self.remote is not None:
            self.remote.sync(touched)
        self.process_journal()
        if self.run_queue:
            self._queue_tick()

    def _queue_tick(self) -> None:
        try:
            queue.tick(self.ctx)
        except MulluiError as e:
            print(f"mullui: queue: {e}", file=sys.stderr)
        self.process_journal()

    def process_journal(self) -> None:
        """Read new journal lines; callbacks, notifications, budgets; save the cursor."""
        entries = []
        end = self.cursor.offset
        for e, after in changes.read(self.paths.changes_file, self.cursor.offset):
            entries.append(e)
            end = after
        if not entries:
            return
        self.last_change_at = time.monotonic()
        seqs = self.cursor.seqs if self.cursor.seqs is not None else {}
        latest: dict[str, Agent] = {}
        new_tr: dict[str, list[Transition]] = {}
        for e in entries:
            try:
                a = Agent.from_record(e["record"])
                got = [Transition.from_json(t) for t in e.get("transitions") or ()]
            except (KeyError, ValueError, TypeError):
                continue
            latest[a.id] = a
            new_tr.setdefault(a.id, []).extend(t for t in got if t.seq > seqs.get(a.id, 0))
        before = set(self._tasks)
        for aid, a in latest.items():
            trs = tuple(new_tr.get(aid, ()))
            if self.on_change is not None:
                try:
                    self.on_change(a, trs)
                except Exception as ex:  # a UI callback bug must not stop supervision
                    print(f"mullui: on_change failed: {ex}", file=sys.stderr)
            if self._radar is not None:
                self._radar.saw(a, bool(trs))
                told = self._radar.to_tell(a)
                if told is not None:
                    self._notify_conflict(a, told)
            if trs:
                self._on_transitions(a, trs)
                seqs[aid] = max(seqs.get(aid, 0), max(t.seq for t in trs))
            self._budget(a)
        self.cursor.offset = end
        self.cursor.seqs = seqs
        if not self.notify:
            return
        pending = self._tasks - before
        snapshot = Cursor(end, dict(seqs))
        if not pending:
            self._save_cursor(snapshot)
            return

        # Save the cursor only once this batch's notifications went out: after a kill -9
        # in between, a popup shown twice beats a "blocked" never shown.
        async def save_after() -> None:
            await asyncio.gather(*pending, return_exceptions=True)
            self._save_cursor(snapshot)

        task = asyncio.get_running_loop().create_task(save_after())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _save_cursor(self, snapshot: Cursor) -> None:
        if snapshot.offset < self._saved_offset:
            return  # a later batch already saved further
        try:
            snapshot.save(self.paths.notify_cursor)
            self._saved_offset = snapshot.offset
        except MulluiError as e:
            print(f"mullui: {e}", file=sys.stderr)

    def _on_transitions(self, a: Agent, trs: tuple[Transition, ...]) -> None:
        last = trs[-1]
        if a.state is not State.BLOCKED and self.notifier is not None:
            with contextlib.suppress(Exception):
                self.notifier.resolve(a.id)
        if a.exit_code is not None or a.state in (State.STOPPED, State.FAILED):
            lifecycle.release(self.ctx, a)
        # Only the agent's current state is worth a ping: blocked -> working -> done
        # while nobody watched is one "done", not three notifications.
        if last.state is a.state and a.state in INBOX_STATES and self.notify:
            if a.is_snoozed() or a.is_acked():
                return
            if a.host is not None and back_from_unknown(a, last):
                return  # its host came back; the agent did nothing new meanwhile
            self._notify(a, last)

    def _notify(self, a: Agent, t: Transition) -> None:
        if self.notifier is None:
            return
        from mullui.notify import Notice  # D-Bus, ~70 ms: loaded already with a notifier

        notice = Notice(
            agent_id=a.id,
            agent_name=a.name,
            state=a.state.value,
            body=a.why(),
            key=f"{a.id}:{t.seq}",
            at=t.at,
        )
        self._submit(notice)

    def _notify_conflict(self, a: Agent, key: str) -> None:
        """One notification per new conflict (the radar raised an item on ``a``), or per
        new pair and file the collision guard warned about."""
        if self.notifier is None or a.conflict is None:
            return
        from mullui.notify import Notice  # D-Bus, ~70 ms: loaded already with a notifier

        c = a.conflict
        notice = Notice(
            agent_id=a.id,
            agent_name=a.name,
            state="conflict",
            body=", ".join(c.files),
            key=key,
            at=c.since,
            title=(
                f"{a.name} edits a file {c.name} also changed"
                if c.kind == "guard"
                else f"{a.name} conflicts with {c.name}"
            ),
        )
        self._submit(notice)

    def _config_reloaded(self, change: ConfigChange) -> None:
        """A valid edit is in force: tell the log, re-read what was built from the old
        one, and run the queue at once (a raised ``max_running`` starts queued agents)."""
        print(f"mullui: {change.message}", file=sys.stderr, flush=True)
        if self.notifier is not None and change.old.notify != change.new.notify:
            from mullui import notify  # loaded already with a notifier

            try:
                self.notifier.reconfigure(
                    notify.NotifyConfig.from_table(change.new.notify),
                    change.new.notify.get("mode"),
                )
            except MulluiError as e:
                print(f"mullui: notify: {e}", file=sys.stderr, flush=True)
        if self._radar is not None:
            self._radar.interval_s = max(0.5, float(change.new.collisions_interval_s))
            self._radar.notify = change.new.collisions_notify
        if self.on_config is not None:
            self.on_config(change.message, None)
        self._kick.set()

    def _config_error(self, message: str | None) -> None:
        """An invalid edit was kept out (the last good config stays), or it was fixed:
        said in the log, once per distinct error as a notification, and to the face."""
        if message is None:
            print("mullui: config fixed: the file is in force again", file=sys.stderr, flush=True)
        else:
            print(f"mullui: config not reloaded: {message}", file=sys.stderr, flush=True)
            if self.notifier is not None and self.notify:
                from mullui.notify import Notice  # loaded already with a notifier

                digest = hashlib.sha1(message.encode()).hexdigest()[:12]
                self._submit(
                    Notice(
                        agent_id="config",
                        agent_name="mullui config",
                        state="failed",
                        body=message,
                        key=f"config:{digest}",
                        at=utcnow(),
                        title="mullui config not reloaded (the last good one stays)",
                    )
                )
        if self.on_config is not None:
            self.on_config(None, message)

    def _submit(self, notice: Any) -> None:
        if self.notifier is None:
            return
        task = asyncio.get_running_loop().create_task(self.notifier.submit(notice))
        self._tasks.add(task)  # keep a reference: asyncio may drop an unreferenced task
        task.add_done_callback(self._tasks.discard)

    def _budget(self, a: Agent) -> None:
        limit = self.ctx.config.limits.max_cost_usd
        if a.cost_usd is None or not limit or a.cost_usd <= limit:
            return
        if a.state not in RUNNING and a.state is not State.DONE:
            return
        try:
            queue.enforce_budget(self.ctx, a)
        except MulluiError as e:
            print(f"mullui: budget: {e}", file=sys.stderr)

    def _next_timeout(self) -> float | None:
        """Seconds until the nearest known deadline (None: sleep until an event)."""
        now = utcnow()
        deadlines: list[datetime] = []
        live = False
        agents = self.ctx.store.all()
        self._has_work = needs_supervisor(agents, now)
        for a in agents:
            d = reconcile.stall_deadline(self.ctx, a)
            if d is not None:
                deadlines.append(d)
            if a.snoozed_until is not None and a.snoozed_until > now:
                deadlines.append(a.snoozed_until)
            if a.host is None and a.state in RUNNING:
                live = True
        if live:
            deadlines.append(now + timedelta(seconds=SAFETY_CHECK_S))
        if not deadlines:
            return None
        return max(0.05, (min(deadlines) - now).total_seconds())

    async def _watch(self, ready: asyncio.Event | None = None) -> None:
        spool = self.paths.spool_dir
        spool.mkdir(parents=True, exist_ok=True)
        # watchfiles (1.x) says nothing when its watcher is up: touch a sentinel until the
        # first change comes through; from then on no line can slip by unseen.
        sentinel = spool / f".watch-ready-{os.getpid()}"

        async def probe() -> None:
            while ready is not None and not ready.is_set():
                sentinel.touch()
                await asyncio.sleep(0.01)

        prober = asyncio.create_task(probe())
        try:
            # step=20 ms: a hook's line is picked up ~20 ms after it lands (the default
            # 50 ms would eat a third of the 150 ms p95 budget); debounce caps a burst at
            # 200 ms.
            async for changes in awatch(
                spool,
                stop_event=self._stop,
                debounce=200,
                step=20,
                rust_timeout=10_000,
                recursive=False,
            ):
                if ready is not None and not ready.is_set():
                    ready.set()
                    sentinel.unlink(missing_ok=True)
                self._take(changes)
        finally:
            prober.cancel()
            sentinel.unlink(missing_ok=True)
            if ready is not None:
                ready.set()  # stopped before the first change: run() must not wait on

    def _take(self, changes: set[tuple[Any, str]]) -> None:
        for _change, path in changes:
            p = Path(path)
            if p.suffix in (".jsonl", ".hooks"):  # hooks' raw lines (fasthook/spool.sh)
                self._dirty.add(p.stem)
        self._kick.set()


__all__ = ["Cursor", "OnChange", "Supervisor", "SupervisorLock"]
