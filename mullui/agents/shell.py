"""``shell``: TASK is a shell command line run in the worktree; and custom argv profiles.

Neither has hooks: exit status comes from tmux ``pane-died``, "waiting for input" from
tmux silence (a heuristic, and the state's cause says ``silence:Ns``).
"""

from __future__ import annotations

from typing import Any

from mullui.agents.base import LaunchContext, Profile
from mullui.errors import ConfigError
from mullui.placeholders import expand


class ShellProfile(Profile):
    name = "shell"

    def command(self, ctx: LaunchContext) -> list[str]:
        # By contract the task *is* a shell command line; it reaches sh as one argv
        # element, so nothing but that sh ever interprets it.
        return ["/bin/sh", "-c", ctx.task]


PLACEHOLDERS = ("task", "id", "worktree", "branch")


class CustomProfile(Profile):
    """A ``[profiles.NAME] command = [...]`` from config; each placeholder stays inside
    its own argv element."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        command = options.get("command")
        if not command:
            raise ConfigError(f"[profiles.{name}] command is required for a custom profile")
        self.template: list[str] = list(command)

    def command(self, ctx: LaunchContext) -> list[str]:
        values = {
            "task": ctx.task,
            "id": ctx.agent_id,
            "worktree": str(ctx.worktree),
            "branch": ctx.branch,
        }
        return [expand(arg, values) for arg in self.template]
