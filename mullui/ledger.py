"""History that costs nothing: finished agents folded into a compact ledger.

An agent whose work is finished - merged, removed, or done/failed/stopped and left alone
for ``[limits] history_after_s`` (14 days) - leaves the live store: ``ls``, ``inbox``, the
TUI's start and the supervisor never read it again.  What it was and what it cost is one
line of ``<state>/ledger.jsonl``, computed when it is folded and never again: its ``ls
--json`` fields, and its ``report`` row (times, tokens, cost, diff stats from git - the
only git call it will ever cost).  ``ls --all`` and ``report`` read that file.

Nothing is lost: the agent's event spool (the source of every record) and its output log
move to ``<state>/history/``; only caches (the record, hook payloads, the hook token,
generated settings) are deleted.  Each step of a fold is atomic and the steps are ordered
so that a kill -9 anywhere leaves the agent live (and folded again next time) or folded:

1. the ledger line is appended and fsynced (a reader keeps the *first* line per id: the
   numbers of the moment the agent finished);
2. the log, then the spool, are renamed into ``history/``;
3. the record and the caches are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mullui import report
from mullui.context import Context
from mullui.errors import MulluiError

# The ledger file's reading lives in mullui.history (the report reads it too); re-exported.
from mullui.history import folded_ids as folded_ids
from mullui.history import history_dir as history_dir
from mullui.history import ledger_file as ledger_file
from mullui.history import rows as rows
from mullui.model import Agent, State, iso, utcnow

#: States a folded agent can be in (never a live one).
FINISHED = frozenset({State.DONE, State.FAILED, State.STOPPED})
#: Agents folded per pass at most (a first pass over months of history is spread out).
FOLD_BATCH = 500


def due(a: Agent, now: datetime, keep_s: int) -> bool:
    """True when ``a``'s work is finished and it may leave the live store."""
    if a.state not in FINISHED or a.conflict is not None:
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
    needed = {a.after for a in agents if a.after and a.state not in FINISHED}
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
        "report": report.agent_row(a, handled, merged_at, stats, now),
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
    if not todo:
        return set()
    done = folded_ids(ctx.paths)
    return {a.id for a in todo if fold_one(ctx, a.id, now=now, keep_s=keep_s, done=done)}


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
        if done is None or a.id not in done:
            line = json.dumps(row_for(ctx, a, now), ensure_ascii=False, default=str)
            append_synced(ledger_file(paths), line.encode() + b"\n")
            if done is not None:
                done.add(a.id)
        hist = history_dir(paths)
        hist.mkdir(parents=True, exist_ok=True, mode=0o700)
        for src, dst in (
            (paths.log_file(a.id), hist / f"{a.id}.log"),
            (paths.spool_file(a.id), hist / f"{a.id}.jsonl"),
        ):
            with contextlib.suppress(FileNotFoundError):
                os.replace(src, dst)
        _fsync_dir(paths.spool_dir)
        for f in (
            paths.record_file(a.id),
            paths.spool_dir / f"{a.id}.hooks",
            paths.secret_file(a.id),
        ):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        for f in paths.hookdata_dir.glob(f"{a.id}.*"):
            with contextlib.suppress(OSError):
                f.unlink()
        shutil.rmtree(paths.profile_dir(a.id), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (paths.agents_dir / f"{a.id}.lock").unlink()
    return True


def append_synced(path: Path, data: bytes) -> None:
    """Append whole lines and fsync them before going on."""
    from mullui.events import write_lines

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
