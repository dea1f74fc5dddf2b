"""``aider``: Aider, watched through its notifications command and its exit status.

Aider has no hooks and no payloads.  What it has (aider 0.8x ``aider/io.py``): with
``--notifications``, the first time it waits for the human after the model has spoken
(``ring_bell``: on the chat prompt *and* on every ``confirm_ask`` / ``prompt_ask``
question), it runs ``--notifications-command`` through a shell, with no arguments and no
stdin.  So the event name is baked into the command: ``<hook argv> aider-idle``.

The task goes in with ``--message TASK`` (one argv element): aider sends it, works, and
*exits* when the reply is done.  That shapes the signals:

- ``aider-idle`` while running with ``--message`` can only be a question: aider never
  shows its chat prompt in that mode, so the notification means a confirmation such as
  "Add file to the chat?" or "Run shell command?" is waiting -> ``blocked``.  The text of
  the question is not passed to the command; the pane shows it.
- The turn ending is the process ending: ``pane-died`` with exit 0 -> ``done``, non-zero
  -> ``failed`` (the runtime reports both).
- A second question in the same model turn does not ring again (aider clears its bell
  flag until the model speaks next), so ``has_hooks`` stays False: tmux silence still
  catches what the notification misses, and a reply typed into the pane resumes output.
"""

from __future__ import annotations

import shlex
from typing import Any

from mullui.agents.base import Event, LaunchContext, Profile, model_and_args

IDLE_EVENT = "aider-idle"

QUESTION = "aider asks a yes/no question in its pane (see the log)"


class AiderProfile(Profile):
    name = "aider"
    has_hooks = False
    reports_blocked = True

    def __init__(self, binary: str = "aider") -> None:
        self.binary = binary

    def notifications_command(self, ctx: LaunchContext) -> str:
        # Aider runs this string with ``shell=True``; shlex.join keeps each argv element
        # (an interpreter path with spaces, say) one word.  The task is never in it.
        return shlex.join([*ctx.hook_argv, IDLE_EVENT])

    def command(self, ctx: LaunchContext) -> list[str]:
        # argparse would read a task starting with "-" as an option; the "--opt=value"
        # form keeps it the option's value whatever it starts with.
        message = (
            ["--message", ctx.task] if not ctx.task.startswith("-") else [f"--message={ctx.task}"]
        )
        return [
            self.binary,
            "--notifications",
            "--notifications-command",
            self.notifications_command(ctx),
            *model_and_args(ctx),
            *message,
        ]

    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        if event == IDLE_EVENT:
            return [
                {
                    "kind": "state",
                    "state": "blocked",
                    "cause": f"hook:{IDLE_EVENT}",
                    "question": QUESTION,
                }
            ]
        return [{"kind": "activity", "cause": f"hook:{event}"}]
