"""All agents: state (colour + symbol), name, profile, time in state, tokens, cost, branch.

A chain reads as one unit: a row of its own (its state, the step it is at, what that
step waits for) with its steps indented beneath it, in order.  That row stands for the
step it is at, so ack, merge, log and reply work on it directly.  A queued agent shows
what it waits for where its branch would be, in the warning colour when it will not start
by itself (its predecessor failed, was stopped or vanished).  A collision with another
agent shows as ``⚠ other`` (conflict) or ``≈ other`` (the same files touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from mullui.model import Agent, State
from mullui.queue import ChainRun, chain_runs, is_stuck, unreviewed
from mullui.tui import cells
from mullui.tui.widgets.agent_rows import AgentRows, Cell, with_repo

#: Row keys of chain rows (agent ids never contain a colon).
CHAIN_KEY = "chain:"
NAME_WIDTH = 28
NOTE_WIDTH = 30  # the list shares 160 columns with the log pane


def chain_positions(agents: Sequence[Agent]) -> dict[str, tuple[int, int]]:
    """agent id -> (position from 1, steps) for agents in a chain."""
    out: dict[str, tuple[int, int]] = {}
    for run in chain_runs(agents):
        for i, a in enumerate(run.steps, 1):
            out[a.id] = (i, run.total)
    return out


def table_order(agents: Sequence[Agent]) -> list[Agent]:
    """Creation order, except that a chain's steps follow its first step."""
    first: dict[str, tuple[datetime, str]] = {}
    for a in sorted(agents, key=lambda a: (a.created_at, a.id)):
        if a.chain and a.chain not in first:
            first[a.chain] = (a.created_at, a.id)

    def key(a: Agent) -> tuple[datetime, str, int, datetime, str]:
        if a.chain:
            t, i = first[a.chain]
            return (t, i, a.chain_step or 0, a.created_at, a.id)
        return (a.created_at, a.id, 0, a.created_at, a.id)

    return sorted(agents, key=key)


def collision_note(a: Agent, names: dict[str, str]) -> Text:
    """``⚠ refactor-db`` / ``≈ docs +1``: the marker and whom it collides with."""
    if not a.collisions:
        return Text("")
    worst = sorted(a.collisions, key=lambda c: not c.conflict)
    first = worst[0]
    t = cells.collision_marker(a)
    t.append(cells.one_line(names.get(first.agent, first.agent), 16))
    if len(worst) > 1:
        t.append(f" +{len(worst) - 1}", style="dim")
    return t


def waiting_note(a: Agent) -> Text:
    """What a queued agent waits for; a stuck one in the warning colour."""
    if is_stuck(a):
        return Text(f"⚠ {cells.one_line(a.cause, NOTE_WIDTH)}", style="bold yellow")
    return Text(cells.one_line(a.cause, NOTE_WIDTH), style="dim italic")


def chain_state(run: ChainRun, colours: dict[str, str]) -> Text:
    cur = run.current
    if run.state == "done" or cur is None:
        return cells.state_cell(State.DONE, colours)
    return cells.state_cell(cur.state, colours)


def chain_note(run: ChainRun) -> Text:
    """Where the chain stands: the step it is at and, when stuck, why."""
    cur = run.current
    if cur is None:
        return Text("no steps", style="dim")
    if run.state == "done":
        if cur.merged_into:
            return Text(f"all done, merged into {cur.merged_into}", style="dim")
        if unreviewed(cur):
            return Text("all done: awaits review", style="italic")
        return Text("all done", style="dim italic")
    if cur.state is State.QUEUED:
        return waiting_note(cur)
    doing = cells.why(cur) if cur.state in (State.BLOCKED, State.FAILED) else cur.state.value
    note = f"{cur.name}: {doing}"  # the name cell says which step (2/3)
    return Text(cells.one_line(note, NOTE_WIDTH), style="dim italic")


def _sum_usage(steps: Sequence[Agent]) -> str:
    tin = [s.tokens_in for s in steps if s.tokens_in is not None]
    tout = [s.tokens_out for s in steps if s.tokens_out is not None]
    cost = [s.cost_usd for s in steps if s.cost_usd is not None]
    if not (tin or tout or cost):
        return "–"
    total = sum(tin) + sum(tout)
    return f"{cells.si(total)} · " + (f"${sum(cost):.2f}" if cost else "–")


class AgentTable(AgentRows):
    COLUMNS = (
        ("state", "state", 11),
        ("name", "name", None),
        ("profile", "profile", None),
        ("since", "for", 6),
        ("usage", "tokens · cost", None),
        ("branch", "branch / waits for", None),
    )

    def show(
        self,
        agents: Sequence[Agent],
        now: datetime,
        colours: dict[str, str],
        snoozed: set[str],
        repos: dict[str, str] | None = None,
    ) -> bool:
        """``repos``: the repo column's labels (``cells.repo_labels``; empty: no column)."""
        self.show_repo_column(bool(repos))
        names = {a.id: a.name for a in agents}
        runs = {r.run: r for r in chain_runs(agents)}
        step_of = {s.id: i for r in runs.values() for i, s in enumerate(r.steps, 1)}
        rows: list[tuple[str, tuple[Cell, ...]]] = []
        targets: dict[str, str] = {}
        for a in table_order(agents):
            run = runs.get(a.chain) if a.chain else None
            name = Text()
            if run is not None:
                pos = step_of[a.id]
                if pos == 1:
                    rows.append(self._chain_row(run, now, colours, targets, repos))
                name.append("└ " if pos == len(run.steps) else "├ ", style="dim")
            name.append(cells.one_line(a.name, NAME_WIDTH))
            if a.collisions:
                name.append(" ")
                name.append_text(collision_note(a, names))
            if a.state is State.QUEUED:
                last: Cell = waiting_note(a)
            else:
                last = Text(cells.one_line(a.branch or "–", 40), style="dim")
            rows.append(
                (
                    a.id,
                    with_repo(
                        (
                            cells.list_state_cell(a, colours, snoozed=a.id in snoozed),
                            name,
                            a.profile,
                            cells.since(a, now),
                            cells.usage(a),
                            last,
                        ),
                        cells.repo_cell(a, repos) if repos else None,
                    ),
                )
            )
        return self.set_rows(rows, targets)

    def _chain_row(
        self,
        run: ChainRun,
        now: datetime,
        colours: dict[str, str],
        targets: dict[str, str],
        repos: dict[str, str] | None = None,
    ) -> tuple[str, tuple[Cell, ...]]:
        cur = run.current or run.steps[-1]
        pos = next(i for i, s in enumerate(run.steps, 1) if s.id == cur.id)
        key = f"{CHAIN_KEY}{run.run}"
        targets[key] = cur.id
        name = Text("⛓ ", style="bold")
        name.append(cells.one_line(run.chain_name, NAME_WIDTH - 6), style="bold")
        name.append(f" {pos}/{run.total}", style="dim")
        return (
            key,
            with_repo(
                (
                    chain_state(run, colours),
                    name,
                    Text("chain", style="dim"),
                    cells.since(cur, now),
                    _sum_usage(run.steps),
                    chain_note(run),
                ),
                cells.repo_cell(cur, repos) if repos else None,
            ),
        )
