"""History that costs nothing: finished agents folded into a compact ledger.

An agent whose work is finished - merged, removed, or done/failed/stopped and left alone
for ``[limits] history_after_s`` (14 days) - leaves the live store: ``ls``, ``inbox``, the
TUI's start and the supervisor never read it again.  What it was and what it cost is one
line of ``<state>/ledger.jsonl``, computed when it is folded and never again: its ``ls
--json`` fields, and its ``report`` row (times, tokens, cost, diff stats from git - the
only git call it will ever cost).  ``ls --all`` and ``report`` read that file.

Nothing is lost: the agent's event spool (the source of every record) and its output log
move to ``<state>/history/``, and so does its hook token (a window still open keeps
running hooks with it); only caches (the record, hook payloads, generated settings) are
deleted.  Each step of a fold is atomic and the steps are ordered
so that a kill -9 anywhere leaves the agent live (and folded again next time) or folded:

1. the ledger line is appended and fsynced (a reader keeps the *first* line per id: the
   numbers of the moment the agent finished);
2. the log, then the spool, are renamed into ``history/``;
3. the record and the caches are deleted.

An agent folded while its worktree or branch is still there is not out of reach: an
operation that names it (``rm``, ``merge``, ``ack``, ``resume``, ``send``...) brings it
back first (:func:`revive`: its spool and log return, a ``revived`` line in the ledger),
then acts on it as on any live agent - ``rm`` saves uncommitted work exactly as it
always does.  ``diff`` and ``logs`` read the history without bringing it back.  A revived
agent is not folded again for :data:`REVIVE_GRACE` after it was brought back (the
operation runs meanwhile) - unless that operation removed it, which ends the wait - then
by the usual rules, with a new ledger line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mullui import guard, report
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.events import append_line, encode, new_event, read_events, write_lines
from mullui.files import atomic_write

# The ledger file's reading lives in mullui.history (the report reads it too); re-exported.
from mullui.history import find as find
from mullui.history import folded_ids as folded_ids
from mullui.history import history_dir as history_dir
from mullui.history import ledger_file as ledger_file
from mullui.history import revived_line as revived_line
from mullui.history import rows as rows
from mullui.model import SETTLED, Agent, iso, utcnow
from mullui.paths import Paths
from mullui.reducer import apply_event

#: Agents folded per pass at most (a first pass over months of history is spread out).
FOLD_BATCH = 500
#: An agent brought back from the history stays live at least this long (the operation
#: that brought it back runs meanwhile; a supervisor's fold must not take it away).
REVIVE_GRACE = timedelta(minutes=15)


def due(a: Agent, now: datetime, keep_s: int) -> bool:
    """True when ``a``'s work is finished and it may leave the live store."""
    if a.state not in SETTLED or a.conflict is not None:
        return False
    if a.revived_at is not None and now - a.revived_at < REVIVE_GRACE:
        # just brought back from the history: the operation runs (removed or merged as
        # it may be: its own `removed` or `merged` ends the grace, see mullui.reducer)
        return False
    if a.removed:
        return True
    if a.merged_into is not None:
        # Merged work is finished, but a worktree still on disk is the user's to remove
        # (`mullui rm` after `mullui merge`): the agent stays until it is gone.  A remote
        # agent's worktree is on its host: it stays until removed, or old.
        if a.host is None and not (a.worktree and Path(a.worktree).exists()):
            return True
    return now - a.state_since > timedelta(seconds=keep_s)


def candidates(agents: Iterable[Agent], now: datetime, keep_s: int) -> list[Agent]:
    """The agents to fold: finished, and no live or queued agent waits on them (a chain's
    next step reads its predecessor's record)."""
    agents = list(agents)
    needed = {a.after for a in agents if a.after and a.state not in SETTLED}
    return [a for a in agents if a.id not in needed and due(a, now, keep_s)]


# ---- folding --------------------------------------------------------------------------------
def row_for(ctx: Context, a: Agent, now: datetime) -> dict[str, Any]:
    """The ledger line of ``a``: computed once, here."""
    handled, merged_at = report.handled_times(ctx, a.id)
    stats = report.diff_stats(a)
    return {
        "id": a.id,
        "folded_at": iso(now),
        "ls": a.to_ls_json(),
        "report": report.agent_row(report.whole(ctx, a), handled, merged_at, stats, now),
    }


def fold(ctx: Context, *, now: datetime | None = None, limit: int = FOLD_BATCH) -> int:
    """Fold up to ``limit`` finished agents into the ledger; returns how many."""
    return len(_fold(ctx, ctx.store.all(), now or utcnow(), limit))


