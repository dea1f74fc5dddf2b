"""The collision radar wired into mullui: agents' records in, ``collisions`` events out.

:mod:`mullui.collisions` answers "whose unmerged work overlaps, and would it conflict" from
git alone.  This module decides *which* agents take part (local agents with a branch whose
work is neither merged nor removed: working, blocked, done, failed or stopped alike),
writes each agent's collisions into its record through a ``collisions`` event (only when
they changed, so an idle fleet writes nothing), and raises one inbox item per *new*
conflict, held by the newer agent of the pair.

Callers: the supervisor (with a long-lived :class:`CollisionCache`, on state changes and
every ``[collisions] interval_s`` while agents work), ``mullui ls`` and ``mullui collisions``
(one throwaway cache per call; skipped outright when fewer than two agents have work).

Two processes may refresh at once (a ``mullui ls`` while the supervisor works); each
writes what it saw, and the reducer only raises a conflict item when the record did not
already know that conflict, so the race can leave a result one refresh stale, never a
duplicate inbox item.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mullui.collisions import (
    BaseDrift,
    CollisionCache,
    MergePlan,
    Work,
    base_drift,
    find_collisions,
    merge_order,
)
from mullui.collisions import Collision as FoundCollision
from mullui.errors import MulluiError
from mullui.model import Agent, Collision, State
from mullui.store import atomic_write_json, read_json

if TYPE_CHECKING:
    from mullui.workspace import Workspace

SHOWN_FILES = 5  # files named in one line of text before "and N more"


@dataclass(frozen=True)
class NewConflict:
    """A conflict the records did not know yet; ``agent`` (the newer one) holds its item."""

    agent: str
    other: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Pair:
    """Two agents whose change sets share files."""

    a: Agent
    b: Agent
    files: tuple[str, ...]
    conflict: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "agents": [self.a.id, self.b.id],
            "names": [self.a.name, self.b.name],
            "files": list(self.files),
            "conflict": self.conflict,
            "base": None,
        }


@dataclass
class Report:
    """What ``mullui collisions`` shows: pairs, conflicts with moved bases, merge orders."""

    pairs: list[Pair] = field(default_factory=list)
    drifts: list[tuple[Agent, BaseDrift]] = field(default_factory=list)
    plans: list[tuple[list[Agent], MergePlan]] = field(default_factory=list)

    def to_json(self) -> list[dict[str, Any]]:
        """Pairs of agents, then each agent against its base where merging would conflict
        (``agents`` holds one id, ``base`` names the base, ``behind`` counts its commits
        since the fork)."""
        out = [p.to_json() for p in self.pairs]
        for a, d in self.drifts:
            out.append(
                {
                    "agents": [a.id],
                    "names": [a.name],
                    "files": list(d.conflict_files or d.files),
                    "conflict": d.conflict,
                    "base": d.base,
                    "behind": d.behind,
                }
            )
        return out

    def to_text(self) -> str:
        if not self.pairs and not self.drifts:
            return "no collisions: no two agents touch the same files"
        lines: list[str] = []
        for p in self.pairs:
            kind = "CONFLICT" if p.conflict else "overlap"
            lines.append(f"{kind:8}  {p.a.name} <-> {p.b.name}: {_names(p.files)}")
        for a, d in self.drifts:
            moved = f"{d.behind} commit{'s' if d.behind != 1 else ''} ahead"
            lines.append(
                f"{'CONFLICT':8}  {a.name} <-> {d.base} ({moved}): "
                f"{_names(d.conflict_files or d.files)}"
            )
        for members, plan in self.plans:
            lines.append(advice(members, plan))
        return "\n".join(lines)


def _names(files: Sequence[str]) -> str:
    more = len(files) - SHOWN_FILES
    shown = ", ".join(files[:SHOWN_FILES])
    return f"{shown} and {more} more" if more > 0 else shown


# ---- who takes part ----------------------------------------------------------------------
def eligible(a: Agent) -> bool:
    """A local agent with a branch whose work is not merged or removed."""
    return (
        a.host is None
        and bool(a.branch and a.repo and a.base)
        and not a.removed
        and a.merged_into is None
        and Path(a.repo or "").is_dir()
    )


def work_of(a: Agent) -> Work:
    assert a.branch and a.repo and a.base
    wt = Path(a.worktree) if a.worktree else None
    return Work(
        agent_id=a.id,
        repo=Path(a.repo),
        worktree=wt if wt is not None and wt.is_dir() else None,
        branch=a.branch,
        base=a.base,
    )


def _base_ok(w: Work) -> bool:
    r = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{w.base}^{{commit}}"],
        cwd=w.repo,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return r.returncode == 0


def _find(
    works: list[Work], cache: CollisionCache | None, changed: Collection[str] | None
) -> tuple[list[Work], dict[str, list[FoundCollision]]]:
    """find_collisions, leaving out agents whose base ref is gone (deleted, renamed): one
    such agent must not blind the radar for everyone else."""
    try:
        return works, find_collisions(works, cache, changed)
    except MulluiError:
        kept = [w for w in works if _base_ok(w)]
        if len(kept) == len(works):
            raise
        return kept, find_collisions(kept, cache, changed)


# ---- refresh -------------------------------------------------------------------------------
def refresh(
    ws: Workspace,
    cache: CollisionCache | None = None,
    changed: Collection[str] | None = None,
    agents: Sequence[Agent] | None = None,
) -> list[NewConflict]:
    """Recompute every agent's collisions and write those that changed into the records.

    ``changed``: agents that may have changed since the last call with the same ``cache``
    (None: check everyone).  Returns the conflicts that are new.  With fewer than two
    agents that have work no git runs at all (stale markers are still cleared).
    """
    everyone = list(ws.store.all() if agents is None else agents)
    local = [a for a in everyone if a.host is None]
    works = [work_of(a) for a in local if eligible(a)]
    found: dict[str, list[FoundCollision]] = {}
    if len(works) >= 2:
        _, found = _find(works, cache, changed)
    elif cache is not None:
        cache.close()  # nothing to compare: drop what the cache holds
    return _record(ws, local, found)


def _record(
    ws: Workspace, local: list[Agent], found: dict[str, list[FoundCollision]]
) -> list[NewConflict]:
    by_id = {a.id: a for a in local}
    new: list[NewConflict] = []
    for a in local:
        now = tuple(Collision(c.agent, c.files, c.conflict) for c in found.get(a.id, ()))
        if now == a.collisions:
            continue
        before = {c.agent for c in a.collisions if c.conflict}
        item: dict[str, Any] | None = None
        for c in now:
            other = by_id.get(c.agent)
            if not c.conflict or c.agent in before or other is None:
                continue
            # One inbox item per conflict: the newer agent of the pair holds it (it is the
            # one that walked into the other's work).
            if (a.created_at, a.id) < (other.created_at, other.id):
                continue
            if other.collisions and any(x.agent == a.id and x.conflict for x in other.collisions):
                continue  # the other side already knew: not new
            if item is None:  # one item per agent; the rest stay visible as markers
                item = {"agent": other.id, "name": other.name, "files": list(c.files)}
            new.append(NewConflict(a.id, other.id, c.files))
        data: dict[str, Any] = {"collisions": [c.to_json() for c in now]}
        if item is not None:
            data["conflict"] = item
        ws.store.emit(a.id, "collisions", **data)
    return new


def supervisor_alive(ws: Workspace) -> bool:
    """A supervisor (TUI or ``mullui watch``) seems to hold the lock, so it keeps the
    records' collisions fresh.  Judged by the pid in the lock file, never by taking the
    lock: a probe holding it for an instant would make a watch starting then give up."""
    import os

    try:
        text = ws.paths.supervisor_lock.read_text().strip()
        pid = int(text) if text else 0
    except (OSError, ValueError):
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The pid may have been reused since that supervisor ended; its cmdline says.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return b"mullui" in cmdline


def refresh_quietly(ws: Workspace, agents: Sequence[Agent] | None = None) -> bool:
    """``refresh`` for ``ls``-like commands: a git problem is one line on stderr, never a
    failed listing.  True when something was recomputed."""
    try:
        refresh(ws, agents=agents)
    except MulluiError as e:
        print(f"mullui: collisions not updated: {e}", file=sys.stderr)
        return False
    return True


# ---- the report ----------------------------------------------------------------------------
def collisions_report(ws: Workspace) -> Report:
    """Refresh the records and describe every pair, base conflict and merge order."""
    local = [a for a in ws.store.all() if a.host is None]
    members = [a for a in local if eligible(a)]
    cache = CollisionCache()
    try:
        works = [work_of(a) for a in members]
        found: dict[str, list[FoundCollision]] = {}
        if works:
            works, found = _find(works, cache, None)
        _record(ws, local, found)
        by_id = {a.id: a for a in members}
        rep = Report()
        for a in members:
            for c in found.get(a.id, ()):
                if a.id < c.agent:
                    pa, pb = sorted((a, by_id[c.agent]), key=lambda x: (x.created_at, x.id))
                    rep.pairs.append(Pair(pa, pb, c.files, c.conflict))
        rep.pairs.sort(key=lambda p: (not p.conflict, p.a.name, p.b.name))
        for w in works:
            d = base_drift(w, cache)
            if d.conflict:
                rep.drifts.append((by_id[w.agent_id], d))
        involved = {p.a.id for p in rep.pairs} | {p.b.id for p in rep.pairs}
        involved |= {a.id for a, _ in rep.drifts}
        groups: dict[tuple[Path, str], list[Work]] = {}
        for w in works:
            groups.setdefault((w.repo, w.base), []).append(w)
        for (_, base), group in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            if len(group) < 2 or not any(w.agent_id in involved for w in group):
                continue
            plan = merge_order(group, base, cache)
            rep.plans.append(([by_id[w.agent_id] for w in group], plan))
        return rep
    finally:
        cache.close()


def advice(members: Sequence[Agent], plan: MergePlan) -> str:
    """One line: the merge order into the target that stays clean, or why there is none."""
    names = {a.id: a.name for a in members}
    if plan.order is not None:
        order = ", ".join(names.get(i, i) for i in plan.order)
        return f"merge order into {plan.target} that stays clean: {order or '(nothing to merge)'}"
    if plan.blockers:
        b = plan.blockers[0]
        other = names.get(b.other, b.other) if b.other else plan.target
        why = f"{names.get(b.agent, b.agent)} conflicts with {other} on {_names(b.files)}"
    elif plan.exhausted:
        why = "too many agents to try every order"
    else:
        why = "every order conflicts"
    more = len(plan.blockers) - 1
    tail = f" (and {more} more)" if more > 0 else ""
    return f"no clean merge order into {plan.target}: {why}{tail}"


def merge_advice(ws: Workspace, agent: Agent, target: str) -> str | None:
    """For a refused merge of ``agent`` into ``target``: the order of the pending merges
    into ``target`` (this agent's included) that stays clean, when one exists and it is
    not simply "this one first".  None when there is no better order to propose."""
    pending = [
        a
        for a in ws.store.all()
        if eligible(a) and a.repo == agent.repo and (a.base == target or a.id == agent.id)
    ]
    if len(pending) < 2 or agent.id not in {a.id for a in pending}:
        return None
    plan = merge_order([work_of(a) for a in pending], target)
    if plan.order is None or not plan.order or plan.order[0] == agent.id:
        return None
    if agent.id not in plan.order:
        return None
    return advice(pending, plan)


def agents_with_work(agents: Iterable[Agent]) -> int:
    """How many agents take part in the radar (for callers deciding whether to bother)."""
    return sum(1 for a in agents if eligible(a))


# ---- the supervisor's radar ------------------------------------------------------------------
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

    def __init__(self, ws: Workspace, interval_s: float, *, notify: bool = True) -> None:
        self.ws = ws
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
        self._told_path = ws.paths.notify_cursor.with_name("conflicts-told.json")
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
            return self.ws.paths.log_file(agent_id).stat().st_mtime_ns
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
            self._inflight = self._pool.submit(refresh, self.ws, self.cache, ids)
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
