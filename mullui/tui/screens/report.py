"""The cost-to-deliver ledger (``report.ledger``): per agent and per chain run, wall time,
time working, time waiting on the human (blocked, and done awaiting review), tokens,
cost, estimate against actual, files and lines changed, merged; the totals beneath."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from mullui import report
from mullui.tui import cells, literal
from mullui.tui.host import Host
from mullui.tui.widgets.key_bar import KeyBar

Row = dict[str, Any]


def dur(v: Any) -> str | Text:
    """Seconds as the CLI report writes them (``45s``, ``12m05s``): a ledger is read for
    exact figures, and a demo's agents finish inside a minute."""
    if v is None:
        return Text("–", style="dim")
    return report.duration(float(v))


def tokens(r: Row) -> str | Text:
    if r.get("tokens_in") is None and r.get("tokens_out") is None:
        return Text("–", style="dim")
    return cells.si((r.get("tokens_in") or 0) + (r.get("tokens_out") or 0))


def money(r: Row) -> str | Text:
    v = r.get("cost_usd")
    return Text("–", style="dim") if v is None else f"${v:.2f}"


def estimate(r: Row) -> str | Text:
    est, act = r.get("estimate_h"), r.get("actual_h")
    if est is None:
        return Text("–", style="dim")
    over = act is not None and act > est
    return Text(f"{est:g}h/{act or 0:.1f}h", style="bold yellow" if over else "")


def changes(r: Row) -> str | Text:
    if r.get("files_changed") is None:
        return Text("–", style="dim")
    return f"{r['files_changed']} +{r.get('lines_added') or 0} -{r.get('lines_deleted') or 0}"


def merged(r: Row) -> str | Text:
    if r.get("merged_into"):
        return literal.text(str(r["merged_into"]), "green")
    return Text("yes", style="green") if r.get("merged") else Text("no", style="dim")


#: (column, how a ledger row reads in it).  Short headers: 11 columns must stay legible
#: at 120 columns; narrower terminals scroll sideways (h / l).
COLUMNS: list[tuple[str, Callable[[Row], str | Text]]] = [
    ("state", lambda r: literal.text(str(r.get("state") or ""))),
    ("wall", lambda r: dur(r.get("wall_s"))),
    ("working", lambda r: dur(r.get("working_s"))),
    ("blocked", lambda r: dur(r.get("blocked_s"))),
    ("review wait", lambda r: dur(r.get("review_wait_s"))),
    ("tokens", tokens),
    ("cost", money),
    ("est/actual", estimate),
    ("files +/-", changes),
    ("merged", merged),
]


def ledger_rows(led: dict[str, Any]) -> list[tuple[Text, list[str | Text]]]:
    """Agents, then chain runs (``⛓ name 1/2``, their steps summed)."""
    out: list[tuple[Text, list[str | Text]]] = []
    for r in led.get("agents", []):
        out.append((literal.text(str(r["name"])), [f(r) for _, f in COLUMNS]))
    for c in led.get("chains", []):
        label = literal.text(f"⛓ {c.get('chain_name') or 'chain'} ", "bold")
        label.append(f"{c.get('steps_done')}/{c.get('steps')}", style="dim")
        out.append((label, [f(c) for _, f in COLUMNS]))
    return out


def totals_text(led: dict[str, Any]) -> Text:
    """The totals in three lines: what was delivered, where the time went, what it cost."""
    t = led.get("totals") or {}
    if not t.get("agents"):
        return Text("Nothing to report yet: the ledger fills as agents run.", style="dim")
    states = ", ".join(f"{n} {s}" for s, n in (t.get("by_state") or {}).items())
    # A rate per day over a span of minutes says nothing (a demo: "3482.93/day").
    long_enough = (t.get("span_s") or 0) >= 86400
    per_day = (
        f" ({t['delivered_per_day']:g}/day)" if long_enough and t.get("delivered_per_day") else ""
    )
    est = (
        f"; estimated {t['estimate_h']:g}h, took {t.get('actual_h_of_estimated') or 0:.1f}h"
        if t.get("estimate_h") is not None
        else ""
    )
    mean = t.get("mean_review_wait_s")
    out = Text()
    out.append("total ", style="bold")
    out.append(
        f"{t['agents']} agents ({states}); {t.get('delivered', 0)} delivered{per_day}, "
        f"{t.get('merged', 0)} merged, {t.get('awaiting_review', 0)} awaiting review\n"
    )
    out.append("time  ", style="bold")
    out.append(
        f"working {dur(t.get('working_s'))}, blocked on you {dur(t.get('blocked_s'))}, "
        f"waiting for review {dur(t.get('review_wait_s'))}"
        + (f" (mean {dur(mean)})" if mean else "")
        + f"{est}\n"
    )
    out.append("spend ", style="bold")
    out.append(
        f"{money(t)}, {tokens(t)} tokens; changed {t.get('files_changed') or 0} files "
        f"+{t.get('lines_added') or 0} -{t.get('lines_deleted') or 0}"
    )
    return out


class ReportScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "back"),
        Binding("j", "cursor(1)", "down", show=False),
        Binding("k", "cursor(-1)", "up", show=False),
        Binding("h", "sideways(-8)", "←"),
        Binding("l", "sideways(8)", "→ more columns"),
    ]

    def __init__(self, led: dict[str, Any]) -> None:
        super().__init__()
        self.ledger = led

    def compose(self) -> ComposeResult:
        yield Label("Report: cost to deliver", classes="screen-title")
        yield DataTable(id="report", cursor_type="row", zebra_stripes=True)
        yield Static(totals_text(self.ledger), id="report-totals")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#report", DataTable)
        rows = ledger_rows(self.ledger)
        table.add_column("agent", key="agent")
        for name, _ in COLUMNS:
            table.add_column(name, key=name)
        if not rows:
            table.add_row(Text("no agents yet", style="dim"), *[""] * len(COLUMNS))
        for label, values in rows:
            table.add_row(label, *values)
        table.focus()

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#report", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_sideways(self, cols: int) -> None:
        self.query_one("#report", DataTable).scroll_relative(x=cols, animate=False)


def show_report(host: Host) -> None:
    """The ledger (report.ledger reads every spool and runs git numstat: a thread's job)."""
    host.blocking(
        "report", ledger, host.actions, host.now(), then=lambda led: host.show(ReportScreen(led))
    )


def ledger(actions: Any, now: Any) -> dict[str, Any]:
    return report.ledger(actions, now=now)
