"""The supervisor's radar: when collisions are recomputed, and the cache kept for it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from mullui.collisions import CollisionCache
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.radar.members import eligible
from mullui.radar.refresh import NewConflict, refresh
from mullui.store import atomic_write_json, read_json


def _without_radar(a: Agent) -> Agent:
    return dataclasses.replace(a, collisions=(), conflict=None)


class Scheduler:
    """When the supervisor recomputes collisions, and the one cache it keeps for it.

    * a state change, an exit, a merge, a removal, a new worktree: at once, for that agent;
    * any other event of a working agent (an edit hook, activity), or new output in its
      pane's log (a shell agent has no hooks that would say it edited a file): at most
      once per ``interval_s`` per agent;
    * a working agent that shows no sign of life costs one ``stat`` of its log per
      ``interval_s``, no git; with no agent working there is no timer at all.

    The git work runs in the radar's own worker thread, one refresh at a time; what arrives
    meanwhile is folded into the next one.  Not ``asyncio.to_thread``: ``asyncio.run``
    joins the default executor on exit, and a stopping supervisor (a TUI taking over from
    ``mullui watch``) must let go of its lock without waiting for git.  The radar's own
    ``collisions`` events come back through the journal and are recognized as such (no
    refresh loop).
    """

    def __init__(self, ctx: Context, interval_s: float, *, notify: bool = True) -> None:
        self.ctx = ctx
        self.interval_s = max(0.5, float(interval_s))
        self.notify = notify
        self.cache = CollisionCache()
        self.runs = 0  # refreshes done (tests, benchmarks)
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mullui-radar")
        self._inflight: Future[list[NewConflict]] | None = None
        self._pending: set[str] | None = set()  # None: everyone
        self._want = False
        self._seen: dict[str, Agent] = {}
        self._checked: dict[str, float] = {}  # monotonic: a working agent's last look
        self._refreshed: dict[str, float] = {}  # monotonic: its last refresh
        self._output: dict[str, int] = {}  # its log's mtime (ns) at the last look
        self._stirred: set[str] = set()  # events since its last refresh, not yet refreshed
        self._working: set[str] = set()
        self._errors: set[str] = set()
        self._told_path = ctx.paths.notify_cursor.with_name("conflicts-told.json")
        self._told: dict[str, str] | None = None
        self._closed = False
        # Requests wait until begin(): the supervisor's catch-up at start must not share
        # the records' locks (and the GIL) with a refresh thread, and begin() checks
        # everyone anyway.
        self._begun = False

    # -- input ---------------------------------------------------------------------------
    def request(self, ids: Iterable[str] | None) -> None:
        """Refresh now for ``ids`` (None: everyone)."""
        if ids is None:
            self._pending = None
        elif self._pending is not None:
            self._pending.update(ids)
        self._want = True
        self._start()

    def begin(self, agents: Iterable[Agent]) -> None:
        """Start from the current records (after the supervisor's catch-up): everyone once."""
        for a in agents:
            if a.id not in self._seen:
                self._seen[a.id] = a
                self._track(a)
        self._begun = True
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        self.request(None)

    def saw(self, a: Agent, state_changed: bool) -> None:
        """One applied change from the journal."""
        prev = self._seen.get(a.id)
        self._seen[a.id] = a
        self._track(a)
        if prev is None:
            if eligible(a) or a.collisions:
                self.request([a.id])
            return
        if state_changed or any(
            getattr(prev, f) != getattr(a, f)
            for f in ("removed", "merged_into", "branch", "worktree", "base", "exit_code")
        ):
            self.request([a.id])
        elif a.id in self._working and _without_radar(prev) != _without_radar(a):
            if time.monotonic() - self._refreshed.get(a.id, 0.0) >= self.interval_s:
                self.request([a.id])
            else:
                self._stirred.add(a.id)  # the ticker refreshes it when its interval is up

    def _track(self, a: Agent) -> None:
        if a.state is State.WORKING and eligible(a):
            if a.id not in self._working:
                self._working.add(a.id)
                self._checked[a.id] = time.monotonic()
                self._output[a.id] = self._log_mtime(a.id)
                self._wake.set()
        else:
            self._working.discard(a.id)
            self._stirred.discard(a.id)

    # -- timing ----------------------------------------------------------------------------
    def timeout(self) -> float | None:
        """Seconds until a working agent is looked at again (None: nothing works)."""
        if not self._working:
            return None
        due = min(self._checked.get(i, 0.0) for i in self._working) + self.interval_s
        return max(0.0, due - time.monotonic())

    def tick(self) -> None:
        """Look at the working agents that are due: refresh those that stirred."""
        now = time.monotonic()
        stirred: list[str] = []
        for i in list(self._working):
            if now - self._checked.get(i, 0.0) < self.interval_s - 0.01:
                continue
            self._checked[i] = now
            mtime = self._log_mtime(i)
            if i in self._stirred or mtime != self._output.get(i):
                stirred.append(i)
            self._output[i] = mtime
        if stirred:
            self.request(stirred)

    def _log_mtime(self, agent_id: str) -> int:
        try:
            return self.ctx.paths.log_file(agent_id).stat().st_mtime_ns
        except OSError:
            return 0

    async def _tick_loop(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.timeout())
            self._wake.clear()
            self.tick()

    # -- work --------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._closed or not self._begun or not self._want:
            return
        if self._task is not None and not self._task.done():
            return
        ids, self._pending, self._want = self._pending, set(), False
        self._task = asyncio.get_running_loop().create_task(self._run(ids))

    async def _run(self, ids: set[str] | None) -> None:
        started = time.monotonic()
        touched = set(self._seen) if ids is None else ids
        self._stirred -= touched
        try:
            self._inflight = self._pool.submit(refresh, self.ctx, self.cache, ids)
            await asyncio.wrap_future(self._inflight)
            self.runs += 1
        except MulluiError as e:
            if str(e) not in self._errors:  # a lasting problem is said once, not every 5 s
                self._errors.add(str(e))
                print(f"mullui: collisions: {e}", file=sys.stderr)
        except Exception as e:  # the radar must never take the supervisor down
            print(f"mullui: collisions: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        for i in touched:
            self._refreshed[i] = started
        self._start()  # what arrived meanwhile

    async def close(self) -> None:
        """Stop at once: a refresh in flight finishes in its thread (its result is still
        written), then the cache's scratch objects go."""
        self._closed = True
        for task in (self._ticker, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._pool.shutdown(wait=False, cancel_futures=True)
        running = self._inflight
        if running is not None and not running.done():
            running.add_done_callback(lambda _f: self.cache.close())
        else:
            self.cache.close()

    # -- notifications ---------------------------------------------------------------------------
    def to_tell(self, a: Agent) -> str | None:
        """The dedupe key of a conflict item of ``a`` not yet notified (None: nothing new).
        Remembered on disk: a restarted supervisor replaying the journal tells no twice."""
        if self._told is None:
            try:
                d = read_json(self._told_path)
            except (ValueError, UnicodeDecodeError):
                d = None
            self._told = {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else {}
        item = a.conflict if a.has_conflict_item() else None
        if item is None:
            if self._told.pop(a.id, None) is not None:
                self._save_told()
            return None
        key = f"conflict:{a.id}:{item.agent}:{item.since.isoformat()}"
        if self._told.get(a.id) == key:
            return None
        self._told[a.id] = key
        self._save_told()
        return key if self.notify and not a.is_snoozed() else None

    def _save_told(self) -> None:
        with contextlib.suppress(MulluiError, OSError):
            atomic_write_json(self._told_path, self._told)
