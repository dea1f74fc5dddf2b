"""The command line: argparse in, one line + an exit code out.

0 ok; 1 refused or failed (stderr says why and what to do); 2 bad usage.  Errors are
raised deep as :class:`MulluiError` and printed here, once.  Imports are lazy so the
commands agents' hooks call (``mullui hook``) start fast.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mullui import __version__
from mullui.errors import MulluiError, UsageError
from mullui.model import inbox
from mullui.textsafe import VisibleStream, visible

if TYPE_CHECKING:
    from mullui.workspace import Workspace

DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``1h30m``, ``45s`` -> timedelta (UsageError otherwise)."""
    m = DURATION.match(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise UsageError(f"bad duration {text!r}: use e.g. 30m, 2h, 1d")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    td = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if td.total_seconds() <= 0:
        raise UsageError(f"bad duration {text!r}: must be longer than zero")
    return td


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"mullui: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mullui",
        description="A terminal inbox for many AI coding agents working in parallel. "
        "With no command: the full-screen TUI for the current repository.",
    )
    p.add_argument("--version", action="version", version=f"mullui {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("spawn", help="start an agent (or queue it); prints its id")
    s.add_argument("task", nargs="?", help="the prompt (or, with --agent shell, a command line)")
    s.add_argument(
        "--task-file", metavar="PATH", help="read the task from a file (a spec of any length)"
    )
    s.add_argument(
        "--agent",
        metavar="P",
        help="profile: claude, codex, aider, gemini, opencode, shell, or custom",
    )
    s.add_argument("--name", metavar="N")
    s.add_argument(
        "--base", metavar="REF", help="branch/ref to start from (default: current branch)"
    )
    s.add_argument("--after", metavar="ID", help="queue until agent ID is done")
    s.add_argument("--chain", metavar="C", help="run the steps of [chains.C]")
    s.add_argument("--host", metavar="H", help="run on [hosts.H] over SSH")
    s.add_argument(
        "--guard",
        choices=("off", "warn", "ask", "block"),
        help="collision guard for this agent (default: [collisions] guard)",
    )
    s.add_argument(
        "--from", dest="from_file", metavar="FILE", help="spawn a backlog from a tasks TOML file"
    )
    s.add_argument(
        "--no-attach", action="store_true", help="stay here (default when not run from a terminal)"
    )
    s.add_argument("--attach", action="store_true", help=argparse.SUPPRESS)

    s = sub.add_parser("ls", help="live and recent agents")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--all", action="store_true", help="add the finished history (merged, removed, old)"
    )
    _repo_filter(s)
    s = sub.add_parser("inbox", help="agents that need you (snoozed ones left out)")
    s.add_argument("--json", action="store_true")
    _repo_filter(s)
    s = sub.add_parser(
        "send",
        help="type TEXT + Enter into the agent's pane (on a permission dialog: y allows "
        "once, n denies, other text denies and tells the agent)",
    )
    s.add_argument(
        "--raw",
        action="store_true",
        help="type TEXT + Enter exactly as given, even on a permission dialog",
    )
    s.add_argument("id")
    s.add_argument("text", help="one argument; `--` before text that starts with -")
    s = sub.add_parser("attach", help="switch to / attach to the agent's tmux pane")
    s.add_argument("id")
    s = sub.add_parser("snooze", help="hide an inbox item for a while, or until it changes")
    s.add_argument("id")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--for", dest="duration", metavar="30m|2h|1d")
    g.add_argument("--until-change", action="store_true")
    s = sub.add_parser("wake", help="end a snooze")
    s.add_argument("id")
    s = sub.add_parser("ack", help="mark an inbox item handled")
    s.add_argument("id")
    s = sub.add_parser("merge", help="merge the agent's branch into its base (or REF)")
    s.add_argument("id")
    s.add_argument("--into", metavar="REF")
    s.add_argument(
        "--commit",
        action="store_true",
        help="first commit the agent's uncommitted work to its branch",
    )
    s = sub.add_parser("collisions", help="agents whose changes touch the same files")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("report", help="the cost-to-deliver ledger")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true")
    g.add_argument("--csv", action="store_true")
    s = sub.add_parser("logs", help="the agent's output log")
    s.add_argument("id")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument(
        "--raw",
        action="store_true",
        help="every byte as the pane wrote it (else: only colours on a terminal, plain text "
        "into a pipe)",
    )
    s = sub.add_parser(
        "resume",
        help="start stopped/failed/interrupted agents again in their own worktrees, "
        "continuing their conversations (max_running holds: the rest are queued)",
    )
    s.add_argument("ids", nargs="*", metavar="ID")
    s.add_argument(
        "--all",
        action="store_true",
        help="every agent a crash, a dead tmux server or a reboot interrupted",
    )
    s.add_argument(
        "--prompt",
        metavar="TEXT",
        help='what the agent receives on resume (default: "continue where you left off"; '
        '"" for nothing)',
    )
    s.add_argument(
        "--budget",
        metavar="USD",
        type=float,
        help="raise the agent's own max_cost_usd to USD (an agent its budget stopped)",
    )
    s.add_argument(
        "--fresh",
        action="store_true",
        help="start it again with its task, a new conversation (no resume for its session)",
    )
    s.add_argument(
        "--recreate",
        action="store_true",
        help="make its worktree again from its branch when it was removed by hand",
    )
    s.add_argument("--cause", default="resume:manual", help=argparse.SUPPRESS)
    s = sub.add_parser("stop", help="stop the agent (worktree and branch stay)")
    s.add_argument("id")
    s = sub.add_parser("rm", help="remove the agent's worktree and window (never loses work)")
    s.add_argument("id")
    s.add_argument(
        "--force",
        action="store_true",
        help="commit uncommitted work to the agent's branch first, then remove",
    )
    s = sub.add_parser("hook", help="ingest one agent event (JSON on stdin); agents' hooks call it")
    s.add_argument("event")
    s.add_argument("args", nargs="*", help="payload as argv (Codex passes JSON last)")
    s.add_argument("--agent", help=argparse.SUPPRESS)
    s.add_argument("--token", help=argparse.SUPPRESS)
    s.add_argument("--status", help=argparse.SUPPRESS)
    s.add_argument("--seconds", help=argparse.SUPPRESS)
    s.add_argument("--state-dir", help=argparse.SUPPRESS)
    s = sub.add_parser(
        "trust", help="let a repository's .mullui.toml set profiles, hosts, prices (this content)"
    )
    s.add_argument(
        "path", nargs="?", metavar="PATH", help="the file or its repository (default: here)"
    )
    s.add_argument("--revoke", action="store_true", help="stop trusting it")
    s = sub.add_parser("hosts", help="configured remote hosts, reachable or not")
    s.add_argument("action", nargs="?", choices=["check"])
    s.add_argument("name", nargs="?")
    s = sub.add_parser(
        "watch",
        help="headless supervisor: notifications with no TUI open (started by itself "
        "whenever an agent is live)",
    )
    g = s.add_mutually_exclusive_group()
    g.add_argument(
        "--status",
        action="store_true",
        help="whether a supervisor runs: pid, since, what it follows (exit 1: none runs)",
    )
    g.add_argument(
        "--install",
        action="store_true",
        help="start one at login: a systemd user unit, or the line to add elsewhere",
    )
    g.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)
    s = sub.add_parser("demo", help="a sandbox repo with scripted demo agents (no API key)")
    s.add_argument("--no-tui", action="store_true", help="set up and start the demo agents only")
    s.add_argument(
        "--keep",
        action="store_true",
        help="keep the sandbox, its agents and tmux server after quitting (it says where)",
    )
    s = sub.add_parser("events", help="stream applied state changes as JSON lines (used over SSH)")
    s.add_argument("--follow", action="store_true")
    s.add_argument("--since", default="", metavar="CURSOR")
    return p


