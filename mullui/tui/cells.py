"""How an agent's fields read on screen: state symbols, durations, tokens, cost.

Every state has a symbol as well as a colour, so the table still reads on a monochrome
terminal or to a colour-blind user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from rich.text import Text

from mullui.model import Agent, State
from mullui.tui.literal import visible

SYMBOL: dict[State, str] = {
    State.QUEUED: "◌",
    State.STARTING: "◔",
    State.WORKING: "●",
    State.BLOCKED: "▲",
    State.DONE: "✓",
    State.FAILED: "✗",
    State.STOPPED: "■",
    State.UNKNOWN: "?",
}
SNOOZE_SYMBOL = "☾"

#: Theme variable that colours each state (see themes.py).
STATE_VARIABLE: dict[State, str] = {
    State.QUEUED: "state-idle",
    State.STARTING: "state-working",
    State.WORKING: "state-working",
    State.BLOCKED: "state-blocked",
    State.DONE: "state-done",
    State.FAILED: "state-failed",
    State.STOPPED: "state-idle",
    State.UNKNOWN: "state-idle",
}

FALLBACK_COLOURS = {
    "state-working": "#7AA2F7",
    "state-blocked": "#E0AF68",
    "state-done": "#9ECE6A",
    "state-failed": "#F7768E",
    "state-idle": "#8A8FA8",
}


def state_cell(state: State, colours: dict[str, str], *, snoozed: bool = False) -> Text:
    colour = colours.get(STATE_VARIABLE[state]) or FALLBACK_COLOURS[STATE_VARIABLE[state]]
    bold = state in (State.BLOCKED, State.FAILED)
    t = Text(f"{SYMBOL[state]} {state.value}", style=f"{'bold ' if bold else ''}{colour}")
    if snoozed:
        t.append(f" {SNOOZE_SYMBOL}", style="dim")
    return t


CONFLICT_SYMBOL = "⚠"


def list_state_cell(agent: Agent, colours: dict[str, str], *, snoozed: bool = False) -> Text:
    """The agent list's state: ``✓ merged`` (dim: nothing left to do) for merged work."""
    if agent.state is State.DONE and agent.merged_into:
        return Text(f"{SYMBOL[State.DONE]} merged", style="dim")
    return state_cell(agent.state, colours, snoozed=snoozed)


def conflict_shown(agent: Agent) -> bool:
    """The inbox item is the radar's conflict or the collision guard's warning (not a
    question the agent asks)."""
    return agent.has_conflict_item() and not (agent.state is State.BLOCKED and agent.question)


def conflict_label(agent: Agent) -> str:
    """``conflict`` (the radar: merging would conflict) or ``collision`` (the guard: both
    change the same file; no conflict known)."""
    return (
        "collision" if agent.conflict is not None and agent.conflict.kind == "guard" else "conflict"
    )


def inbox_state_cell(agent: Agent, colours: dict[str, str], *, snoozed: bool = False) -> Text:
    """The state, or ``⚠ conflict`` for the radar's conflict item (``⚠ collision`` for the
    collision guard's)."""
    if not conflict_shown(agent):
        return state_cell(agent.state, colours, snoozed=snoozed)
    colour = colours.get("state-failed") or FALLBACK_COLOURS["state-failed"]
    t = Text(f"{CONFLICT_SYMBOL} {conflict_label(agent)}", style=f"bold {colour}")
    if snoozed:
        t.append(f" {SNOOZE_SYMBOL}", style="dim")
    return t


def waited(agent: Agent, now: datetime) -> str:
    """How long the inbox item has waited: since the conflict, or in its state."""
    if conflict_shown(agent) and agent.conflict is not None:
        return duration(now - agent.conflict.since)
    return since(agent, now)


def duration(delta: timedelta) -> str:
    """A short, calm duration: ``<1m``, ``12m``, ``3h05m``, ``2d4h``."""
    s = max(0, int(delta.total_seconds()))
    if s < 60:
        return "<1m"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def since(agent: Agent, now: datetime) -> str:
    return duration(now - agent.state_since)


def tokens(agent: Agent) -> str:
    if agent.tokens_in is None and agent.tokens_out is None:
        return "–"
    return f"{si(agent.tokens_in or 0)}/{si(agent.tokens_out or 0)}"


def usage(agent: Agent) -> str:
    """Total tokens and cost in one short cell: ``129.2k · $1.23``."""
    if agent.tokens_in is None and agent.tokens_out is None and agent.cost_usd is None:
        return "–"
    total = (agent.tokens_in or 0) + (agent.tokens_out or 0)
    return f"{si(total)} · {cost(agent)}"


def si(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def cost(agent: Agent) -> str:
    return "–" if agent.cost_usd is None else f"${agent.cost_usd:.2f}"


def one_line(text: str, limit: int = 200) -> str:
    """The first non-empty line, clipped (questions and messages can be long), with any
    control character drawn visibly (agent text: see literal.py)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return visible(line if len(line) <= limit else line[: limit - 1] + "…")


def why(agent: Agent) -> str:
    """Why the agent is in the inbox: the question, the last message or the exit code."""
    text = agent.why()
    if agent.state is State.BLOCKED and not agent.question:
        text = f"waiting ({agent.cause})"
    return one_line(text)


def wake_time(agent: Agent, now: datetime) -> str:
    if agent.snooze_until_change:
        return "until it changes"
    if agent.snoozed_until is None:
        return "–"
    local = agent.snoozed_until.astimezone(now.tzinfo)
    day = "" if local.date() == now.astimezone(now.tzinfo).date() else local.strftime("%a ")
    return f"{day}{local:%H:%M} (in {duration(agent.snoozed_until - now)})"


def collision_marker(agent: Agent) -> Text:
    if not agent.collisions:
        return Text("")
    if any(c.conflict for c in agent.collisions):
        return Text("⚠", style="bold red")
    return Text("≈", style="yellow")


def chain_label(agent: Agent, position: int, total: int) -> str:
    """``plan-critique 1/2`` for a chain step (position counted from 1); empty otherwise."""
    if not agent.chain:
        return ""
    return f"{agent.chain_name or 'chain'} {position}/{total}"


def repo_labels(agents: Sequence[Agent]) -> dict[str, str]:
    """repository path -> how the repo column names it, when the agents come from more
    than one repository (else empty: no column).  Its directory name, or where two share
    a name its path (``~/...`` under the home directory)."""
    repos = {a.repo for a in agents if a.repo}
    if len(repos) < 2:
        return {}
    names = [Path(r).name for r in repos]
    home = str(Path.home())
    out: dict[str, str] = {}
    for r in repos:
        name = Path(r).name
        if names.count(name) > 1:
            name = "~" + r[len(home) :] if r.startswith(home + "/") else r
        out[r] = visible(name)
    return out


def repo_cell(agent: Agent, labels: dict[str, str]) -> Text:
    return Text(labels.get(agent.repo or "", "–"), style="dim")
