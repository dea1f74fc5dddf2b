"""Budgets: an agent that spent more than ``max_cost_usd`` is stopped."""

from __future__ import annotations

from mullui.context import Context
from mullui.model import OVER_BUDGET, RUNNING, Agent, State
from mullui.operations import lifecycle
from mullui.operations.admission import repo_config


def over_budget(a: Agent, limit: float) -> bool:
    """True when ``a`` spent more than ``limit`` dollars (0 = no limit)."""
    return bool(limit) and a.cost_usd is not None and a.cost_usd > limit


def budget_of(ctx: Context, a: Agent) -> float:
    """The agent's own limit (raised on resume: ``resume --budget``), else ``[limits]
    max_cost_usd`` of its repository."""
    own = a.extra.get("max_cost_usd")
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return float(own)
    return repo_config(ctx, a.repo).limits.max_cost_usd


def enforce_budget(ctx: Context, agent: Agent) -> Agent | None:
    """Stop an agent that spent more than ``max_cost_usd``; returns it (now failed) or None.

    The agent becomes ``failed`` with cause ``over budget: $12.34 > $10.00`` - failed, not
    stopped, because stopped is the user's own act and never in the inbox, while an agent
    stopped for its spending needs the human.  Paused, not lost: ``mullui resume --budget
    USD`` (``R`` in the TUI) raises the agent's own limit and continues it.  The ``fail``
    event is written before the pane is stopped so the process's exit (``exit:130``)
    cannot overtake it.  A ``done`` agent is stopped too: its idle session is one message
    away from spending again.
    """
    a = ctx.store.get(agent.id) or agent
    limit = budget_of(ctx, a)
    if not over_budget(a, limit) or a.state not in (*RUNNING, State.DONE):
        return None
    cause = f"{OVER_BUDGET}${a.cost_usd:.2f} > ${limit:.2f}"
    a = ctx.store.emit(a.id, "fail", cause=cause)
    lifecycle.halt(ctx, a)
    return ctx.store.get(a.id) or a
