"""The commands that act on agents: spawn, send, attach, snooze, wake, ack, merge,
stop, resume, rm."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from mullui.cli.parser import parse_duration
from mullui.cli.scope import _ws
from mullui.errors import MulluiError, UsageError
from mullui.textsafe import visible


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
