"""Agent records: atomic writes, tolerant reads, catch-up from the spool, rebuild.

A record is ``agents/<id>.json``: the agent fields plus ``_offset`` (how far into the
spool it has applied) and ``_eids`` (recent event ids, to drop a duplicated line).
Bringing a record up to date takes the agent's lock, so two processes (the supervisor
and a ``mullui ls``) never apply the same event twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mullui import guard, journal, rawspool
from mullui.errors import MulluiError, NotFound
from mullui.events import (
    Event,
    append_event,
    append_line,
    at_line_start,
    encode,
    new_event,
    read_events,
    seal_torn_tail,
)

# Re-exported: the state files' writers moved down to the core (mullui.files).
from mullui.files import atomic_write as atomic_write
from mullui.files import atomic_write_json as atomic_write_json
from mullui.files import read_json as read_json
from mullui.model import Agent, Transition
from mullui.paths import Paths
from mullui.reducer import apply_event

RECENT_EIDS = 64

#: A parsed record: (agent, spool offset, raw spool offset, recent eids).
_Parsed = tuple[Agent, int, int, tuple[str, ...]]


def _size(path: Path) -> int:
    """The file's size, -1 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


class Store:
    """All agents of one mullui instance."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._unsaved = False  # a failed save was reported
        # records as last read or written: (inode, size, mtime_ns) -> parsed
        self._records: dict[str, tuple[tuple[int, int, int], _Parsed]] = {}
        paths.ensure()

    # ---- ids ---------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Every agent that has a spool or a record (a lost record is rebuilt)."""
        found = {p.stem for p in self.paths.spool_dir.glob("*.jsonl")}
        found |= {p.stem for p in self.paths.agents_dir.glob("*.json")}
        return sorted(found)

    # ---- writing -------------------------------------------------------------------
    def create(self, agent: Agent) -> tuple[Agent, str]:
        """Record a new agent; returns it and its hook token."""
        token = secrets.token_hex(16)
        secret = self.paths.secret_file(agent.id)
        atomic_write(secret, token.encode(), mode=0o600)
        rec = agent.to_record()
        for k in ("history", "seq"):
            rec.pop(k, None)
        self.append(agent.id, new_event("created", record=rec))
        return self.load(agent.id), token

    def append(self, agent_id: str, ev: Event) -> Event:
        return append_event(self.paths, agent_id, ev)

    def emit(self, agent_id: str, kind: str, **data: Any) -> Agent:
        """Append one event and return the record with it applied."""
        self.append(agent_id, new_event(kind, **data))
        return self.load(agent_id)

    def token(self, agent_id: str) -> str | None:
        try:
            return self.paths.secret_file(agent_id).read_text().strip()
        except OSError:
            return None

    # ---- reading -------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, agent_id: str) -> Iterator[None]:
        lock = self.paths.agents_dir / f"{agent_id}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_record(self, agent_id: str) -> tuple[Agent | None, int, int, list[str], bool]:
        """(agent, spool offset, raw hook spool offset, recent eids, corrupt).  A record
        this Store wrote or read, unchanged on disk since (same inode, size and mtime), is
        not parsed again: an agent with a long history costs one parse, not one per event."""
        path = self.paths.record_file(agent_id)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None, 0, 0, [], False
        except OSError:
            st = None
        key = (st.st_ino, st.st_size, st.st_mtime_ns) if st is not None else None
        hit = self._records.get(agent_id)
        if key is not None and hit is not None and hit[0] == key:
            cached, off, roff, recent = hit[1]
            return cached, off, roff, list(recent), False
        try:
            d = read_json(path)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None, 0, 0, [], True
        if d is None:
            return None, 0, 0, [], False
        if not isinstance(d, dict) or d.get("id") != agent_id:
            return None, 0, 0, [], True  # valid JSON, but not this agent's record ([1, 2])
        try:
            a = Agent.from_record(d)
            off, roff = int(d.get("_offset", 0)), int(d.get("_raw_offset", 0))
            eids = [str(e) for e in d.get("_eids", [])]
        except (KeyError, ValueError, TypeError, AttributeError):
            return None, 0, 0, [], True
        if key is not None:
            self._records[agent_id] = (key, (a, off, roff, tuple(eids)))
        return a, off, roff, eids, False

    def _write_record(self, agent_id: str, a: Agent, rec: dict[str, Any]) -> None:
        """Write the record whole (compact JSON: the C encoder, ~10x the indented one on a
        long history) and remember it as read."""
        path = self.paths.record_file(agent_id)
        data = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), default=str)
        if a.removed or a.merged_into is not None:
            # the collision guard's fast hook reads no record: tell it first (no syscall
            # for the live agents every event writes; the fold removes the mark)
            guard.mark_gone(self.paths.state_dir, agent_id)
        atomic_write(path, data.encode())
        try:
            st = os.stat(path)
        except OSError:
            self._records.pop(agent_id, None)
            return
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        state = (a, int(rec["_offset"]), int(rec["_raw_offset"]), tuple(rec["_eids"]))
        self._records[agent_id] = (key, state)

    def load(self, agent_id: str) -> Agent:
        """The agent's record brought up to date with its spool."""
        a = self.get(agent_id)
        if a is None:
            raise NotFound(f"no agent {agent_id!r}: `mullui ls` lists them")
        return a

    def get(self, agent_id: str) -> Agent | None:
        spool = self.paths.spool_file(agent_id)
        a, offset, roffset, eids, corrupt = self._read_record(agent_id)
        size = _size(spool)
        rsize = _size(self.paths.spool_dir / f"{agent_id}.hooks")
        if a is not None and not corrupt and size == offset and rsize <= roffset:
            return a  # fast path: nothing new, no lock
        if size < 0 and not corrupt:
            return a  # no events: nothing to catch up (and no lock file left for nothing)
        with self._locked(agent_id):
            return self._catch_up(agent_id)

    def locked(self, agent_id: str) -> contextlib.AbstractContextManager[None]:
        """The agent's lock: no event is applied to it while held (the history fold)."""
        return self._locked(agent_id)

    def catch_up_locked(self, agent_id: str) -> Agent | None:
        """The record brought up to date, for a caller that holds :meth:`locked`."""
        return self._catch_up(agent_id)

    def _catch_up(self, agent_id: str) -> Agent | None:
        """Apply what the spool (and the raw hook spool) hold past the record; under the
        agent's lock."""
        spool = self.paths.spool_file(agent_id)
        a, offset, roffset, eids, corrupt = self._read_record(agent_id)
        size = _size(spool)
        if corrupt:
            print(
                f"mullui: record {self.paths.record_file(agent_id)} was torn or corrupt; "
                "rebuilt from its event log",
                file=sys.stderr,
            )
            a, offset, roffset, eids = None, 0, 0, []
        if size < 0:
            return a
        before = a
        if a is not None and not at_line_start(spool, offset):
            # The spool was cut or rewritten behind the record (a torn last line cut
            # off by hand, a restored backup): replay it whole, the record is a cache.
            print(
                f"mullui: event log {spool} no longer matches its record (cut short or "
                "torn); record rebuilt from the events that remain",
                file=sys.stderr,
            )
            a, offset, roffset, eids, corrupt = None, 0, 0, [], True
        start, raw_start = offset, roffset
        seen = set(eids)
        added: list[Transition] = []  # every state change applied now (the journal's delta)
        a, offset, roffset = self._apply_spool(
            agent_id, a, offset, roffset, eids, seen, added, quiet=corrupt
        )
        raw_path = self.paths.spool_dir / f"{agent_id}.hooks"
        rounds = 0
        exited = False
        while a is not None and _size(raw_path) > roffset and rounds < 64:
            # Hook events stored by the fast path: translated here, appended to the
            # spool (each with its raw_end), then applied like any other event.
            rounds += 1
            batch = rawspool.translate_raw(self.paths, agent_id, roffset, a.profile)
            if batch.end == roffset:
                break
            if batch.events:
                append_line(spool, b"".join(encode(e) for e in batch.events), seal=True)
            rawspool.remove_files(batch.done_files)
            a, offset, _ = self._apply_spool(agent_id, a, offset, batch.end, eids, seen, added)
            roffset = max(roffset, batch.end)
            exited = exited or any(e.get("kind") == "exit" for e in batch.events)
        if offset == start and roffset == raw_start and not corrupt and a is before:
            return a
        if a is None:
            return None
        rec = a.to_record()
        try:
            self._journal(before, rec, added)
            rec["_offset"] = offset
            rec["_raw_offset"] = roffset
            rec["_eids"] = eids[-RECENT_EIDS:]
            self._write_record(agent_id, a, rec)
        except (MulluiError, OSError) as e:
            # The record is a cache of the spool: on a full disk show the agent as its
            # events say and save it on a later read (no half record: writes are
            # atomic).  Said once per process, not once per agent.
            if not self._unsaved:
                self._unsaved = True
                why = e.message if isinstance(e, MulluiError) else f"{e.strerror} ({e.filename})"
                print(f"mullui: {why} (agents shown unsaved)", file=sys.stderr)
        if exited:
            rawspool.after_exit(a)
        return a

    def _apply_spool(
        self,
        agent_id: str,
        a: Agent | None,
        offset: int,
        roffset: int,
        eids: list[str],
        seen: set[str],
        added: list[Transition],
        *,
        quiet: bool = False,
    ) -> tuple[Agent | None, int, int]:
        """Fold the spool's complete lines from ``offset``; returns (agent, new offset,
        raw offset: the furthest ``raw_end`` seen).  The state changes made go to
        ``added`` (the record keeps only the last ones)."""
        spool = self.paths.spool_file(agent_id)
        size = _size(spool)
        events, new_offset = read_events(spool, offset)
        end = seal_torn_tail(spool, new_offset) if new_offset < size else None
        if end is not None and not quiet:
            print(
                f"mullui: event log {spool} ended in a torn line (a writer died "
                f"mid-line at byte {new_offset}); skipped it",
                file=sys.stderr,
            )
        if end is not None:
            new_offset = end
        for ev in events:
            r = ev.get("raw_end")
            if isinstance(r, int) and not isinstance(r, bool) and r > roffset:
                roffset = r
            eid = ev.get("eid")
            if isinstance(eid, str) and eid in seen:  # a hand-edited line: any type
                continue
            if isinstance(eid, str):
                eids.append(eid)
                seen.add(eid)
            seq = a.seq if a is not None else 0
            try:
                a = apply_event(a, ev)
            except (KeyError, ValueError, TypeError) as e:
                print(f"mullui: {agent_id}: skipped a malformed event ({e})", file=sys.stderr)
            if a is not None and a.seq != seq:
                added.extend(t for t in a.history if t.seq > seq)
        return a, new_offset, roffset

    def _journal(self, before: Agent | None, new: dict[str, Any], added: list[Transition]) -> None:
        """Append the applied change (``new``: the record as ``Agent.to_record()``;
        ``added``: the state changes applied, all of them even past what the record
        keeps) to ``changes.jsonl`` (the notifier's, the TUI's and remote mirrors' feed;
        see :mod:`mullui.journal`) *before* the record is written: a crash in between
        replays the events, and readers drop the duplicate by (agent, seq)."""
        old = before.to_record() if before is not None else None
        if old == new:
            return
        made = [t.to_json() for t in added]
        journal.append(
            self.paths.changes_file,
            journal.encode(journal.entry(old, new, made)),
            keep=lambda aid: self.paths.record_file(aid).exists(),
        )

    def full_history(self, a: Agent) -> tuple[Transition, ...]:
        """Every state change of ``a`` (as its record stands), oldest first.  The record
        keeps the last :data:`~mullui.model.HISTORY_KEEP`; the ones before are replayed
        from its append-only spool (the report and the ledger's fold read them; no
        per-event path does).  Takes no lock: callers may hold the agent's."""
        if len(a.history) >= a.seq or not a.history:
            return a.history
        first = a.history[0].seq
        events, _ = read_events(self.paths.spool_file(a.id))
        older: dict[int, Transition] = {}
        b: Agent | None = None
        seen: set[str] = set()
        for ev in events:
            eid = ev.get("eid")
            if isinstance(eid, str):
                if eid in seen:
                    continue
                seen.add(eid)
            seq = b.seq if b is not None else 0
            try:
                b = apply_event(b, ev)
            except (KeyError, ValueError, TypeError):
                continue
            if b is None or b.seq == seq:
                continue
            for t in b.history:
                if seq < t.seq < first:
                    older[t.seq] = t
            if b.seq >= first:
                break  # the rest is in the record
        return (*(older[k] for k in sorted(older)), *a.history)

    def all(self) -> list[Agent]:
        out = []
        for i in self.ids():
            a = self.get(i)
            if a is not None:
                out.append(a)
        return sorted(out, key=lambda a: (a.created_at, a.id))

    def resolve(self, ref: str) -> Agent:
        """An agent by id, unique id prefix, or name."""
        ids = self.ids()
        if ref in ids:
            return self.load(ref)
        agents = self.all()
        by_name = [a for a in agents if a.name == ref]
        if len(by_name) == 1:
            return by_name[0]
        pref = [a for a in agents if a.id.startswith(ref)] if ref else []
        if len(pref) == 1:
            return pref[0]
        if len(by_name) > 1 or len(pref) > 1:
            raise MulluiError(f"{ref!r} names several agents: use the id from `mullui ls`")
        raise NotFound(f"no agent {ref!r}: `mullui ls` lists them")
