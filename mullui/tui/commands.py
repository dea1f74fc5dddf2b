"""The command palette (ctrl+p): every action a key does, found by name.

One :class:`~textual.command.Provider` (as Posting does) over one table of commands; each
runs the app's action of the same name, so a command and its key cannot drift apart.
Textual's own system commands (theme, keys, screenshot...) come from its provider.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

#: (title, what it does, the app action it runs).
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Attach", "Switch to the selected agent's tmux pane (enter)", "attach"),
    ("Reply", "Type one line into the agent's pane (r)", "reply"),
    ("Snooze 30 minutes", "Hide the inbox item for 30 minutes (s)", "snooze"),
    ("Snooze…", "15 min / 1 h / 4 h / tomorrow 9:00 / until it changes (S)", "snooze_pick"),
    ("Wake", "End the snooze of the selected item (w)", "wake"),
    (
        "New agent",
        "Start an agent: task, profile, base, name; after another, or a chain (n)",
        "new_agent",
    ),
    ("Log", "The selected agent's full log (l)", "log"),
    ("Diff", "The agent's changes against its base (d)", "diff"),
    ("Ack", "Mark the inbox item handled: reviewed, answered, conflict seen (a)", "ack"),
    (
        "Merge",
        "Merge the agent's branch into its base: asks with the files first (m)",
        "merge",
    ),
    ("Stop", "Stop the agent; asks first (x)", "stop"),
    (
        "Resume",
        "Start the selected stopped or failed agent again in its worktree, continuing its "
        "conversation; a budget stop asks for a higher budget (R)",
        "resume",
    ),
    (
        "Resume interrupted agents",
        "Every agent a restart or a crash interrupted continues; max_running holds (the "
        "rest wait queued)",
        "resume_all",
    ),
    (
        "Report",
        "Cost to deliver per agent and chain: time working and waiting on you, "
        "tokens, cost, estimate vs actual, changes, merged",
        "report",
    ),
    (
        "Collisions",
        "Agents whose work touches the same files: conflict or overlap, merge order",
        "collisions",
    ),
    ("Focus inbox", "Move focus to the inbox", "focus_area('inbox')"),
    ("Focus agents", "Move focus to the list of agents", "focus_area('agents')"),
    ("Focus log", "Move focus to the log", "focus_area('log')"),
    ("Help", "Every key and what the states mean (?)", "help"),
    ("Quit", "Leave the TUI; agents keep running (q)", "quit"),
)

#: Textual's system commands that ours replace.
REPLACED = frozenset({"Quit"})


class MulluiCommands(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in sorted(COMMANDS):
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in COMMANDS:
            if (score := matcher.match(title)) > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    help=help_text,
                )
