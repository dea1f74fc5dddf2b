"""The header line: where we are and how many agents are in each state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from mullui.model import Agent, State
from mullui.tui import cells
from mullui.tui.literal import visible


def counts_text(
    agents: Sequence[Agent], now: datetime, colours: dict[str, str], title: str, width: int = 200
) -> Text:
    """``mullui  ● 3 working  ▲ 1 blocked  ✓ 2 done  ✗ 0 failed  ☾ 1 snoozed``.

    When that does not fit: tighter spacing and shorter words, then the title shortened
    to ``mullui`` (the counts matter more than the repository name)."""
    full = _counts_text(agents, now, colours, title, narrow=width < 120)
    if full.cell_len <= width or " · " not in title:
        return full
    return _counts_text(agents, now, colours, title.split(" · ")[0], narrow=True)


def _counts_text(
    agents: Sequence[Agent], now: datetime, colours: dict[str, str], title: str, narrow: bool
) -> Text:
    snoozed = sum(1 for a in agents if a.needs_human() and a.is_snoozed(now))
    by_state = Counter(a.state for a in agents if not (a.needs_human() and a.is_snoozed(now)))
    review = sum(1 for a in agents if a.state is State.DONE and a.needs_human())
    t = Text()
    gap = " " if narrow else "  "
    t.append(f" {visible(title)} ", style="bold reverse")
    t.append(gap)
    parts: list[tuple[str, str, str]] = [
        (
            cells.SYMBOL[State.WORKING],
            str(by_state[State.WORKING] + by_state[State.STARTING]),
            "working",
        ),
        (cells.SYMBOL[State.BLOCKED], str(by_state[State.BLOCKED]), "blocked"),
        (cells.SYMBOL[State.DONE], str(by_state[State.DONE]), "done"),
        (cells.SYMBOL[State.FAILED], str(by_state[State.FAILED]), "failed"),
        (cells.SNOOZE_SYMBOL, str(snoozed), "snoozed"),
    ]
    var = {
        "working": "state-working",
        "blocked": "state-blocked",
        "done": "state-done",
        "failed": "state-failed",
        "snoozed": "state-idle",
    }
    for sym, n, word in parts:
        colour = colours.get(var[word]) or cells.FALLBACK_COLOURS[var[word]]
        style = colour if n != "0" else "dim"
        label = f"{sym} {n}" if narrow and word == "snoozed" else f"{sym} {n} {word}"
        t.append(label, style=style)
        t.append(gap)
    if by_state[State.QUEUED]:
        q = by_state[State.QUEUED]
        t.append(f"{cells.SYMBOL[State.QUEUED]} {q}" + ("" if narrow else " queued"), style="dim")
        t.append(gap)
    if review:
        t.append(
            f"· {review} to review" if narrow else f"· {review} done await review", style="italic"
        )
    return t


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; }
    """

    def show(
        self,
        agents: Sequence[Agent],
        now: datetime,
        colours: dict[str, str],
        title: str,
        width: int,
    ) -> None:
        self.update(counts_text(agents, now, colours, title, width))
