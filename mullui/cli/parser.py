"""The argument parser: every command, its options and their help; durations."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta

from mullui import __version__
from mullui.errors import UsageError

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
        help="type TEXT + Enter into the agent's pane (on its CLI's permission, plan or "
        "question dialog: y allows / approves, n denies, other text denies and tells the "
        "agent; `mullui inbox` says what each does)",
    )
    s.add_argument(
        "--raw",
        action="store_true",
        help="type TEXT + Enter exactly as given, even on a dialog",
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
