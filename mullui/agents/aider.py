"""``aider``: Aider, watched through its notifications command and its pane.

Aider has no hooks and no payloads.  What it has (verified with aider 0.86.2,
``aider/io.py``): with ``--notifications``, the first time it waits for the human after
the model has spoken (``ring_bell``: on the chat prompt *and* on every ``confirm_ask`` /
``prompt_ask`` question), it runs ``--notifications-command`` through a shell, with no
argument and no stdin, waits for it, and only then draws what it waits on.  So the
command is :mod:`mullui.agents.aider_notify`, which returns at once and, detached, reads
the pane (on mullui's tmux socket, named in the command: agents get no ``$TMUX``) until
the prompt is drawn, then calls ``<hook argv> aider-idle`` with the pane's
last lines and the usage so far.  **This is the one place where mullui reads an agent's
screen for its state**: nothing else tells a question from the chat prompt, and nothing
else carries the question.  The cause says so (``screen:aider-idle``).

The task goes in with ``--message TASK`` (one argv element): aider sends it, works, and
*exits* when the reply is done.  That shapes the signals:

- ``aider-idle`` with a ``(Y)es/(N)o`` question as the pane's last line -> ``blocked``
  with the question (e.g. ``Run shell command? touch hello.txt``); with the chat prompt
  (``> ``, ``diff> ``...: only outside ``--message``, e.g. a resumed chat) -> ``done``.
- The turn ending is the process ending: ``pane-died`` with exit 0 -> ``done``, non-zero
  -> ``failed`` (the runtime reports both).
- A second question in the same model turn does not ring again (aider clears its bell
  flag until the model speaks next), so ``has_hooks`` stays False: tmux silence still
  catches what the notification misses.
- Usage: ``--analytics-log`` (local JSON lines, written even with analytics off) has one
  ``message_send`` event per model call with exact tokens and aider's cost; the totals
  ride along with each ``aider-idle``.

Chat and input history go to the agent's profile dir (not the worktree), which is also
what ``--restore-chat-history`` resumes from.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Any

from mullui.agents.base import Event, LaunchContext, Profile, model_and_args
from mullui.paths import tmux_socket

IDLE_EVENT = "aider-idle"
EXIT_EVENT = "aider-exit"
CAUSE = f"screen:{IDLE_EVENT}"
ANALYTICS_LOG = "aider-analytics.jsonl"
CHAT_HISTORY = "aider.chat.history.md"
INPUT_HISTORY = "aider.input.history"

#: aider's confirmation options, e.g. `` (Y)es/(N)o/(D)on't ask again [Yes]: ``
OPTIONS = re.compile(r"\s*\(Y\)es/\(N\)o.*$")
MAX_SUMMARY = 300


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AiderProfile(Profile):
    name = "aider"
    has_hooks = False
    reports_blocked = True

    def __init__(self, binary: str = "aider") -> None:
        self.binary = binary

    def notifications_command(self, ctx: LaunchContext) -> str:
        # Aider runs this string with ``shell=True``; shlex.join keeps each argv element
        # (an interpreter path with spaces, say) one word.  The task is never in it.
        log = ctx.profile_dir / ANALYTICS_LOG
        socket = tmux_socket({**os.environ, **ctx.env})
        waiter = [sys.executable, "-m", "mullui.agents.aider_notify", "--socket", socket]
        waiter += [str(log), "--"]
        return shlex.join([*waiter, *ctx.hook_argv, IDLE_EVENT])

    def wiring(self, ctx: LaunchContext) -> list[str]:
        return [
            "--notifications",
            "--notifications-command",
            self.notifications_command(ctx),
            "--analytics-log",
            str(ctx.profile_dir / ANALYTICS_LOG),
            "--chat-history-file",
            str(ctx.profile_dir / CHAT_HISTORY),
            "--input-history-file",
            str(ctx.profile_dir / INPUT_HISTORY),
        ]

    def wrapped(self, ctx: LaunchContext, aider: list[str]) -> list[str]:
        """``aider`` run by :func:`mullui.agents.aider_notify.run`, which reports the usage
        of the last reply when aider exits (no notification carries it in ``--message``
        mode), then exits with aider's code."""
        log = str(ctx.profile_dir / ANALYTICS_LOG)
        runner = [sys.executable, "-m", "mullui.agents.aider_notify", "--run", log, "--"]
        return [*runner, *ctx.hook_argv, EXIT_EVENT, "--", *aider]

    def command(self, ctx: LaunchContext) -> list[str]:
        # argparse would read a task starting with "-" as an option; the "--opt=value"
        # form keeps it the option's value whatever it starts with.
        message = (
            ["--message", ctx.task] if not ctx.task.startswith("-") else [f"--message={ctx.task}"]
        )
        return self.wrapped(ctx, [self.binary, *self.wiring(ctx), *model_and_args(ctx), *message])

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``aider --restore-chat-history`` reloads the agent's chat history file and waits
        at its chat prompt (aider has no session ids); with a prompt, ``--message`` sends
        it (and aider exits after its reply, as on spawn)."""
        aider = [self.binary, *self.wiring(ctx), *model_and_args(ctx), "--restore-chat-history"]
        if prompt:
            aider.append(f"--message={prompt}")
        return self.wrapped(ctx, aider)

    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        if event not in (IDLE_EVENT, EXIT_EVENT):
            return [{"kind": "activity", "cause": f"hook:{event}"}]
        out: list[Event] = []
        usage = payload.get("usage")
        if isinstance(usage, dict):
            ev = _usage(usage)
            if ev is not None:
                out.append(ev)
        if event == EXIT_EVENT:
            # the exit itself (and its code) comes from tmux's pane-died
            return out or [{"kind": "activity", "cause": f"hook:{EXIT_EVENT}"}]
        screen = payload.get("screen")
        lines = [x for x in screen.splitlines() if x.strip()] if isinstance(screen, str) else []
        last = lines[-1] if lines else ""
        if OPTIONS.search(last):
            question = OPTIONS.sub("", last).strip()
            subject = lines[-2].strip() if len(lines) > 1 else ""
            if subject and not subject.startswith(("─", "Tokens:")):
                question = f"{question} {subject}"
            out.append(
                {"kind": "state", "state": "blocked", "cause": CAUSE, "question": _clip(question)}
            )
        elif last.rstrip().endswith(">"):
            out.append({"kind": "state", "state": "done", "cause": CAUSE, "message": None})
        else:
            # The prompt was not drawn in time (a loaded machine): say nothing rather than
            # guess; tmux silence is still on for aider.
            out.append({"kind": "activity", "cause": CAUSE})
        return out


def _usage(u: dict[str, Any]) -> Event | None:
    def n(v: Any) -> int:
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    cost = u.get("cost_usd")
    cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else 0.0
    tin, tout = n(u.get("tokens_in")), n(u.get("tokens_out"))
    if not tin and not tout:
        return None
    return {"kind": "usage", "tokens_in": tin, "tokens_out": tout, "cost_usd": round(cost, 6)}
