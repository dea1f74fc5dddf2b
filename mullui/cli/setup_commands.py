"""The commands of the machinery around agents: hook and events (agents' hooks and a
remote mullui call them), watch, hosts, trust, demo, and the TUI itself."""

from __future__ import annotations

import argparse
import sys

from mullui.cli.scope import _ws


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
