"""Chains: ``[chains.NAME]`` steps created at once as queued agents linked by ``after``,
and how a run of them is shown as one unit."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mullui.agents import get_profile
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.operations import lifecycle, records
from mullui.operations.admission import admission, deferring, substitute
from mullui.operations.names import slugify, taken_names
from mullui.queue.tick import tick

D = State.DONE


@dataclass(frozen=True)
class ChainRun:
    """One run of a chain, for showing it as one unit: its steps and where it stands."""

    run: str
    chain_name: str
    steps: tuple[Agent, ...]  # ordered by step
    total: int  # steps the chain has (a step may have been removed)

    @property
    def current(self) -> Agent | None:
        """The step that decides the run's state: the first one not done."""
        for s in self.steps:
            if s.state is not D:
                return s
        return self.steps[-1] if self.steps else None

    @property
    def state(self) -> str:
        cur = self.current
        if cur is None:
            return "empty"
        if all(s.state is D for s in self.steps) and len(self.steps) == self.total:
            return "done"
        return cur.state.value

    def summary(self) -> str:
        """``step 2/3 plan-critique-2: working`` and the like."""
        cur = self.current
        if cur is None:
            return f"{self.chain_name}: no steps"
        if self.state == "done":
            return f"{self.chain_name}: all {self.total} steps done"
        return (
            f"{self.chain_name}: step {cur.chain_step or '?'}/{self.total} {cur.name}: "
            f"{cur.state.value} ({cur.why()})"
        )


def chain_runs(agents: Sequence[Agent]) -> list[ChainRun]:
    """Every chain run among ``agents``, oldest first."""
    runs: dict[str, list[Agent]] = {}
    for a in agents:
        if a.chain:
            runs.setdefault(a.chain, []).append(a)
    out = []
    for run, steps in runs.items():
        steps.sort(key=lambda a: (a.chain_step or 0, a.created_at))
        total = max([int(s.extra.get("chain_steps", 0) or 0) for s in steps] + [len(steps)])
        out.append(ChainRun(run, steps[0].chain_name or run, tuple(steps), total))
    return sorted(out, key=lambda r: (r.steps[0].created_at, r.run))


def _free_names(ctx: Context, stem: str, count: int) -> str:
    """A name stem for which ``stem-1 .. stem-count`` are all free."""
    taken = taken_names(ctx)
    candidate, n = stem, 2
    while any(f"{candidate}-{i}" in taken for i in range(1, count + 1)):
        candidate = f"{stem}-{n}"
        n += 1
    return candidate


def spawn_chain(
    ctx: Context,
    chain_name: str,
    task: str,
    *,
    name: str | None,
    base: str | None,
    host: str | None,
) -> Agent:
    """Create every step of ``[chains.NAME]`` as queued agents linked by ``after``; the
    first starts at once when the limits allow.  Returns the first step."""
    cfg = ctx.config
    steps = cfg.chains.get(chain_name)
    if not steps:
        known = ", ".join(sorted(cfg.chains)) or "none configured"
        raise MulluiError(
            f"no chain {chain_name!r} (known: {known}): add [chains.{chain_name}] steps "
            "to config.toml or .mullui.toml"
        )
    for s in steps:  # fail before creating anything
        get_profile(s.agent or cfg.default_agent, cfg.profiles)
    stem = _free_names(ctx, name or slugify(task), len(steps))
    run = f"{slugify(chain_name, 16)}-{secrets.token_hex(3)}"
    created: list[Agent] = []
    # The admission lock keeps a running supervisor's tick from starting step 1 while
    # the later steps do not exist yet; the tick below (re-entrant) starts it.
    with admission(ctx), deferring(f"chain {chain_name}: being created"):
        prev: Agent | None = None
        for i, s in enumerate(steps, 1):
            extra: dict[str, Any] = {
                "chain": run,
                "chain_name": chain_name,
                "chain_step": i,
                "chain_steps": len(steps),
                "chain_task": task,
            }
            step_name = f"{stem}-{i}" if not s.name else f"{stem}-{i}-{slugify(s.name, 16)}"
            try:
                a = lifecycle.spawn(
                    ctx,
                    substitute(s.task, {"task": task}),
                    agent=s.agent or None,
                    name=step_name,
                    base=base if prev is None else None,
                    after=prev.id if prev else None,
                    host=host,
                    extra=extra,
                )
            except MulluiError:
                for c in created:  # no half chain: the steps made so far go away
                    records.forget(ctx, c.id)
                raise
            created.append(a)
            prev = a
        tick(ctx)
    return ctx.store.get(created[0].id) or created[0]
