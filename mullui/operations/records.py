"""An agent's files as a whole: a fresh id, and forgetting an agent that never ran."""

from __future__ import annotations

import contextlib
import secrets
import shutil

from mullui.context import Context


def new_id(ctx: Context) -> str:
    """Eight hex digits no agent of this instance has."""
    agent_id = secrets.token_hex(4)
    while ctx.paths.spool_file(agent_id).exists():
        agent_id = secrets.token_hex(4)
    return agent_id


def forget(ctx: Context, agent_id: str) -> None:
    """Remove every file of an agent whose spawn failed before it ever ran."""
    p = ctx.paths
    for f in (
        p.spool_file(agent_id),
        p.record_file(agent_id),
        p.secret_file(agent_id),
        p.agents_dir / f"{agent_id}.lock",
        p.log_file(agent_id),
    ):
        with contextlib.suppress(OSError):
            f.unlink()
    shutil.rmtree(p.profile_dir(agent_id), ignore_errors=True)
