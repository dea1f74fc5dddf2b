"""The entry point: parse, run the command, print a MulluiError once as one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mullui.cli.agent_commands import (
    cmd_ack,
    cmd_attach,
    cmd_merge,
    cmd_resume,
    cmd_rm,
    cmd_send,
    cmd_snooze,
    cmd_spawn,
    cmd_stop,
    cmd_wake,
)
from mullui.cli.parser import build_parser
from mullui.cli.read_commands import cmd_collisions, cmd_inbox, cmd_logs, cmd_ls, cmd_report
from mullui.cli.setup_commands import (
    cmd_demo,
    cmd_events,
    cmd_hook,
    cmd_hosts,
    cmd_trust,
    cmd_tui,
    cmd_watch,
)
from mullui.errors import MulluiError
from mullui.textsafe import VisibleStream, visible

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
