"""Merge asks first: the target, the files the merge changes, and where the target is
checked out, from ``review.plan`` (computed without touching anything)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from mullui.errors import MulluiError
from mullui.model import Agent
from mullui.tui import literal
from mullui.tui.host import Host

#: Files listed in the dialog before "and N more"; fewer on a short terminal.
SHOWN_FILES = 8
#: Lines the dialog takes besides the file list (border, title, buttons, hints).
CHROME_LINES = 16


@dataclass(frozen=True)
class MergeQuestion:
    """What the dialog shows: ``review.MergePlan`` reduced to text (no Textual in core)."""

    agent_id: str
    agent_name: str
    question: str  # review.MergePlan.question(): "Merge fix-login (3 files) into main?"
    branch: str
    target: str
    files: tuple[str, ...]
    checkout: Path | None
    follow_up: bool = False  # --after / a chain step: its predecessors are merged with it


def files_text(files: tuple[str, ...], shown: int = SHOWN_FILES) -> Text:
    t = Text()
    for f in files[:shown]:
        t.append(f"  {literal.visible(f)}\n")
    if len(files) > shown:
        t.append(f"  … and {len(files) - shown} more\n", style="dim")
    t.rstrip()
    return t


class MergeScreen(ModalScreen[bool]):
    """Dismisses with True (y / Merge) or False (n / escape)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Merge"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, q: MergeQuestion) -> None:
        super().__init__(classes="dialog-screen")
        self.q = q

    def compose(self) -> ComposeResult:
        q = self.q
        where = (
            f"{q.target} is checked out in {q.checkout}: that checkout moves forward too."
            if q.checkout is not None
            else f"{q.target} is not checked out anywhere: only the branch moves."
        )
        line = f"{q.branch} → {q.target}"
        if q.follow_up:
            line += "  (a follow-up: the steps before it go in with it)"
        with Vertical(classes="dialog", id="merge"):
            yield Label(literal.text(q.question), classes="dialog-title")
            yield Label(literal.text(line), classes="dialog-detail")
            yield Label("Files it changes in the target:", classes="field-label")
            shown = max(2, min(SHOWN_FILES, self.app.size.height - CHROME_LINES))
            yield Static(files_text(q.files, shown), id="merge-files")
            yield Static(literal.text(where), classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Merge (y)", variant="primary", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        # Like stop: enter (attach, on the main screen) pressed out of habit must not merge.
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def merge(host: Host, a: Agent) -> None:
    """m: ask first (review.plan: target, files), refuse in one line (conflicts named),
    then merge in a thread worker; git can take a while on a big repository."""
    host.blocking("merge", merge_question, host.actions, a.id, then=lambda q: _ask_merge(host, q))


def merge_question(actions: Any, agent_id: str) -> MergeQuestion:
    """What the dialog asks, from ``review.plan`` (blocks: git)."""
    from mullui import review  # import weight: git plumbing, loaded by a merge only

    p = review.plan(actions, actions.get(agent_id))
    if p.problem:
        raise MulluiError(p.problem)
    a = p.agent
    return MergeQuestion(
        agent_id=a.id,
        agent_name=a.name,
        question=p.question(),
        branch=a.branch or "?",
        target=p.target,
        files=tuple(p.files),
        checkout=p.checkout,
        follow_up=a.after is not None and a.base is not None and a.base != p.target,
    )


def _ask_merge(host: Host, q: MergeQuestion) -> None:
    def confirmed(yes: bool | None) -> None:
        if yes:
            host.blocking(
                "merge",
                host.actions.merge,
                q.agent_id,
                into=q.target,
                agent_id=q.agent_id,
                done=lambda msg: str(msg) or f"merged {q.agent_name}",
            )

    host.quiet_for_dialog()
    host.show(MergeScreen(q), confirmed)