def live_and_recent(
    ctx: Context, agents: list[Agent], *, now: datetime | None = None, limit: int = FOLD_BATCH
) -> list[Agent]:
    """``agents`` without those whose work is finished: these are folded into the ledger
    now (each once; at most ``limit`` per call, the rest next time)."""
    try:
        gone = _fold(ctx, agents, now or utcnow(), limit)
    except (MulluiError, OSError) as e:
        print(f"mullui: could not move finished agents to the history: {e}", file=sys.stderr)
        return agents
    return [a for a in agents if a.id not in gone] if gone else agents


def _fold(ctx: Context, agents: list[Agent], now: datetime, limit: int) -> set[str]:
    keep_s = ctx.config.limits.history_after_s
    todo = candidates(agents, now, keep_s)[:limit]
    if todo:
        running = _windows_open(ctx, todo)
        todo = [a for a in todo if a.id not in running]
    if not todo:
        return set()
    done = folded_ids(ctx.paths)
    return {a.id for a in todo if fold_one(ctx, a.id, now=now, keep_s=keep_s, done=done)}


def _windows_open(ctx: Context, todo: list[Agent]) -> set[str]:
    """The agents of ``todo`` due only for their age whose tmux window still runs (an
    agent CLI idle at its prompt for weeks): not history - its hooks would go unseen.
    One ``tmux list-panes``, and only when such an agent is due."""
    aged = [
        a
        for a in todo
        if a.host is None and a.tmux_target and not a.removed and a.merged_into is None
    ]
    if not aged:
        return set()
    try:
        panes = ctx.tmux.panes()
    except MulluiError:
        return set()  # no tmux server: no window runs
    if panes is None:
        return set()
    return {a.id for a in aged if (p := panes.get(a.id)) is not None and not p.dead}


