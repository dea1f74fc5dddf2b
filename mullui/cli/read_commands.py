"""The commands that read: ls, inbox, collisions, report, logs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from mullui.cli.output import _age, _one_line, _print_json, _repo_column, _table
from mullui.cli.scope import _live, _narrow, _repo_asked, _ws
from mullui.errors import MulluiError
from mullui.model import inbox


def _with_collisions(ws: Any, agents: list[Any]) -> list[Any]:
    """The agents with fresh collision markers.  A running supervisor keeps them fresh
    itself; without one, recompute here (~60 ms for 5 agents, ~1.5 s for 50; no git at
    all below two agents with work).  The radar (its git engine: ~60 ms to import) is
    loaded only to recompute: the usual ``ls`` (a supervisor runs, or too few agents
    with work) reads the records as they are."""
    from mullui import autostart

    stale = any(x.collisions for x in agents)
    if sum(1 for x in agents if x.has_open_work()) < 2 and not stale:
        return agents  # fewer still pass radar.eligible, which also stats the repository
    if autostart.held_elsewhere(ws.paths.state_dir):
        return agents
    from mullui import radar

    if radar.agents_with_work(agents) < 2 and not stale:
        return agents
    radar.refresh_quietly(ws, agents)
    return ws.store.all()  # type: ignore[no-any-return]


def _missing(agents: list[Any]) -> dict[str, tuple[bool, bool]]:
    """Agents whose worktree or branch was removed outside mullui: id -> (worktree there,
    branch there).  A stat per agent and one ``for-each-ref`` per repository."""
    from pathlib import Path

    from mullui.runtime import worktrees

    mine = [x for x in agents if not x.removed and not x.host and x.repo and x.worktree]
    branches: dict[str, set[str] | None] = {}
    out: dict[str, tuple[bool, bool]] = {}
    for x in mine:
        if x.repo not in branches:
            try:
                branches[x.repo] = worktrees.local_branches(Path(x.repo))
            except MulluiError:
                branches[x.repo] = None  # its repository is gone too
        known = branches[x.repo]
        there = (Path(x.worktree).is_dir(), known is not None and x.branch in known)
        if there != (True, True):
            out[x.id] = there
    return out


def _gone_words(there: tuple[bool, bool]) -> str:
    return {
        (True, False): "branch gone",
        (False, True): "worktree gone",
        (False, False): "worktree and branch gone",
    }[there]


def _ls_json(x: Any, missing: dict[str, tuple[bool, bool]]) -> dict[str, Any]:
    # Beyond SPEC's fields: interrupted (`mullui resume` continues it), notes.
    d: dict[str, Any] = {**x.to_ls_json(), **x.beyond_spec_json()}
    if x.id in missing:
        wt, br = missing[x.id]
        d["worktree"] = d["worktree"] if wt else None
        d["branch"] = d["branch"] if br else None
    return d


def _history(ws: Any, a: argparse.Namespace) -> list[dict[str, Any]]:
    """``ls --all``: the folded agents' ``ls --json`` fields, as they were when folded."""
    from mullui import ledger

    repo = _repo_asked(ws, a)
    # One folded midway (a kill -9) is listed once, live; a spool of a folded agent's id
    # that no agent loads from (an event written after its fold) hides nothing.
    live = {x.id for x in ws.store.all()}
    return [
        r["ls"]
        for r in ledger.rows(ws.paths)
        if r["id"] not in live and (repo is None or r["ls"].get("repo") == repo)
    ]


def cmd_ls(a: argparse.Namespace) -> int:
    ws = _ws()
    agents = _narrow(ws, a, _with_collisions(ws, _live(ws)))
    missing = _missing(agents)
    history = _history(ws, a) if a.all else []
    if a.json:
        _print_json([_ls_json(x, missing) for x in agents] + history)
        return 0
    if not agents:
        if a.here or a.repo:
            print("no agents in this repository (`mullui ls` lists every repository's)")
            return 0
        print("no agents yet: `mullui spawn TASK` starts one, `mullui demo` shows a sandbox")
        return 0
    now = datetime.now(UTC)
    repo = _repo_column(agents)
    rows = [
        [
            x.id,
            _one_line(x.name, 24),
            *([_one_line(repo(x), 40)] if repo else []),
            x.profile,
            x.state.value,
            _age(x.state_since, now),
            _one_line(
                x.why() + (f" · {_gone_words(missing[x.id])}" if x.id in missing else ""), 50
            ),
            x.host or "",
        ]
        for x in agents
    ]
    header = ["ID", "NAME", *(["REPO"] if repo else []), "PROFILE", "STATE", "FOR", "WHY", "HOST"]
    print(_table(rows, header))
    _supervisor_footer(ws, agents)
    if history:
        print(f"\nand {len(history)} in the history (`mullui report` has their ledger)")
    return 0


def _supervisor_footer(ws: Any, agents: list[Any]) -> None:
    """Say so when agents need a supervisor and none runs (nothing would notify)."""
    from mullui import autostart
    from mullui.loop import needs_supervisor

    if needs_supervisor(agents) and not autostart.held(ws.paths.state_dir):
        print(
            "\nno supervisor is running: nothing notifies or starts queued agents until the "
            "next spawn, send or agent event starts one; `mullui watch` starts one now"
        )


def cmd_inbox(a: argparse.Namespace) -> int:
    ws = _ws()
    items = inbox(_narrow(ws, a, _with_collisions(ws, _live(ws))))
    if a.json:
        out = []
        for x in items:
            d = x.to_ls_json()
            d["why"] = x.why()
            d.update(x.beyond_spec_json())
            out.append(d)
        _print_json(out)
        return 0
    if not items:
        print("inbox is empty: nothing needs you")
        return 0
    now = datetime.now(UTC)
    repo = _repo_column(items)
    rows = [
        [
            x.id,
            _one_line(x.name, 24),
            *([_one_line(repo(x), 40)] if repo else []),
            x.state.value,
            _age(x.state_since, now),
            _one_line(x.why(), 60),
        ]
        for x in items
    ]
    print(_table(rows, ["ID", "NAME", *(["REPO"] if repo else []), "STATE", "WAITING", "WHY"]))
    on_dialog: dict[tuple[str, str], list[str]] = {}
    for x in items:
        dialog = ws.reply_dialog(x)
        if dialog is not None:
            on_dialog.setdefault((dialog.name, dialog.hint), []).append(x.name)
    for (what, hint), names in on_dialog.items():
        who = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        print(f"{who}: on a {what}; `mullui send ID TEXT`: {hint} (--raw: typed as given)")
    n = sum(1 for x in items if x.is_interrupted())
    if n:
        were = "agent was" if n == 1 else "agents were"
        print(f"{n} {were} interrupted (a restart, a crash): `mullui resume --all` resumes them")
    return 0


def cmd_collisions(a: argparse.Namespace) -> int:
    from mullui import radar

    ws = _ws()
    ws.agents()  # catch up with tmux first: an exited agent's work still counts
    report = radar.collisions_report(ws)
    if a.json:
        _print_json(report.to_json())
        return 0
    print(report.to_text())
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from mullui import report

    ws = _ws()
    _live(ws)  # finished work folded first: its row is computed once, then read
    led = report.ledger(ws)
    if a.json:
        _print_json(led)
    elif a.csv:
        sys.stdout.write(report.to_csv(led))
    else:
        print(report.to_text(led))
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    return _ws().logs(a.id, follow=a.follow, raw=a.raw)
