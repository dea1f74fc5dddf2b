"""Agent names: the slug a branch, a worktree and a tmux window are named after, and a
name no other agent has."""

from __future__ import annotations

import re

from mullui.context import Context
from mullui.errors import MulluiError


def slugify(text: str, limit: int = 24) -> str:
    """A branch- and tmux-safe slug from free text (``Fix the bug`` -> ``fix-the-bug``)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    s = s[:limit].rstrip("-")
    return s or "agent"


def taken_names(ctx: Context) -> set[str]:
    """Names of the agents not removed (a removed agent's name is free again)."""
    return {a.name for a in ctx.store.all() if not a.removed}


def unique_name(ctx: Context, name: str | None, task: str) -> str:
    """``name`` when it is one free line (error otherwise); without one, the task's slug
    made unique with ``-2``, ``-3``..."""
    taken = taken_names(ctx)
    if name is not None:
        if not name.strip() or any(c in name for c in "\x00\n\r"):
            raise MulluiError("the agent name must be one non-empty line")
        if name in taken:
            raise MulluiError(
                f"name {name!r} is taken by another agent: pick another --name "
                "or `mullui rm` the old one"
            )
        return name
    base = slugify(task)
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}-{n}"
        n += 1
    return candidate
