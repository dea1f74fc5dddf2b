"""One agent's lifecycle, wherever it runs: spawn, start, resume, send, stop, rm, attach,
diff, logs, snooze, wake, ack.  Each operation finds the agent's :class:`Location` once and
lets it act; none of them starts the supervisor (the face does, see ``mullui.watch``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, iso, utcnow
from mullui.operations import reconcile as health
from mullui.operations.location import Resume
from mullui.operations.locations import location_at, location_for


def agents(ctx: Context, *, reconcile: bool = True) -> list[Agent]:
    """Every agent, caught up with its events and (optionally) checked against tmux."""
    found = ctx.store.all()
    return health.reconcile(ctx, found) if reconcile else found


def spawn(
    ctx: Context,
    task: str,
    *,
    agent: str | None = None,
    name: str | None = None,
    base: str | None = None,
    after: str | None = None,
    host: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Agent:
    """Create an agent on this machine or on ``host``; start it now or leave it queued
    (``--after``, limits)."""
    return location_at(ctx, host).spawn(
        task, agent=agent, name=name, base=base, after=after, extra=extra
    )


def start(ctx: Context, agent_id: str) -> Agent:
    """Launch a queued agent where it is to run."""
    a = ctx.store.load(agent_id)
    return location_for(ctx, a).start(a)


def resume(ctx: Context, ref: str, how: Resume | None = None) -> Agent:
    """Start a stopped or failed agent again where it runs, continuing its conversation
    (now, or queued for a free ``max_running`` slot)."""
    a = ctx.get(ref)
    return location_for(ctx, a).resume(a, how or Resume())


def interrupted(agents: list[Agent]) -> list[Agent]:
    """The agents an interruption failed (dead tmux server or window, reboot, a killed
    CLI), oldest first: what ``resume --all`` and ``[limits] auto_resume`` start again."""
    return sorted((a for a in agents if a.is_interrupted()), key=lambda a: (a.created_at, a.id))


def send(ctx: Context, ref: str, text: str, *, raw: bool = False) -> Agent:
    """Type the reply ``text`` into the agent's pane (+ Enter; a permission dialog's own
    keys while the agent is blocked on one, unless ``raw``)."""
    a = ctx.get(ref)
    location_for(ctx, a).send(a, text, raw=raw)
    return a


def attach_argv(ctx: Context, ref: str) -> list[str] | None:
    """Switch to the agent's pane. Inside tmux on our server: switch-client and return
    None; otherwise the argv to run in the foreground (returns when the user detaches)."""
    a = ctx.get(ref)
    return location_for(ctx, a).attach_argv(a)


def stop(ctx: Context, ref: str) -> Agent:
    """Stop the agent's process; its worktree and record stay."""
    a = ctx.get(ref)
    return location_for(ctx, a).stop(a)


def release(ctx: Context, a: Agent) -> None:
    """An agent's process ended: free what it held (its worktree's lock)."""
    location_for(ctx, a).release(a)


def halt(ctx: Context, a: Agent) -> None:
    """Stop the process of an agent already marked failed (over budget)."""
    location_for(ctx, a).halt(a)


def rm(ctx: Context, ref: str, *, force: bool = False) -> tuple[Agent, str | None]:
    """Remove the worktree (and window); refuses to lose work (see SPEC)."""
    a = ctx.get(ref)
    return location_for(ctx, a).rm(a, force=force)


def diff(ctx: Context, ref: str, *, color: bool = True) -> str:
    """The agent's changes against its base."""
    a = ctx.get(ref)
    return location_for(ctx, a).diff(a, color=color)


def logs(ctx: Context, ref: str, *, follow: bool = False, raw: bool = False) -> int:
    """Print the agent's pane log; with ``follow``, until its process has ended."""
    a = ctx.get(ref)
    return location_for(ctx, a).logs(a, follow=follow, raw=raw)


def snooze(
    ctx: Context,
    ref: str,
    *,
    minutes: float | None = None,
    until: datetime | None = None,
    until_change: bool = False,
) -> Agent:
    """Keep the agent out of the inbox and quiet for a while, or until its next change."""
    a = ctx.get(ref)
    if until_change:
        return ctx.store.emit(a.id, "snooze", until_change=True)
    if until is None:
        if minutes is None:
            raise MulluiError("snooze needs --for DURATION or --until-change")
        until = utcnow() + timedelta(minutes=minutes)
    return ctx.store.emit(a.id, "snooze", until=iso(until))


def wake(ctx: Context, ref: str) -> Agent:
    """End a snooze."""
    a = ctx.get(ref)
    return ctx.store.emit(a.id, "wake")


def ack(ctx: Context, ref: str) -> Agent:
    """The human has handled the agent's news: out of the inbox until it changes."""
    a = ctx.get(ref)
    return ctx.store.emit(a.id, "ack")
