"""Typing the human's reply into an agent's pane, in the keys the agent's dialog needs.

``mullui send`` (and the TUI's reply, which goes through the same operation) types text +
Enter.  An agent CLI's permission dialog does not read text: in Claude Code and Codex
Enter picks the highlighted "Yes", so "n" + Enter - or "no, use X instead" - would
*allow* the call.  While an agent is blocked on such a dialog (its profile's
:class:`~mullui.agents.base.Dialog`), the reply is mapped to that dialog's keys; ``--raw``
types exactly what was given.

The pane is checked before and between keys: the dialog must be on the screen (else
nothing is typed), and a text that follows a denial is typed only once the dialog has
closed (a text arriving while it is still open would be read as its shortcuts - and an
Escape directly followed by a letter is read as Alt+letter, the letter then choosing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mullui import guard
from mullui.agents import get_profile
from mullui.agents.base import Dialog, Profile
from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.runtime.tmux import Tmux
from mullui.store import Store

#: How long the dialog may take to appear (the hook fires ~0.1 s before Claude Code
#: draws it) and to close after a denial.
DIALOG_WAIT_S = 5.0
POLL_S = 0.05

#: The cause of ``blocked`` once a reply denied the dialog: the CLI now waits at its
#: prompt for what to do instead (no hook says so).
DENIED_CAUSE = "reply:denied"

#: The cause of ``working`` once a reply's text went into the dialog's own field (Claude's
#: plan feedback, a free-text answer): no hook says so (a refused plan's feedback is
#: followed by no PostToolUse) and the CLI works on it at once.
ANSWERED_CAUSE = "reply:answered"


def open_dialog(profile: Profile | None, a: Agent) -> Dialog | None:
    """The dialog the agent is blocked on now, when it needs its own keys (else None: a
    reply is typed as given)."""
    if profile is None or a.state is not State.BLOCKED:
        return None
    return profile.dialog_for(a.cause, a.question)


#: The cause of ``working`` once the human answered an edit the guard held.
HELD_ANSWERED_CAUSE = "reply:held"


def answer_held(
    tmux: Tmux, store: Store, state_dir: Path, a: Agent, dialog: Dialog, text: str
) -> bool:
    """Answer the edit the collision guard holds for the human, when one is held: agent
    ``a`` blocked on ``collision:PATH`` whose CLI waits in mullui's plugin (OpenCode with
    edits allowed: ``guard.held_calls``), not in its own ``dialog`` (not on the screen).
    Writes the decision the plugin waits for; the agent is ``working`` again (the edit
    runs, or the model reads the refusal).  False: nothing held, the reply goes on."""
    if not a.cause.startswith("collision:") or a.tmux_target is None:
        return False
    calls = guard.held_calls(state_dir, a.id)
    if not calls or dialog.shown(tmux.screen(a.tmux_target)):
        return False
    if not text.strip():
        raise MulluiError(
            f"an empty reply to agent {a.name}'s held edit: nothing sent; y allows it, "
            "n refuses it, any other text refuses it and tells the agent why"
        )
    # working before the plugin can read the answer: every event it causes comes after
    store.emit(a.id, "state", state="working", cause=HELD_ANSWERED_CAUSE)
    try:
        guard.decide_held(state_dir, a.id, calls[0], text)
    except MulluiError:
        store.emit(a.id, "state", state="blocked", cause=a.cause, question=a.question)
        raise
    return True


def _wait(tmux: Tmux, target: str, done: Callable[[str], bool]) -> bool:
    """Wait until ``done(screen)`` holds for the pane's screen."""
    end = time.monotonic() + DIALOG_WAIT_S
    while True:
        if done(tmux.screen(target)):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(POLL_S)


def _cursor_on(option: str, text: str = "") -> Callable[[str], bool]:
    """Is the dialog's cursor (``❯``) on option ``option`` (its text field focused), the
    field showing ``text`` (its start: a long one wraps)?"""
    at = re.compile(rf"^\s*❯\s*{re.escape(option)}\.\s*{re.escape(text[:20])}", re.MULTILINE)
    return lambda screen: at.search(screen) is not None


class Record:
    """What a reply did that no hook reports, written to the agent's record."""

    def __init__(self, store: Store, a: Agent) -> None:
        self.store, self.a = store, a

    def denied(self) -> None:
        # The dialog closed without a hook: the CLI now waits at its prompt.
        q = self.a.question
        what = f"denied {q}" if q else "denied"
        self.blocked(f"{what}: waiting for what to do instead", DENIED_CAUSE)

    def working(self) -> None:
        # The CLI took a text from its dialog's field and works on it.
        self.store.emit(self.a.id, "state", state="working", cause=ANSWERED_CAUSE)

    def blocked(self, question: str | None = None, cause: str | None = None) -> None:
        """Blocked on the dialog again, or on its next step (``question``)."""
        self.store.emit(
            self.a.id,
            "state",
            state="blocked",
            cause=cause or self.a.cause,
            question=question or self.a.question,
        )


