"""``shell``: TASK is a shell command line run in the worktree; and custom argv profiles.

Neither has hooks: exit status comes from tmux ``pane-died``, "waiting for input" from
tmux silence (a heuristic, and the state's cause says ``silence:Ns``).
"""

from __future__ import annotations

from typing import Any

from mullui.agents.base import LaunchContext, Profile
from mullui.errors import ConfigError
from mullui.placeholders import expand, expand_argv, shell_script_index, shell_text


class ShellProfile(Profile):
    name = "shell"
    task_is_shell = True
    resume_reruns = True

    def command(self, ctx: LaunchContext) -> list[str]:
        # By contract the task *is* a shell command line; it reaches sh as one argv
        # element, so nothing but that sh ever interprets it.
        return ["/bin/sh", "-c", ctx.task]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """A command line has no conversation: resuming runs it again."""
        return self.command(ctx)


PLACEHOLDERS = ("task", "id", "worktree", "branch")


class CustomProfile(Profile):
    """A ``[profiles.NAME] command = [...]`` from config; each placeholder stays inside
    its own argv element.  In shell text (``sh -c SCRIPT``) a placeholder becomes a quoted
    variable reference (``"$MULLUI_TASK"``) and the value goes in the environment - but
    a script that is exactly ``{task}`` runs the task as shell text, as ``shell`` does."""

    resume_reruns = True

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        command = options.get("command")
        if not command:
            raise ConfigError(f"[profiles.{name}] command is required for a custom profile")
        self.template: list[str] = list(command)
        script = shell_script_index(self.template)
        self.task_is_shell = script is not None and self.template[script] == "{task}"
        self.where = f"[profiles.{name}] command"
        self.resume_template: list[str] = list(options.get("resume") or ())
        self.resume_where = f"[profiles.{name}] resume"

    def _values(self, ctx: LaunchContext) -> dict[str, str]:
        return {
            "task": ctx.task,
            "id": ctx.agent_id,
            "worktree": str(ctx.worktree),
            "branch": ctx.branch,
        }

    def _expanded(self, ctx: LaunchContext) -> tuple[list[str], dict[str, str]]:
        if self.task_is_shell:  # the task is the script (its {prev.*} already references)
            return [expand(arg, self._values(ctx)) for arg in self.template], {}
        return expand_argv(self.template, self._values(ctx), self.where)

    def check(self, task: str) -> None:
        super().check(task)
        script = shell_script_index(self.template)
        if script is not None and not self.task_is_shell:
            shell_text(self.template[script], PLACEHOLDERS, self.where)

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        env = self._expanded(ctx)[1]
        if self.resume_template:  # the values its shell text reads, on a resume
            env.update(expand_argv(self.resume_template, self._values(ctx), self.resume_where)[1])
        return env

    def command(self, ctx: LaunchContext) -> list[str]:
        return self._expanded(ctx)[0]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``[profiles.NAME] resume`` when given (same placeholders as ``command``), else
        the command again."""
        if self.resume_template:
            return expand_argv(self.resume_template, self._values(ctx), self.resume_where)[0]
        return self.command(ctx)
