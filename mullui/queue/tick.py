"""Acting on the queue's plan: start the queued agents that may start now, keep the
cause of those that wait up to date.  Called by the supervisor after every change.

Everything lives in the agents' records and spools, so a queue survives a restart of
mullui and of tmux: the next tick picks up where the last one stopped.  What may start
when is decided in ``mullui.operations.admission``.
"""

from __future__ import annotations

import sys

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import CANNOT_START, Agent, State
from mullui.operations import lifecycle
from mullui.operations.admission import (
    admission,
    config_for,
    expand_for_start,
    plan,
)


def _start(ctx: Context, a: Agent) -> Agent:
    a = expand_for_start(ctx, a)
    return lifecycle.start(ctx, a.id)


def _not_started(ctx: Context, a: Agent, why: str) -> None:
    """A start that failed.  Failures inside the launch already marked the agent failed;
    one before it (its profile gone from the config, no tmux) leaves it queued, and then
    its cause says so - once, not on every tick - and the next tick tries again."""
    now = ctx.store.get(a.id)
    if now is None or now.state is not State.QUEUED:
        return
    cause = f"{CANNOT_START}{why}"
    if now.cause != cause:
        print(f"mullui: could not start {a.name}: {why}", file=sys.stderr)
        ctx.store.emit(a.id, "state", state="queued", cause=cause)


def tick(ctx: Context) -> list[Agent]:
    """Start the queued agents that may start now (oldest first) and refresh the cause of
    those that keep waiting (an event only when the cause changed).  Returns the agents
    started.  A start that fails marks that agent failed (the start records the
    cause); the tick goes on with the others."""
    started: list[Agent] = []
    with admission(ctx):
        agents = ctx.store.all()
        decisions = plan(agents, config_for(ctx, agents))
        for a, reason in decisions:
            if reason is not None:
                if a.cause != reason:
                    ctx.store.emit(a.id, "state", state="queued", cause=reason)
                continue
            try:
                s = _start(ctx, a)
            except MulluiError as e:
                _not_started(ctx, a, str(e))
                continue
            except Exception as e:  # a runtime bug must not kill the supervisor's loop
                _not_started(ctx, a, f"{type(e).__name__}: {e}")
                continue
            if s is not None:
                started.append(s)
    return started
