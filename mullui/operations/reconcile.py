"""This machine's live agents checked against tmux and the clock: a window gone, a tmux
server gone, an exit whose hook was missed, a stall, a spawn killed half way."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.events import read_events
from mullui.model import RUNNING, Agent, State, utcnow
from mullui.operations.names import slugify
from mullui.runtime import worktrees


def reconcile(ctx: Context, agents: list[Agent]) -> list[Agent]:
    """Compare this machine's live agents with tmux (one ``list-panes -a``) and the stall
    clock.

    A vanished window or a dead tmux server shows as ``failed`` with its cause, a dead
    pane whose hook was missed gets its exit applied, and an agent with no sign of life
    past the stall limit is ``failed: stalled`` - never ``working`` forever.  Agents on
    hosts are left to their host's link (``mullui.remote.mirror``).
    """
    agents = _interrupted_spawns(ctx, agents)
    live = [a for a in agents if a.host is None and a.state in RUNNING and a.tmux_target]
    if not live:
        return agents
    try:
        panes = ctx.tmux.panes()
    except MulluiError:
        panes = None
    changed: dict[str, Agent] = {}
    now = utcnow()
    for a in live:
        if panes is None:
            changed[a.id] = ctx.store.emit(
                a.id, "fail", cause=f"tmux:server-gone (no tmux server on socket {ctx.socket})"
            )
            continue
        pane = panes.get(a.id)
        if pane is None:
            changed[a.id] = ctx.store.emit(a.id, "fail", cause="tmux:window-gone")
            continue
        if pane.dead:
            code = pane.exit_code
            if code is None:
                continue  # tmux has not collected the status yet; the hook follows
            # The pane-died hook may still be on its way; the exit is the same fact.
            changed[a.id] = ctx.store.emit(
                a.id, "exit", exit_code=code, cause=f"exit:{code}", source="tmux:list-panes"
            )
            continue
        stall = stall_deadline(ctx, a)
        if stall is not None and stall <= now:
            changed[a.id] = ctx.store.emit(a.id, "stall", cause="stalled")
    return [changed.get(a.id, a) for a in agents]


def _interrupted_spawns(ctx: Context, agents: list[Agent]) -> list[Agent]:
    """A spawn killed between its "start" and its tmux window (kill -9, a crash) would
    leave its agent "starting" forever, holding a max_running slot: fail it once the
    process that was starting it is gone (its pid is in the "start" event)."""
    out = []
    for a in agents:
        if a.state is State.STARTING and a.host is None and not a.tmux_target:
            events, _ = read_events(ctx.paths.spool_file(a.id))
            pids = [e.get("pid") for e in events if e.get("kind") in ("start", "resume")]
            pid = pids[-1] if pids else None
            if isinstance(pid, int) and pid > 0 and not _alive(pid):
                a = ctx.store.emit(
                    a.id, "fail", cause=f"spawn interrupted (mullui process {pid} is gone)"
                )
                a = _adopt_worktree(ctx, a)
        out.append(a)
    return out


def _adopt_worktree(ctx: Context, a: Agent) -> Agent:
    """The worktree an interrupted spawn made before its record learnt of it: named
    in the record, so ``rm`` can remove it (and refuses to lose work in it)."""
    if a.worktree or not a.repo:
        return a
    slug = slugify(a.name)
    path = worktrees.worktree_path(Path(a.repo), ctx.paths.worktrees_dir, slug, a.id)
    if not path.exists():
        return a
    branch = worktrees.branch_of(path) or worktrees.branch_name(Path(a.repo), slug, a.id)
    fields = {"worktree": str(path), "branch": branch}
    return ctx.store.emit(a.id, "update", fields=fields)


def last_sign_of_life(ctx: Context, a: Agent) -> datetime:
    """Newest of: the last hook/activity event, and the last pane output (log mtime)."""
    t = a.last_activity or a.state_since
    try:
        m = ctx.paths.log_file(a.id).stat().st_mtime
        out = datetime.fromtimestamp(m, tz=t.tzinfo)
        if out > t:
            t = out
    except OSError:
        pass
    return t


def stall_deadline(ctx: Context, a: Agent) -> datetime | None:
    """When a local agent with no sign of life counts as stalled (None: never)."""
    if a.state not in (State.WORKING, State.STARTING) or a.host is not None:
        return None
    if not a.tmux_target or a.removed:
        return None  # reconcile only judges agents it can see in tmux
    return last_sign_of_life(ctx, a) + timedelta(seconds=ctx.config.limits.stall_after_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
