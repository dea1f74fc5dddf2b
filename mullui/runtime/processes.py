"""An agent's whole process tree, found and ended (``mullui stop``, ``rm --force``).

Killing a tmux window sends SIGHUP to the pane's process only; a dev server started with
``nohup``, a watcher that ignores SIGTERM, or anything re-parented to init when its parent
died would live on while ``ls`` says stopped.  So the tree is found three ways, in
``/proc`` (Linux), and ended with SIGTERM, then SIGKILL after a grace period:

- the pane's session and process group (tmux makes the pane's process a session leader;
  without job control everything it starts stays in both);
- the descendants of those by parent pid;
- every process whose environment carries the agent's tag (``MULLUI_AGENT_ID=<id>``,
  inherited through ``setsid``, double forks and re-parenting alike).

Never ended: this process, its ancestors, and pids the caller names (the tmux server that
hosts the agent).  Zombies count as gone: a container's init may never reap them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """One line of ``/proc/PID/stat``, the fields we need."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str  # R S D Z T ...


def _stat(pid: int) -> Proc | None:
    try:
        raw = (PROC / str(pid) / "stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ..." — comm may hold spaces and parentheses.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return Proc(pid, int(rest[1]), int(rest[2]), int(rest[3]), rest[0])
    except (IndexError, ValueError):
        return None


def _all() -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    try:
        names = os.listdir(PROC)
    except OSError:
        return out
    for name in names:
        if name.isdigit():
            p = _stat(int(name))
            if p is not None and p.state != "Z":
                out[p.pid] = p
    return out


def _has_env(pid: int, tag: bytes) -> bool:
    try:
        env = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False  # another user's process, or gone
    return env.startswith(tag + b"\0") or (b"\0" + tag + b"\0") in env or env == tag


def _protected(extra: Iterable[int]) -> set[int]:
    keep = {0, 1, *extra}
    pid = os.getpid()
    while pid > 1 and pid not in keep:
        keep.add(pid)
        p = _stat(pid)
        if p is None:
            break
        pid = p.ppid
    return keep


def tree(root: int | None, tag: str | None = None, *, keep: Iterable[int] = ()) -> set[int]:
    """The live processes of the tree rooted at ``root`` (session, group, descendants)
    plus every process whose environment holds ``tag`` (``NAME=value``)."""
    procs = _all()
    protected = _protected(keep)
    found: set[int] = set()
    if root is not None and root > 1:
        # Linux never hands out a pid still in use as a session or group id, so members
        # of ``root``'s session/group are the tree's even after the root itself exited.
        found |= {p.pid for p in procs.values() if root in (p.sid, p.pgid)}
    if tag:
        needle = tag.encode()
        found |= {pid for pid in procs if pid not in found and _has_env(pid, needle)}
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found - protected


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not)."""
    p = _stat(pid)
    return p is not None and p.state != "Z"


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
            if sig == signal.SIGTERM:
                os.kill(pid, signal.SIGCONT)  # a stopped process would never see TERM
        except OSError:
            pass  # gone meanwhile, or not ours


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    left = {p for p in pids if alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = {p for p in left if alive(p)}
    return left


def end(
    root: int | None, tag: str | None = None, *, grace: float = 3.0, keep: Iterable[int] = ()
) -> list[int]:
    """End the tree: SIGTERM, up to ``grace`` seconds, then SIGKILL.  Returns the pids
    that survived even that (another user's process, one stuck in the kernel)."""
    keep = tuple(keep)
    first = tree(root, tag, keep=keep)
    if not first:
        return []
    _signal(first, signal.SIGTERM)
    left = _wait_gone(first, grace)
    # Whatever the first round's processes started meanwhile belongs to the tree too.
    left |= tree(root, tag, keep=keep)
    if left:
        _signal(left, signal.SIGKILL)
        left = _wait_gone(left, 2.0)
    return sorted(left)
