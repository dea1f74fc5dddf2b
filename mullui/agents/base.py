"""The one small interface every agent profile implements.

A profile knows three things about an agent CLI: how to launch it (argv + env), how to
wire its own hooks to ``mullui hook`` without touching the user's config (files under
``ctx.profile_dir``, outside the worktree), and how a raw hook event maps onto mullui's
normalized events.

Normalized events (plain dicts, appended to the agent's spool by ``mullui hook``):

- ``{"kind": "state", "state": "working"|"blocked"|"done", "cause": "hook:Stop",
  "question": str|None, "message": str|None}`` - a requested state change.
- ``{"kind": "exit", "exit_code": int, "cause": "hook:SessionEnd"}`` - the agent process ended.
- ``{"kind": "activity", "cause": "hook:PreToolUse"}`` - a sign of life (resets the stall clock).
- ``{"kind": "meta", "session_id": str, "transcript_path": str}`` - facts for resuming / usage.
- ``{"kind": "usage", "tokens_in": int, "tokens_out": int, "cost_usd": float}`` - totals so far.

The reducer in ``model.py`` decides whether a requested change is legal now; a profile
only reports what its agent said.
"""

from __future__ import annotations

import shlex
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mullui.placeholders import PREV_KEYS, shell_text

Event = dict[str, Any]

#: The hook every agent runs for an event that needs no answer: POSIX sh, no Python.
#: It stores the raw event (see ``mullui/fasthook/spool.sh``); mullui translates it.
SPOOL_SH = Path(__file__).resolve().parent.parent / "fasthook" / "spool.sh"


def spool_hook_argv() -> tuple[str, ...]:
    """The argv prefix of the fast hook (add EVENT, then any args): ``LaunchContext.hook_argv``
    for agents mullui spawns.  ~1-2 ms per call (``sh`` + ``cat``)."""
    return ("/bin/sh", str(SPOOL_SH))


def answer_hook_argv(python: str | None = None) -> tuple[str, ...]:
    """The argv prefix of a hook the agent waits on and that may answer (the collision
    guard): the same fast store, then - only when ``<state>/answer/EVENT`` exists -
    ``python -S -I fasthook/answer.py``, whose stdout is the answer."""
    return ("/bin/sh", str(SPOOL_SH), "--answer", python or sys.executable)


def hook_command(argv: Sequence[str], event: str, *args: str) -> str:
    """The shell command line an agent CLI runs for ``event`` (CLIs that take a command
    string, run by a shell): each argv element one word whatever it holds."""
    return shlex.join([*argv, event, *args])


@dataclass(frozen=True)
class LaunchContext:
    """Everything a profile may need to build an agent's command line."""

    agent_id: str
    name: str
    task: str
    worktree: Path
    branch: str
    repo: Path
    profile_dir: Path  # private per-agent dir outside the worktree (settings, plugins)
    hook_argv: tuple[str, ...]  # argv prefix of the hook (add EVENT, and args); no answer
    session_id: str  # a UUID mullui pins so a conversation can be resumed
    env: dict[str, str] = field(default_factory=dict)  # MULLUI_AGENT_ID, _TOKEN, _HOME...
    options: dict[str, Any] = field(default_factory=dict)  # profile config from TOML
    #: argv prefix for events the agent waits on and that may be answered (the collision
    #: guard's PreToolUse); empty: ``hook_argv`` (see :func:`answer_argv`)
    answer_hook_argv: tuple[str, ...] = ()
    #: the conversation file the CLI reported (hooks' ``transcript_path``), for a resume
    transcript_path: str | None = None


#: What a resumed agent receives (``mullui resume --prompt`` / ``resume_prompt`` in config
#: override it; a profile may have its own, :attr:`Profile.resume_prompt`).
DEFAULT_RESUME_PROMPT = (
    "You were interrupted. Continue where you left off; if your task is complete, say so."
)