def answer(
    tmux: Tmux,
    a: Agent,
    dialog: Dialog,
    text: str,
    *,
    enter_delay: float = 0.0,
    record: Record | None = None,
) -> None:
    """Type the reply ``text`` to the open ``dialog`` of agent ``a`` as its keys, and
    ``record`` what no hook will say: a denial once it closed the dialog, ``working``
    just before the Enter that sends a text typed into the dialog's field (before it:
    every hook the answer causes comes after), the next question of a dialog that asks
    several."""
    target = a.tmux_target
    assert target is not None
    what = f"agent {a.name}'s {dialog.name}"
    if not text.strip():
        raise MulluiError(
            f"an empty reply to {what}: nothing sent; {dialog.hint} "
            f"(`mullui send --raw {a.name} ''` presses Enter, its default)"
        )
    if not _wait(tmux, target, dialog.shown):
        raise MulluiError(
            f"{what} is not on its screen (answered in the pane already?): nothing sent; "
            f"`mullui attach {a.name}` to look, or `mullui send --raw {a.name} TEXT` to "
            f"type TEXT as it is"
        )
    screen = tmux.screen(target)
    try:
        reply = dialog.reply(text, screen)
    except MulluiError as e:
        raise MulluiError(f"agent {a.name}: {e}") from None
    _press(tmux, target, reply.keys)

    def closed(screen: str) -> bool:
        return not dialog.shown(screen)

    if reply.stays_open:
        # The next of several questions: what the dialog asks now goes to the inbox.
        asked = dialog.asks(screen)
        if reply.field is not None and reply.text is not None:
            _type_into(tmux, target, reply.field, reply.text, what)
            tmux.keys(target, "Enter")

        def moved(now: str) -> bool:
            return closed(now) or dialog.asks(now) != asked

        if not _wait(tmux, target, moved):
            raise MulluiError(f"{what} did not move on after the answer; `mullui attach`")
        question = _settled(tmux, target, dialog)
        if question and record is not None:
            record.blocked(question)
        return
    if reply.field is not None and reply.text is not None:
        _type_into(tmux, target, reply.field, reply.text, what)
        if record is not None:
            record.working()
        tmux.keys(target, "Enter")
        if not _wait(tmux, target, closed):
            if record is not None:
                record.blocked()
            raise MulluiError(
                f"{what} is still open {DIALOG_WAIT_S:.0f} s after the text was typed "
                f"into it; `mullui attach {a.name}`"
            )
        return
    if reply.text is None:
        if reply.denies and record is not None and _wait(tmux, target, closed):
            record.denied()
        return
    if not _wait(tmux, target, closed):
        raise MulluiError(
            f"agent {a.name}: the {dialog.name} was refused but is still open after "
            f"{DIALOG_WAIT_S:.0f} s, so the text was not sent; `mullui attach {a.name}`"
        )
    tmux.send(target, reply.text, enter_delay=enter_delay)


def _press(tmux: Tmux, target: str, keys: tuple[str, ...]) -> None:
    """Press ``keys``, each once the one before it has changed the screen (a multi-select's
    toggles then Tab: sent in one burst, Claude Code took none of the toggles)."""
    if not keys:
        return
    *first, last = keys
    for key in first:
        before = tmux.screen(target)
        tmux.keys(target, key)
        _wait(tmux, target, before.__ne__)
    tmux.keys(target, last)


def _settled(tmux: Tmux, target: str, dialog: Dialog) -> str | None:
    """What the dialog asks once its screen has settled (the same on two looks in a row:
    not a frame drawn half way); None when it has closed."""
    last: list[str | None] = []

    def same(screen: str) -> bool:
        last.append(dialog.asks(screen) if dialog.shown(screen) else None)
        return len(last) > 1 and last[-1] == last[-2]

    _wait(tmux, target, same)
    return last[-1]


def _type_into(tmux: Tmux, target: str, field: str, text: str, what: str) -> None:
    """Type ``text`` into the dialog's own text field, option ``field`` ("Tell Claude what
    to change", "Type something"), no Enter: once the cursor is on it (before that,
    letters would be shortcuts); returns once the field shows the text (an Enter right
    behind it is taken as part of a paste: measured, the dialog stayed open)."""
    if not _wait(tmux, target, _cursor_on(field)):
        raise MulluiError(f"{what}: its text field did not open, so the text was not sent")
    line = " ".join(text.split())  # one line: a newline would send the start alone
    tmux.type(target, line)
    if not _wait(tmux, target, _cursor_on(field, line)):
        raise MulluiError(
            f"{what}: the text typed into its field does not show, so it was not sent (no Enter)"
        )


def dialog_of(a: Agent, profiles: dict[str, dict[str, Any]] | None = None) -> Dialog | None:
    """The dialog of its CLI the agent is blocked on now, when a reply is mapped to its
    keys (None: typed as given)."""
    try:
        profile = get_profile(a.profile, profiles)
    except MulluiError:
        return None
    return open_dialog(profile, a)


def dialog_hint(a: Agent, profiles: dict[str, dict[str, Any]] | None = None) -> str | None:
    """What a reply does to the agent now (``y allows once · n denies · ...``) when it is
    blocked on a dialog of its CLI that needs its own keys; None when a reply is typed as
    given."""
    dialog = dialog_of(a, profiles)
    return dialog.hint if dialog is not None else None