def _repo_filter(s: argparse.ArgumentParser) -> None:
    g = s.add_mutually_exclusive_group()
    g.add_argument("--repo", metavar="PATH", help="only the agents of the repository at PATH")
    g.add_argument("--here", action="store_true", help="only the current repository's agents")


# ---- output helpers --------------------------------------------------------------------
def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _age(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    s = int((now - t).total_seconds())
    if s < 60:
        return f"{max(s, 0)}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


def _width(s: str) -> int:
    """Columns ``s`` takes in a terminal: East Asian wide/full-width characters take
    two, combining marks and zero-width characters none."""
    n = 0
    for c in s:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        n += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return n


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [
        max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h)
        for i, h in enumerate(header)
    ]
    lines = ["  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _one_line(s: str, n: int = 60) -> str:
    """``s`` on one line, cut to ``n`` terminal columns; control characters made visible
    (agent text: no escape reaches the terminal)."""
    s = visible(" ".join(s.split()))
    if _width(s) <= n:
        return s
    out, used = "", 0
    for c in s:
        w = _width(c)
        if used + w > n - 1:
            break
        out, used = out + c, used + w
    return out + "…"


def _narrow(ws: Any, a: argparse.Namespace, agents: list[Any]) -> list[Any]:
    """``--here`` / ``--repo PATH``: only the agents of that repository."""
    repo = _repo_asked(ws, a)
    return agents if repo is None else [x for x in agents if x.repo == repo]


def _repo_asked(ws: Any, a: argparse.Namespace) -> str | None:
    """The repository ``--here`` / ``--repo PATH`` names, or None."""
    if not (a.here or a.repo):
        return None
    from pathlib import Path

    from mullui.runtime import worktrees

    where = ws.cwd if a.here else Path(a.repo).expanduser().absolute()
    return str(worktrees.repo_root(where))


def _repo_column(agents: list[Any]) -> Callable[[Any], str] | None:
    """A REPO column when the agents come from more than one repository: the repository's
    name, or its path where two share a name."""
    repos = {x.repo for x in agents if x.repo}
    if len(repos) < 2:
        return None
    from pathlib import Path

    names = [Path(r).name for r in repos]
    home = str(Path.home())

    def show(x: Any) -> str:
        repo: str = x.repo or ""
        name = Path(repo).name
        if not repo or names.count(name) == 1:
            return name
        return "~" + repo[len(home) :] if repo.startswith(home + "/") else repo

    return show


# ---- commands --------------------------------------------------------------------------
def _notice(line: str) -> None:
    print(f"mullui: {visible(line)}", file=sys.stderr)


def _ws(*, notices: bool = True) -> Workspace:
    # Imported here, like every command's modules: `mullui hook` (run by agents on every
    # event) and `--help` must not load the workspace and everything under it.
    from mullui.workspace import Workspace

    ws = Workspace()
    if notices:  # what an untrusted .mullui.toml could not set, said on every command
        ws.notice = _notice
    ws.config  # noqa: B018 - a broken config is reported by every command, at once
    return ws


def _with_collisions(ws: Any, agents: list[Any]) -> list[Any]:
    """The agents with fresh collision markers.  A running supervisor keeps them fresh
    itself; without one, recompute here (~60 ms for 5 agents, ~1.5 s for 50; no git at
    all below two agents with work)."""
    from mullui import radar

    if radar.agents_with_work(agents) < 2 and not any(x.collisions for x in agents):
        return agents
    if radar.supervisor_alive(ws):
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
    d: dict[str, Any] = x.to_ls_json()
    # Beyond SPEC's fields: failed by an interruption (dead tmux, reboot, killed CLI), so
    # `mullui resume` (--all) continues it.
    d["interrupted"] = x.is_interrupted()
    if x.id in missing:
        wt, br = missing[x.id]
        d["worktree"] = d["worktree"] if wt else None
        d["branch"] = d["branch"] if br else None
    return d


def _live(ws: Any) -> list[Any]:
    """Live and recent agents; finished work moves to the history on the way (ledger)."""
    from mullui import ledger

    return ledger.live_and_recent(ws, ws.agents())


def _history(ws: Any, a: argparse.Namespace) -> list[dict[str, Any]]:
    """``ls --all``: the folded agents' ``ls --json`` fields, as they were when folded."""
    from mullui import ledger

    repo = _repo_asked(ws, a)
    return [r["ls"] for r in ledger.rows(ws.paths) if repo is None or r["ls"].get("repo") == repo]


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
            d["interrupted"] = x.is_interrupted()
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
    on_dialog = [x for x in items if ws.reply_hint(x)]
    if on_dialog:
        names = ", ".join(x.name for x in on_dialog[:3]) + (", ..." if len(on_dialog) > 3 else "")
        print(
            f"{names}: on a permission dialog; `mullui send ID y` allows once, `n` denies, "
            "other text denies and tells the agent what to do instead (--raw: typed as given)"
        )
    n = sum(1 for x in items if x.is_interrupted())
    if n:
        were = "agent was" if n == 1 else "agents were"
        print(f"{n} {were} interrupted (a restart, a crash): `mullui resume --all` resumes them")
    return 0


def _checkout_progress(line: str) -> None:
    """git's checkout progress of a big repository, on one self-overwriting line."""
    if line.startswith("Updating files"):
        end = "\n" if "done" in line else "\r"
        sys.stderr.write(f"mullui: {line}\x1b[K{end}")
        sys.stderr.flush()


def cmd_spawn(a: argparse.Namespace) -> int:
    ws = _ws()
    ws.started_by = "mullui spawn"
    if a.from_file:
        agents = ws.spawn_backlog(a.from_file)
        for x in agents:
            print(x.id)
        return 0
    if a.task_file is not None:
        if a.task is not None:
            raise UsageError("spawn takes a TASK or --task-file PATH, not both")
        a.task = _read_task(a.task_file)
    if a.task is None:
        raise UsageError("spawn needs a TASK (or --task-file PATH, or --from FILE)")
    if sys.stderr.isatty():
        ws.progress = _checkout_progress
    agent = ws.spawn(
        a.task,
        agent=a.agent,
        name=a.name,
        base=a.base,
        after=a.after,
        chain=a.chain,
        host=a.host,
        extra={"guard": a.guard} if a.guard else None,
    )
    print(agent.id)
    sys.stdout.flush()
    # Like SPEC's --no-attach implies: from an interactive terminal, spawn takes you to
    # the agent's pane (detach to come back); scripts and pipes never block on it.
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if (a.attach or interactive) and not a.no_attach and agent.tmux_target:
        argv = ws.attach_argv(agent.id)
        if argv:
            import subprocess

            subprocess.call(argv)
    return 0


def _read_task(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise MulluiError(f"the task file {path} is not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise MulluiError(f"cannot read the task file {path}: {e.strerror or e}") from None
    if not text.strip():
        raise MulluiError(f"the task file {path} is empty")
    return text


def cmd_send(a: argparse.Namespace) -> int:
    # Python 3.11's argparse hands `send ID -- --` over as [] (it strips the "--" that
    # is the text itself, after the one that ends the options): the text was "--".
    text = a.text if isinstance(a.text, str) else "--"
    ws = _ws()
    ws.started_by = "mullui send"
    ws.send(a.id, text, raw=a.raw)
    return 0


def cmd_attach(a: argparse.Namespace) -> int:
    argv = _ws().attach_argv(a.id)
    if argv:
        import subprocess

        return subprocess.call(argv)
    return 0


def cmd_snooze(a: argparse.Namespace) -> int:
    ws = _ws()
    ws.started_by = "mullui snooze"
    if a.until_change:
        x = ws.snooze(a.id, until_change=True)
        print(f"{x.name} snoozed until it changes state")
    else:
        td = parse_duration(a.duration)
        until = datetime.now(UTC) + td
        x = ws.snooze(a.id, until=until)
        print(f"{x.name} snoozed until {until.astimezone().strftime('%Y-%m-%d %H:%M')}")
    return 0


def cmd_wake(a: argparse.Namespace) -> int:
    x = _ws().wake(a.id)
    print(f"{x.name} is awake")
    return 0


def cmd_ack(a: argparse.Namespace) -> int:
    x = _ws().ack(a.id)
    print(f"{x.name} handled: out of the inbox until it changes state")
    return 0


def cmd_merge(a: argparse.Namespace) -> int:
    print(_ws().merge(a.id, into=a.into, commit=a.commit))
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


def _where(x: Any) -> tuple[bool, bool]:
    """(worktree there, branch there) for a local agent, as git sees them now."""
    from pathlib import Path

    from mullui.runtime import worktrees

    if x.host or not x.repo:
        return bool(x.worktree), bool(x.branch)
    try:
        return worktrees.presence(Path(x.repo), Path(x.worktree or "/nonexistent"), x.branch)
    except MulluiError:
        return False, False


def cmd_stop(a: argparse.Namespace) -> int:
    x = _ws().stop(a.id)
    wt, br = _where(x)
    if not x.worktree and not x.branch:
        print(f"{x.name} stopped (it had no worktree yet)")
    elif wt and br:
        print(f"{x.name} stopped; its worktree and branch stay ({x.branch})")
    elif br:
        print(f"{x.name} stopped; its worktree is gone (removed by hand), branch {x.branch} stays")
    elif wt:
        print(f"{x.name} stopped; its worktree stays, its branch {x.branch} is gone")
    else:
        print(f"{x.name} stopped; its worktree and branch are gone (removed by hand)")
    return 0


def cmd_resume(a: argparse.Namespace) -> int:
    from mullui.operations.location import Resume

    if a.all == bool(a.ids):
        raise UsageError("resume needs agent IDs or --all (not both)")
    if a.budget is not None and not (a.budget > 0 and a.budget < float("inf")):
        raise UsageError(f"--budget {a.budget}: give a number of dollars above 0")
    if a.cause not in ("resume:manual", "resume:after-restart"):
        raise UsageError(f"unknown resume cause {a.cause!r}")
    if a.prompt is not None and "\x00" in a.prompt:
        raise UsageError("the prompt contains a NUL byte, which no program can receive")
    ws = _ws()
    how = Resume(
        prompt=a.prompt, cause=a.cause, fresh=a.fresh, budget=a.budget, recreate=a.recreate
    )
    refs = [x.id for x in ws.interrupted()] if a.all else list(a.ids)
    if a.all and not refs:
        print("no interrupted agents: nothing to resume")
        return 0
    failed = 0
    for ref in refs:
        try:
            x = ws.resume(ref, how)
        except MulluiError as e:
            print(f"mullui: {visible(e.message)}", file=sys.stderr)
            failed += 1
            continue
        if x.state.value == "queued":
            print(f"{x.name} ({x.id}) queued to resume: {x.cause}")
        elif x.host:
            print(f"{x.name} ({x.id}) resumed on {x.host}")
        else:
            print(f"{x.name} ({x.id}) resumed in {x.worktree}")
    return 1 if failed else 0


def cmd_rm(a: argparse.Namespace) -> int:
    ws = _ws()
    before = _where(ws.get(a.id))
    x, saved = ws.rm(a.id, force=a.force)
    if saved:
        print(f"saved uncommitted work of {x.name} as {saved[:10]} on {x.branch}")
    if not x.worktree and not x.branch:
        print(f"removed {x.name} (it had no worktree)")
        return 0
    head = (
        f"removed {x.name}'s worktree"
        if before[0]
        else f"{x.name}'s worktree was already gone (removed by hand): cleaned up"
    )
    tail = f"branch {x.branch} stays" if _where(x)[1] else f"its branch {x.branch} is gone too"
    print(f"{head}; {tail}")
    return 0


def cmd_hook(a: argparse.Namespace) -> int:
    from mullui import hook

    hook.ingest(
        a.event,
        a.args,
        agent=a.agent,
        token=a.token,
        status=a.status,
        seconds=a.seconds,
        state_dir=a.state_dir,
        answer=sys.stdout.write,
    )
    return 0


def cmd_trust(a: argparse.Namespace) -> int:
    from pathlib import Path

    from mullui import config
    from mullui.workspace import Workspace

    ws = Workspace()
    target = Path(a.path).absolute() if a.path else ws.repo()
    if target.is_dir():
        target = target / ".mullui.toml"
    if a.revoke:
        if config.revoke(ws.paths.trust_file, target):
            print(f"no longer trusted: {target}")
        else:
            print(f"{target} was not trusted")
        return 0
    digest, keys, shown = config.trust(ws.paths.trust_file, target)
    what = f"its {', '.join(keys)} now apply" if keys else "it sets nothing that needed trust"
    print(
        f"trusted {target} (sha256 {digest[:12]}): {what}; any change to it needs "
        "`mullui trust` again"
    )
    if shown:  # what was trusted, as it reads now (control characters made visible)
        print("\n".join(f"  {ln}" if ln else "" for ln in shown.rstrip("\n").splitlines()))
    return 0


def cmd_hosts(a: argparse.Namespace) -> int:
    from mullui.remote import cli as remote_cli

    return remote_cli.hosts(_ws(), a.action, a.name)


def cmd_watch(a: argparse.Namespace) -> int:
    from mullui import watch

    if a.status:
        return watch.status_main(_ws())
    if a.install:
        return watch.install_main(_ws())
    return watch.watch_main(_ws(), once=a.once, lock_fd=a.lock_fd)


def cmd_events(a: argparse.Namespace) -> int:
    from mullui import watch

    return watch.events_main(_ws(notices=False), follow=a.follow, since=a.since)


def cmd_demo(a: argparse.Namespace) -> int:
    from mullui.demo import run_demo

    return run_demo(tui=not a.no_tui, keep=a.keep)


def cmd_tui(a: argparse.Namespace) -> int:
    from mullui.tui.app import run as run_tui

    return run_tui()


COMMANDS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    None: cmd_tui,
    "ls": cmd_ls,
    "inbox": cmd_inbox,
    "spawn": cmd_spawn,
    "send": cmd_send,
    "attach": cmd_attach,
    "snooze": cmd_snooze,
    "wake": cmd_wake,
    "ack": cmd_ack,
    "merge": cmd_merge,
    "collisions": cmd_collisions,
    "report": cmd_report,
    "logs": cmd_logs,
    "stop": cmd_stop,
    "resume": cmd_resume,
    "rm": cmd_rm,
    "hook": cmd_hook,
    "trust": cmd_trust,
    "hosts": cmd_hosts,
    "watch": cmd_watch,
    "events": cmd_events,
    "demo": cmd_demo,
}


#: Commands whose stdout is for machines or writes escapes on purpose (the TUI, the
#: watch's terminal notifications, logs with its own filter): not made visible.
_OWN_STDOUT = frozenset({None, "hook", "events", "watch", "logs", "demo", "attach"})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    machine = getattr(args, "json", False) or getattr(args, "csv", False)
    if args.cmd not in _OWN_STDOUT and not machine:
        # Human-readable output shows agent and remote text with control characters made
        # visible; JSON and CSV stay exact.
        sys.stdout = VisibleStream(stdout)
    try:
        return _run(args)
    finally:
        sys.stdout = stdout


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.cmd](args)
    except MulluiError as e:
        print(f"mullui: {visible(e.message)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("mullui."):
            print(
                f"mullui: {args.cmd or 'tui'} is not available in this build yet ({e.name})",
                file=sys.stderr,
            )
            return 1
        raise
    except OSError as e:
        # Disk full, permissions, a vanished directory: say what and where, no traceback.
        where = f" ({e.filename})" if e.filename else ""
        print(f"mullui: {visible(f'{e.strerror or e}{where}')}", file=sys.stderr)
        return 1