def fold_one(
    ctx: Context,
    agent_id: str,
    *,
    now: datetime | None = None,
    keep_s: int | None = None,
    done: set[str] | None = None,
) -> bool:
    """Fold one agent (under its lock: nothing is applied to it meanwhile)."""
    now = now or utcnow()
    keep = keep_s if keep_s is not None else ctx.config.limits.history_after_s
    paths = ctx.paths
    with ctx.store.locked(agent_id):
        a = ctx.store.catch_up_locked(agent_id)
        if a is None or not due(a, now, keep):
            return False
        hist = history_dir(paths)
        # A revive killed before its ledger line: the spool is in both places (linked).
        half_revived = _same(paths.spool_file(a.id), hist / f"{a.id}.jsonl")
        if half_revived or done is None or a.id not in done:
            line = json.dumps(row_for(ctx, a, now), ensure_ascii=False, default=str)
            data = line.encode() + b"\n"
            if half_revived:
                data = _revived(a.id, now) + data
            append_synced(ledger_file(paths), data)
            if done is not None:
                done.add(a.id)
        hist.mkdir(parents=True, exist_ok=True, mode=0o700)
        for src, dst in (
            (paths.log_file(a.id), hist / f"{a.id}.log"),
            (paths.spool_file(a.id), hist / f"{a.id}.jsonl"),
        ):
            with contextlib.suppress(FileNotFoundError):
                if _same(src, dst):
                    src.unlink()  # rename(2) of a file onto its own link does nothing
                else:
                    os.replace(src, dst)
        _fsync_dir(paths.spool_dir)
        for f in (
            paths.record_file(a.id),
            paths.spool_dir / f"{a.id}.hooks",
        ):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        with contextlib.suppress(FileNotFoundError):
            # Kept: a window still open runs its hooks with it (brought back, they count).
            # Moved after the raw hook spool is gone: a token in history/ tells a revive
            # that a raw spool there now holds only lines written since.
            os.replace(paths.secret_file(a.id), hist / f"{a.id}.token")
        guard.mark_gone(paths.state_dir, a.id, False)  # no record: gone for the guard too
        for f in paths.hookdata_dir.glob(f"{a.id}.*"):
            with contextlib.suppress(OSError):
                f.unlink()
        shutil.rmtree(paths.profile_dir(a.id), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (paths.agents_dir / f"{a.id}.lock").unlink()
    return True


# ---- back from the history ------------------------------------------------------------------
def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _revived(agent_id: str, now: datetime) -> bytes:
    return json.dumps(revived_line(agent_id, str(iso(now)))).encode() + b"\n"


def folded_agent(paths: Paths, row: dict[str, Any]) -> Agent:
    """The folded agent of ledger line ``row`` as its kept events say (read only: it stays
    in the history); from the line itself when its events are not kept."""

    a: Agent | None = None
    events, _ = read_events(history_dir(paths) / f"{row['id']}.jsonl", 0)
    for ev in events:
        with contextlib.suppress(KeyError, ValueError, TypeError):
            a = apply_event(a, ev)
    if a is None:
        fields = {k: v for k, v in row["ls"].items() if k not in ("collisions", "snoozed_until")}
        a = Agent.from_record(fields)
    return a


def revive(ctx: Context, row: dict[str, Any], *, now: datetime | None = None) -> Agent:
    """Bring the folded agent of ledger line ``row`` back to the live store: its spool and
    log return (linked back first, so a kill -9 anywhere leaves it folded, live, or both -
    never neither), with a ``revived`` event (it is not folded again for
    :data:`REVIVE_GRACE`) and its hook token (a new one when none was kept); then the
    ledger says it is live again."""

    now = now or utcnow()
    aid, paths = row["id"], ctx.paths
    hist = history_dir(paths)
    spool = hist / f"{aid}.jsonl"
    moves = ((hist / f"{aid}.log", paths.log_file(aid)), (spool, paths.spool_file(aid)))
    with ctx.store.locked(aid):
        if not spool.exists():
            live = ctx.store.catch_up_locked(aid) if paths.spool_file(aid).exists() else None
            if live is not None:
                return live  # revived already (a spool with no agent in it is not that)
            raise MulluiError(
                f"agent {row['ls'].get('name') or aid} is in the history but its events were "
                f"not kept ({spool} is missing): it cannot be acted on; `mullui ls --all` "
                "shows it"
            )
        for src, dst in moves:
            _absorb(src, dst)
        append_line(spool, encode(new_event("revived")), seal=True)
        token = hist / f"{aid}.token"
        _raw_spool_back(paths, aid, spool, late_only=token.exists())
        if token.exists():  # the one its window's environment holds (hooks of a CLI still open)
            os.replace(token, paths.secret_file(aid))
        elif not paths.secret_file(aid).exists():  # folded by a mullui that kept none
            atomic_write(paths.secret_file(aid), secrets.token_hex(16).encode(), mode=0o600)
        for src, dst in moves:
            _link_back(src, dst)
        append_synced(ledger_file(paths), _revived(aid, now))
        for src, _dst in moves:
            with contextlib.suppress(FileNotFoundError):
                src.unlink()
    return ctx.store.load(aid)


def _raw_spool_back(paths: Paths, agent_id: str, spool: Path, *, late_only: bool) -> None:
    """The fast hook path's raw spool (``spool/<id>.hooks``, deleted by the fold) as long
    again as the agent's events say it was read (``raw_end``; the bytes before are never
    read again: a sparse file of zeros), so that its next hook lines are read, not taken
    for lines already in.  Lines a late hook wrote after the fold are kept, after it:
    all of the file there when ``late_only`` (the fold deleted the old one: its token was
    kept), else (a fold of before, or one killed before it got there) a file shorter
    than that."""

    events, _ = read_events(spool, 0)
    end = max(
        (e["raw_end"] for e in events if type(e.get("raw_end")) is int and e["raw_end"] > 0),
        default=0,
    )
    raw = paths.spool_dir / f"{agent_id}.hooks"
    try:
        late = raw.read_bytes()
    except FileNotFoundError:
        late = b""
    if not end or late[:1] == b"\0":
        return  # nothing was read, or made long already (a revive killed after it)
    if not late_only and len(late) >= end:
        return  # never deleted (a fold killed before it got there)
    tmp = raw.with_name(f".{raw.name}.revive")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, end)
        if late:
            os.pwrite(fd, late, end)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, raw)


def _absorb(src: Path, dst: Path) -> None:
    """What was written to ``dst`` after the fold (a late hook of a window still open,
    more pane output) goes to the end of ``src`` first: nothing written is lost."""
    if not src.exists() or not dst.exists() or _same(src, dst):
        return

    data = dst.read_bytes()
    if data:
        append_line(src, data if data.endswith(b"\n") else data + b"\n", seal=True)


def _link_back(src: Path, dst: Path) -> None:
    """``dst`` becomes another name of ``src`` (atomically; a copy where links fail)."""
    if not src.exists() or _same(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.revive")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    _fsync_dir(dst.parent)


def append_synced(path: Path, data: bytes) -> None:
    """Append whole lines and fsync them before going on."""

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        write_lines(fd, path, data, seal=True)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
