"""The cost-to-deliver ledger (``mullui report``, the TUI's report screen).

Whether async agents pay for themselves is a question of time and money against an
estimate: how long work took from spawn to done and to merge, how much of that the agent
worked and how much it sat waiting on the human (blocked on a question, or done and
waiting for review), what it cost, what it changed.  Every time here is computed from the
recorded state changes (all of them: :func:`whole` adds those the record no longer keeps)
and the ``ack``/``merged`` events of the spool, never from guesses; the buckets of one
agent add up to its wall time:

``wall_s = queued_s + starting_s + working_s + blocked_s + idle_s + unknown_s``

where ``idle_s`` is time spent ``done``/``failed``/``stopped`` *before* the agent went back
to work (a new instruction after done).  ``review_wait_s`` is the time from each ``done``
to the human handling it (ack, merge, or a new instruction), or to now while it waits.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mullui import history
from mullui.context import Context
from mullui.events import read_events
from mullui.model import SETTLED, Agent, State, iso, parse_iso, utcnow

BUCKETS: dict[State, str] = {
    State.QUEUED: "queued_s",
    State.STARTING: "starting_s",
    State.WORKING: "working_s",
    State.BLOCKED: "blocked_s",
    State.DONE: "idle_s",
    State.FAILED: "idle_s",
    State.STOPPED: "idle_s",
    State.UNKNOWN: "unknown_s",
}
TIME_FIELDS = (
    "wall_s",
    "queued_s",
    "starting_s",
    "working_s",
    "blocked_s",
    "idle_s",
    "unknown_s",
    "review_wait_s",
)
AGENT_FIELDS = (
    "id",
    "name",
    "profile",
    "chain",
    "chain_name",
    "chain_step",
    "state",
    "created_at",
    "ended_at",
    *TIME_FIELDS,
    "awaiting_review",
    "delivered_s",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "estimate_h",
    "actual_h",
    "files_changed",
    "lines_added",
    "lines_deleted",
    "merged",
    "merged_into",
    "merged_at",
    "runs",
    "resumes",
)


# ---- times (pure) -----------------------------------------------------------------------------
def _secs(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def agent_times(a: Agent, handled: Sequence[datetime], now: datetime) -> dict[str, Any]:
    """Wall time and its buckets from ``a.history``; review waits closed by ``handled``
    (the times of the agent's ``ack``/``merged`` events)."""
    out: dict[str, Any] = {k: 0.0 for k in TIME_FIELDS}
    hist = sorted(a.history, key=lambda t: t.seq)
    if not hist:
        return out | {"ended_at": None, "awaiting_review": False}
    start = min(a.created_at, hist[0].at)
    last = hist[-1]
    end = last.at if last.state in SETTLED else max(now, last.at)
    handled = sorted(handled)
    awaiting = False
    for i, t in enumerate(hist):
        seg_start = start if i == 0 else t.at
        seg_end = hist[i + 1].at if i + 1 < len(hist) else end
        out[BUCKETS[t.state]] += _secs(seg_start, seg_end)
        if t.state is State.DONE:
            # A done period waits for review until it is handled, or until the agent
            # was told to go on (which is the human handling it).
            open_end = hist[i + 1].at if i + 1 < len(hist) else now
            h = next((x for x in handled if t.at <= x <= open_end), None)
            out["review_wait_s"] += _secs(t.at, h or open_end)
            if h is None and i + 1 == len(hist):
                awaiting = True
    out["wall_s"] = _secs(start, end)
    out["ended_at"] = iso(end) if last.state in SETTLED else None
    out["awaiting_review"] = awaiting
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


# ---- what changed (git) -------------------------------------------------------------------------
def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        r = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def _numstat(out: str) -> tuple[int, int, int]:
    files = added = deleted = 0
    for line in out.splitlines():
        parts = line.split("\t", 2)
        if len(parts) < 3:
            continue
        files += 1
        # Binary files show "-": they count as a changed file with no lines.
        added += int(parts[0]) if parts[0].isdigit() else 0
        deleted += int(parts[1]) if parts[1].isdigit() else 0
    return files, added, deleted


def _count_lines(path: Path) -> int:
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    if b"\0" in data[:8000]:
        return 0  # binary, as numstat counts it
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


def diff_stats(a: Agent) -> tuple[int | None, int | None, int | None]:
    """Files changed, lines added, lines deleted by the agent: its branch since it forked
    from its base, plus (until merged) uncommitted work in its worktree, untracked files
    included.  None when git cannot say."""
    if a.host is not None or not a.repo or not Path(a.repo).is_dir():
        return None, None, None
    repo = Path(a.repo)
    if a.merged_sha and a.branch:
        # Its own commits: from where it forked to its branch.  The base a merge moved
        # is read as it was before the merge (the merge commit's first parent); a chain
        # step's base is its predecessor's branch, so steps never count each other's work.
        since = f"{a.merged_sha}^1" if a.base in (None, a.merged_into) else a.base
        out = _git(["diff", "--numstat", f"{since}...{a.branch}"], repo)
        return _numstat(out) if out is not None else (None, None, None)
    if not a.base:
        return None, None, None
    wt = Path(a.worktree) if a.worktree else None
    if wt is not None and wt.is_dir():
        mb = _git(["merge-base", a.base, "HEAD"], wt)
        if mb is None:
            return None, None, None
        out = _git(["diff", "--numstat", mb.strip()], wt)
        if out is None:
            return None, None, None
        files, added, deleted = _numstat(out)
        untracked = _git(["ls-files", "-z", "--others", "--exclude-standard"], wt) or ""
        for name in (n for n in untracked.split("\0") if n):
            files += 1
            added += _count_lines(wt / name)
        return files, added, deleted
    if a.branch:
        out = _git(["diff", "--numstat", f"{a.base}...{a.branch}"], repo)
        if out is not None:
            return _numstat(out)
    return None, None, None


# ---- the ledger ---------------------------------------------------------------------------------
def handled_times(ctx: Context, agent_id: str) -> tuple[list[datetime], datetime | None]:
    """(times of ``ack``/``merged`` events, time of the first ``merged``) from the spool."""
    events, _ = read_events(ctx.paths.spool_file(agent_id))
    handled: list[datetime] = []
    merged_at: datetime | None = None
    for ev in events:
        if ev.get("kind") in ("ack", "merged"):
            at = parse_iso(ev.get("at"))
            if at is None:
                continue
            handled.append(at)
            if ev.get("kind") == "merged" and merged_at is None:
                merged_at = at
    return handled, merged_at


def whole(ctx: Context, a: Agent) -> Agent:
    """``a`` with every state change it made (its record keeps the last ones; the times
    and run counts here need them all)."""
    hist = ctx.store.full_history(a)
    return a if hist is a.history else dataclasses.replace(a, history=hist)


def agent_row(
    a: Agent,
    handled: Sequence[datetime],
    merged_at: datetime | None,
    stats: tuple[int | None, int | None, int | None],
    now: datetime,
) -> dict[str, Any]:
    """One agent's line of the ledger (see ``AGENT_FIELDS``)."""
    times = agent_times(a, handled, now)
    files, added, deleted = stats
    delivered = _secs(a.created_at, merged_at) if merged_at else None
    row: dict[str, Any] = {
        "id": a.id,
        "name": a.name,
        "profile": a.profile,
        "chain": a.chain,
        "chain_name": a.chain_name,
        "chain_step": a.chain_step,
        "state": a.state.value,
        "created_at": iso(a.created_at),
        **times,
        "delivered_s": round(delivered, 3) if delivered is not None else None,
        "tokens_in": a.tokens_in,
        "tokens_out": a.tokens_out,
        "cost_usd": a.cost_usd,
        "estimate_h": a.estimate_h,
        "actual_h": round(times["wall_s"] / 3600, 4),
        "files_changed": files,
        "lines_added": added,
        "lines_deleted": deleted,
        "merged": a.merged_into is not None,
        "merged_into": a.merged_into,
        "merged_at": iso(merged_at),
        **run_counts(a),
    }
    return {k: row[k] for k in AGENT_FIELDS}


def run_counts(a: Agent) -> dict[str, int]:
    """How many times the agent ran: its first start and every resume (``resume:*`` in
    its history; times, tokens and cost above already add all runs up)."""
    resumes = sum(
        1 for t in a.history if t.state is State.STARTING and t.cause.startswith("resume:")
    )
    started = any(t.state is State.STARTING for t in a.history)
    return {"runs": int(started) + resumes if started else 0, "resumes": resumes}


def _sum(rows: Iterable[dict[str, Any]], key: str) -> Any:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return None
    total = sum(vals)
    return round(total, 6) if isinstance(total, float) else total


def chain_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per chain run: its steps summed, its wall time from the first step's
    spawn to the last step's end."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["chain"]:
            runs.setdefault(r["chain"], []).append(r)
    out = []
    for run, steps in runs.items():
        steps.sort(key=lambda r: r["chain_step"] or 0)
        starts = [parse_iso(r["created_at"]) for r in steps]
        ends = [parse_iso(r["ended_at"]) for r in steps]
        first = min(s for s in starts if s is not None)
        if all(e is not None for e in ends):
            wall: float | None = _secs(first, max(e for e in ends if e is not None))
        else:
            wall = None  # still running: the sum of the steps' walls below is the floor
        cur = next((r for r in steps if r["state"] != "done"), steps[-1])
        row: dict[str, Any] = {
            "chain": run,
            "chain_name": steps[0]["chain_name"],
            "steps": len(steps),
            "steps_done": sum(r["state"] == "done" for r in steps),
            "state": "done" if all(r["state"] == "done" for r in steps) else cur["state"],
            "current_step": cur["chain_step"],
            "created_at": iso(first),
            "wall_s": round(wall, 3) if wall is not None else _sum(steps, "wall_s"),
        }
        for k in (
            *TIME_FIELDS[1:],
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "estimate_h",
            "files_changed",
            "lines_added",
            "lines_deleted",
        ):
            row[k] = _sum(steps, k)
        row["actual_h"] = round(row["wall_s"] / 3600, 4)
        row["merged"] = bool(steps[-1]["merged"])
        row["merged_into"] = steps[-1]["merged_into"]
        out.append(row)
    return out


def totals(rows: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Sums, throughput and review latency over every agent."""
    t: dict[str, Any] = {"agents": len(rows)}
    t["by_state"] = dict(sorted(Counter(r["state"] for r in rows).items()))
    for k in (
        *TIME_FIELDS,
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "files_changed",
        "lines_added",
        "lines_deleted",
    ):
        t[k] = _sum(rows, k)
    t["merged"] = sum(bool(r["merged"]) for r in rows)
    t["resumes"] = sum(r["resumes"] for r in rows)
    t["awaiting_review"] = sum(bool(r["awaiting_review"]) for r in rows)
    with_est = [r for r in rows if r["estimate_h"] is not None]
    t["estimate_h"] = _sum(with_est, "estimate_h")
    t["actual_h_of_estimated"] = _sum(with_est, "actual_h")
    t["actual_h"] = _sum(rows, "actual_h")
    starts = [parse_iso(r["created_at"]) for r in rows]
    starts_ok = [s for s in starts if s is not None]
    span = _secs(min(starts_ok), now) if starts_ok else 0.0
    t["span_s"] = round(span, 3)
    delivered = [r for r in rows if r["state"] == "done" or r["merged"]]
    t["delivered"] = len(delivered)
    t["delivered_per_day"] = round(len(delivered) / (span / 86400), 3) if span > 0 else None
    waits = [r["review_wait_s"] for r in rows if r["review_wait_s"]]
    t["mean_review_wait_s"] = round(sum(waits) / len(waits), 3) if waits else None
    t["mean_delivered_s"] = (
        round(sum(r["delivered_s"] for r in rows if r["delivered_s"] is not None) / t["merged"], 3)
        if t["merged"]
        else None
    )
    return t


def ledger(ctx: Context, *, now: datetime | None = None) -> dict[str, Any]:
    """The whole ledger: ``agents`` (rows), ``chains`` (rows), ``totals``; JSON-ready.

    Live and recent agents are measured now; the history's rows were computed once, when
    each agent was folded into it (mullui.ledger: no git, no spool read here)."""
    now = now or utcnow()
    rows = []
    live = ctx.store.all()
    ids = {a.id for a in live}
    for r in history.rows(ctx.paths):
        if r["id"] not in ids and isinstance(r.get("report"), dict):
            rows.append({k: r["report"].get(k) for k in AGENT_FIELDS})
    for a in live:
        handled, merged_at = handled_times(ctx, a.id)
        rows.append(agent_row(whole(ctx, a), handled, merged_at, diff_stats(a), now))
    return {
        "generated_at": iso(now),
        "agents": rows,
        "chains": chain_rows(rows),
        "totals": totals(rows, now),
    }


# ---- output -----------------------------------------------------------------------------------
def to_csv(led: dict[str, Any]) -> str:
    """Agents, then chains, then one total line; a ``kind`` column tells them apart."""
    chain_fields = [k for r in led["chains"] for k in r]
    total_fields = [k for k in led["totals"] if k != "by_state"]
    fields = list(dict.fromkeys(["kind", *AGENT_FIELDS, *chain_fields, *total_fields]))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in led["agents"]:
        w.writerow({"kind": "agent", **r})
    for r in led["chains"]:
        w.writerow({"kind": "chain", **r})
    w.writerow({"kind": "total", **{k: v for k, v in led["totals"].items() if k != "by_state"}})
    return buf.getvalue()


def duration(s: float | None) -> str:
    """``45s``, ``12m05s``, ``3h02m``, ``2d04h``; ``-`` when unknown."""
    if s is None:
        return "-"
    n = int(round(s))
    if n < 60:
        return f"{n}s"
    if n < 3600:
        return f"{n // 60}m{n % 60:02d}s"
    if n < 86400:
        return f"{n // 3600}h{n % 3600 // 60:02d}m"
    return f"{n // 86400}d{n % 86400 // 3600:02d}h"


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:.2f}"


def _tokens(r: dict[str, Any]) -> str:
    if r.get("tokens_in") is None and r.get("tokens_out") is None:
        return "-"
    return f"{(r.get('tokens_in') or 0) + (r.get('tokens_out') or 0):,}"


def _est(r: dict[str, Any]) -> str:
    est = r.get("estimate_h")
    act = r.get("actual_h")
    return f"{est:g}h/{act:.1f}h" if est is not None else f"-/{act:.1f}h"


def _lines(r: dict[str, Any]) -> str:
    if r.get("files_changed") is None:
        return "-"
    return f"{r['files_changed']} +{r['lines_added']} -{r['lines_deleted']}"


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return [fmt(header), *(fmt(r) for r in rows)]


def to_text(led: dict[str, Any]) -> str:
    """The ledger as tables a human reads in a terminal."""
    agents = led["agents"]
    if not agents:
        return "no agents yet: the ledger fills as agents run (`mullui spawn TASK`)"
    head = [
        "NAME",
        "STATE",
        "WALL",
        "WORKING",
        "BLOCKED",
        "REVIEW WAIT",
        "TOKENS",
        "COST",
        "EST/ACTUAL",
        "FILES +/-",
        "MERGED",
    ]

    def line(r: dict[str, Any], name: str) -> list[str]:
        return [
            name,
            r["state"],
            duration(r["wall_s"]),
            duration(r["working_s"]),
            duration(r["blocked_s"]),
            duration(r["review_wait_s"]),
            _tokens(r),
            _money(r["cost_usd"]),
            _est(r),
            _lines(r),
            r["merged_into"] or ("yes" if r["merged"] else "no"),
        ]

    out = _table([line(r, r["name"]) for r in agents], head)
    if led["chains"]:
        out += ["", "chains:"]
        out += _table(
            [line(r, f"{r['chain_name']} ({r['steps_done']}/{r['steps']})") for r in led["chains"]],
            head,
        )
    t = led["totals"]
    states = ", ".join(f"{n} {s}" for s, n in t["by_state"].items())
    est = (
        f"estimated {t['estimate_h']:g}h, took {t['actual_h_of_estimated']:.1f}h"
        if t["estimate_h"] is not None
        else "no estimates"
    )
    per_day = f", {t['delivered_per_day']:g}/day" if t["delivered_per_day"] else ""
    out += [
        "",
        f"total: {t['agents']} agents ({states}); {t['delivered']} delivered{per_day}, "
        f"{t['merged']} merged, {t['awaiting_review']} awaiting review"
        + (f", {t['resumes']} resumed" if t["resumes"] else ""),
        f"time: working {duration(t['working_s'])}, blocked on the human "
        f"{duration(t['blocked_s'])}, waiting for review {duration(t['review_wait_s'])} "
        f"(mean {duration(t['mean_review_wait_s'])}); {est}",
        f"spend: {_money(t['cost_usd'])}, {_tokens(t)} tokens; changed "
        f"{t['files_changed'] or 0} files +{t['lines_added'] or 0} -{t['lines_deleted'] or 0}",
    ]
    return "\n".join(out)
