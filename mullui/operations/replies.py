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
from typing import Any

from mullui.agents import get_profile
from mullui.agents.base import Dialog, Profile
from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.runtime.tmux import Tmux

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


def answer(
    tmux: Tmux,
    a: Agent,
    dialog: Dialog,
    text: str,
    *,
    enter_delay: float = 0.0,
    denied: Callable[[], None] | None = None,
    answered: Callable[[bool], None] | None = None,
) -> None:
    """Type the reply ``text`` to the open ``dialog`` of agent ``a`` as its keys;
    ``denied`` is called once a denial without a text has closed the dialog,
    ``answered(True)`` just before the Enter that sends a text typed into the dialog's
    field (before: every hook the answer causes comes after it), ``answered(False)`` when
    the dialog then stays open."""
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
    try:
        reply = dialog.reply(text, tmux.screen(target))
    except MulluiError as e:
        raise MulluiError(f"agent {a.name}: {e}") from None
    tmux.keys(target, *reply.keys)

    def closed(screen: str) -> bool:
        return not dialog.shown(screen)

    if reply.field is not None and reply.text is not None:
        # The dialog's own text field ("Tell Claude what to change", "Type something"):
        # typed once the cursor is on it (before that, letters would be shortcuts).
        if not _wait(tmux, target, _cursor_on(reply.field)):
            raise MulluiError(
                f"{what}: its text field did not open, so the text was not sent; "
                f"`mullui attach {a.name}`"
            )
        # Enter once the text is in the field: right behind it, Enter would be taken as
        # part of a paste (measured: the dialog stayed open with the text in it).  One
        # line: a newline in the field would send the start alone.
        line = " ".join(reply.text.split())
        tmux.type(target, line)
        if not _wait(tmux, target, _cursor_on(reply.field, line)):
            raise MulluiError(
                f"{what}: the text typed into its field does not show, so it was not "
                f"sent (no Enter); `mullui attach {a.name}`"
            )
        if answered is not None:
            answered(True)
        tmux.keys(target, "Enter")
        if not _wait(tmux, target, closed):
            if answered is not None:
                answered(False)
            raise MulluiError(
                f"{what} is still open {DIALOG_WAIT_S:.0f} s after the text was typed "
                f"into it; `mullui attach {a.name}`"
            )
        return
    if reply.text is None:
        if reply.denies and denied is not None and _wait(tmux, target, closed):
            denied()
        return
    if not _wait(tmux, target, closed):
        raise MulluiError(
            f"agent {a.name}: the {dialog.name} was refused but is still open after "
            f"{DIALOG_WAIT_S:.0f} s, so the text was not sent; `mullui attach {a.name}`"
        )
    tmux.send(target, reply.text, enter_delay=enter_delay)


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