def answer_argv(ctx: LaunchContext) -> tuple[str, ...]:
    """The hook argv prefix for an event that may need an answer."""
    return ctx.answer_hook_argv or ctx.hook_argv


def model_and_args(ctx: LaunchContext) -> list[str]:
    """``--model M`` and extra args from ``[profiles.NAME] model / args`` (most agent
    CLIs spell the model flag the same way)."""
    argv: list[str] = []
    model = ctx.options.get("model")
    if isinstance(model, str) and model:
        argv += ["--model", model]
    extra = ctx.options.get("args")
    if isinstance(extra, list):
        argv += [str(a) for a in extra]
    return argv


def meta_events(payload: dict[str, Any]) -> list[Event]:
    """A ``meta`` event for the hook payload's ``session_id`` / ``transcript_path`` (the
    Claude-style hook payload fields), or nothing when it carries neither."""
    meta = {
        k: payload[k]
        for k in ("session_id", "transcript_path")
        if isinstance(payload.get(k), str) and payload[k]
    }
    return [{"kind": "meta", **meta}] if meta else []


def write_file(path: Path, text: str) -> None:
    """Write a generated settings/plugin file whole (temp + rename): an agent starting
    at the same moment never reads half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


#: Replies that allow / deny a permission dialog (after ``strip().lower()``).
ALLOW_WORDS = ("y", "yes")
DENY_WORDS = ("n", "no")


@dataclass(frozen=True)
class Reply:
    """What ``mullui send`` types into a pane for the human's answer to a dialog: ``keys``
    (tmux key names, e.g. ``1`` or ``Escape``) and then ``text`` + Enter (None: nothing
    more) - once the dialog has closed, or, when ``field`` is set, into the dialog's own
    text field: option ``field``, on which ``keys`` put the cursor."""

    keys: tuple[str, ...]
    text: str | None = None
    #: the keys deny the call (the agent then waits at its prompt)
    denies: bool = False
    #: the number of the dialog's option that is a text field and takes ``text``
    field: str | None = None
    #: the dialog stays open after the answer, on its next step (the next of several
    #: questions): :meth:`Dialog.asks` says what it asks then
    stays_open: bool = False


@dataclass(frozen=True)
class Dialog:
    """An agent CLI's own permission dialog, and the keys it needs.

    In Claude Code and Codex the dialog ignores a typed ``n`` or takes a text's first
    letter as a shortcut, and Enter picks the highlighted option, "Yes": text typed as is
    would *allow* the call.  So while the agent is blocked on the dialog (its cause is one
    of ``causes``) a reply is mapped (:meth:`reply`): one of the dialog's own ``options``
    -> that key, ``y``/``yes`` -> ``allow``, ``n``/``no`` -> ``deny``, any other text ->
    ``deny``, then the text (the CLI's "deny and tell the agent what to do instead").
    """

    #: causes of ``blocked`` that mean this dialog is open (a trailing ``:`` is a prefix)
    causes: tuple[str, ...]
    #: text on the pane's screen while the dialog is open (and only then)
    marker: str
    #: keys that allow the call once, and keys that deny it
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ("Escape",)
    #: the dialog's own option keys (Claude's ``1``/``2``/``3``): a reply that is exactly
    #: one of them is pressed as that key, no Enter
    options: tuple[str, ...] = ()
    #: those of ``options`` that deny (Claude's ``3``)
    denying: tuple[str, ...] = ()
    #: what y / n / other text do, for the inbox and the reply box
    hint: str = "y allows once · n denies · other text denies and tells the agent instead"
    #: what the human is asked, in messages ("agent X's permission dialog ...")
    name: str = "permission dialog"

    def is_open(self, cause: str) -> bool:
        """Is the agent, blocked for ``cause``, waiting on this dialog?"""
        return any(cause == c or (c.endswith(":") and cause.startswith(c)) for c in self.causes)

    def shown(self, screen: str) -> bool:
        """Is the dialog on ``screen`` (the pane's visible text)?"""
        return self.marker in screen

    def asks(self, screen: str) -> str | None:
        """What the dialog on ``screen`` asks now, when that differs from the question
        that opened it (the next of several questions); None: nothing new."""
        return None

    def reply(self, text: str, screen: str = "") -> Reply:
        """The keys for the reply ``text`` to the dialog on ``screen``; a reply the dialog
        cannot take raises ``MulluiError`` (nothing is typed)."""
        word = text.strip().lower()
        if word in self.options:
            return Reply((word,), denies=word in self.denying)
        if word in ALLOW_WORDS:
            return Reply(self.allow)
        if word in DENY_WORDS:
            return Reply(self.deny, denies=True)
        return Reply(self.deny, text, denies=True)


class Profile(ABC):
    """How to launch and watch one kind of agent CLI."""

    #: profile name as used with ``--agent``
    name: str = ""
    #: True when the CLI reports its own status through hooks; False means mullui falls
    #: back to tmux silence (a heuristic, and the state's cause says so).
    has_hooks: bool = False
    #: True when the CLI can signal "blocked on a human"; documented per profile.
    reports_blocked: bool = False
    #: The hook event the collision guard answers before this CLI edits a file (one of
    #: ``mullui.guard.EDIT_TOOLS``; None: the CLI sends none, the radar alone watches it).
    guard_event: str | None = None
    #: The CLI's permission dialog when it needs its own keys (None: a reply to a
    #: blocked agent is typed as given; docs/agents.md "Answering a dialog").
    dialog: Dialog | None = None
    #: Seconds between typing a reply and its Enter (a CLI that takes a fast Enter after
    #: text as part of a paste would only insert a newline).
    enter_delay_s: float = 0.0
    #: True when the task is shell text (``shell``, a custom ``sh -c {task}``): a
    #: ``{prev.*}`` in it becomes ``"$MULLUI_PREV_*"``, never the value itself.
    task_is_shell: bool = False

    def dialog_for(self, cause: str, question: str | None) -> Dialog | None:
        """The dialog an agent blocked for ``cause`` on ``question`` waits on, when it
        needs its own keys (None: a reply is typed as given)."""
        d = self.dialog
        return d if d is not None and d.is_open(cause) else None

    @abstractmethod
    def command(self, ctx: LaunchContext) -> list[str]:
        """The argv to run in the agent's tmux window (cwd = worktree). Task text is one
        argv element, never passed through a shell (except the ``shell`` profile, whose
        task *is* a shell command line by contract)."""

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        """Write hook wiring under ``ctx.profile_dir``; return extra environment."""
        return {}

    def check(self, task: str) -> None:
        """Refuse (``MulluiError``), before anything is created, a task whose placeholders
        would have to be spliced into shell text (one inside quotes)."""
        if self.task_is_shell and "{prev." in task:
            shell_text(task, PREV_KEYS, "the task")

    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        """Map one raw hook call (``mullui hook EVENT``) to normalized events."""
        return []

    #: the prompt a resumed agent receives when neither ``--prompt`` nor the config says
    #: one (None: :data:`DEFAULT_RESUME_PROMPT`)
    resume_prompt: str | None = None
    #: False when the CLI reopens a conversation but takes no prompt with it (OpenCode):
    #: the resumed agent is then idle at its prompt - ``done`` - until the human sends one
    resume_takes_prompt: bool = True
    #: False when the usage a resumed process reports counts its new turns only (the
    #: ledger then adds the earlier runs' totals under it, as for ``--fresh``)
    resume_keeps_usage: bool = True
    #: True when resuming runs the command again (``shell``, custom commands): no
    #: conversation waits for a prompt, the command works
    resume_reruns: bool = False

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """argv that continues the agent's conversation ``ctx.session_id`` (after a crash,
        a stop, a reboot) and gives it ``prompt`` (None or empty: no new prompt); None when
        the CLI cannot resume that session (``mullui resume --fresh`` starts it again)."""
        return None
