"""Help: every key, what the states mean, and where to go next."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

KEYS: list[tuple[str, str]] = [
    ("tab / shift+tab", "move focus between inbox, agents, log"),
    ("j k / ↑ ↓", "move the selection"),
    ("enter", "attach to the agent's tmux pane (detach to come back)"),
    ("r", "reply: type one line, sent to the agent's pane"),
    ("s", "snooze the selected inbox item for 30 minutes"),
    ("S", "snooze: 15 min / 1 h / 4 h / tomorrow 9:00 / until it changes"),
    ("w", "wake a snoozed item"),
    ("n", "new agent (task, profile, base, name; after another agent, or a chain)"),
    ("l", "the agent's full log"),
    ("d", "the agent's diff against its base"),
    ("a", "ack: mark the item handled (reviewed, answered, conflict seen); it leaves the inbox"),
    ("m", "merge the agent's branch: asks first with the target and files; refuses a conflict"),
    ("x", "stop the agent (asks first; worktree and branch stay)"),
    (
        "R",
        "resume the selected stopped/failed agent, continuing its conversation (a budget "
        "stop asks for a higher budget; ctrl+p: every interrupted agent)",
    ),
    ("?", "this help"),
    ("ctrl+p", "command palette: every action, themes, report, collisions"),
    ("q", "quit; agents keep running"),
]

STATES = """\
| state | meaning |
|---|---|
| ◌ queued | waiting for its predecessor or a free slot |
| ◔ starting | worktree and window being created |
| ● working | producing output, running tools |
| ▲ blocked | waiting on you: a permission prompt or a question |
| ✓ done | finished its turn; its work awaits review |
| ✗ failed | exited non-zero, crashed, went silent too long, or interrupted (`R` resumes) |
| ■ stopped | stopped by you (`R` resumes) |
| ? unknown | its remote host cannot be reached |

☾ marks a snoozed item; `⚠ other` a conflict with another agent's work, `≈ other` files
another agent also touches (ctrl+p Collisions: every pair and a clean merge order).
A chain is one row (`⛓ name 2/3`: the step it is at, what it waits for) with its
steps beneath; on that row every key acts on the step it is at.  A queued agent shows
what it waits for; `⚠` when it will not start by itself (its predecessor failed)."""


def help_markdown() -> str:
    rows = "\n".join(f"| `{k}` | {v} |" for k, v in KEYS)
    return (
        "# mullui\n\nAgents work in their own tmux window, worktree and branch. "
        "The **inbox** holds the ones that need you: blocked first, then failed, then done.\n\n"
        f"## Keys\n\n| key | action |\n|---|---|\n{rows}\n\n## States\n\n{STATES}\n\n"
        "Quitting never stops agents; `mullui watch` keeps the notifications coming.\n"
    )


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Markdown(help_markdown())
