"""Which keys a reply to an agent's permission dialog becomes (the real CLIs are driven in
tests/integration/test_claude_cli.py and test_codex_cli.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mullui.agents import get_profile
from mullui.agents.base import Reply
from mullui.agents.claude import CLAUDE_DIALOG
from mullui.agents.codex import CODEX_DIALOG
from mullui.model import Agent, State
from mullui.operations.replies import dialog_hint, open_dialog


@pytest.mark.parametrize(
    ("text", "claude", "codex"),
    [
        ("y", Reply(("1",)), Reply(("y",))),
        (" Yes ", Reply(("1",)), Reply(("y",))),
        ("n", Reply(("Escape",), denies=True), Reply(("Escape",), denies=True)),
        ("NO", Reply(("Escape",), denies=True), Reply(("Escape",), denies=True)),
        (
            "no, write it to other.txt",
            Reply(("Escape",), "no, write it to other.txt", denies=True),
            Reply(("Escape",), "no, write it to other.txt", denies=True),
        ),
        # Claude's own option keys are pressed as such; for Codex a digit is text
        ("1", Reply(("1",)), Reply(("Escape",), "1", denies=True)),
        ("2", Reply(("2",)), Reply(("Escape",), "2", denies=True)),
        ("3", Reply(("3",), denies=True), Reply(("Escape",), "3", denies=True)),
        ("p", Reply(("Escape",), "p", denies=True), Reply(("Escape",), "p", denies=True)),
        (
            "yes please",
            Reply(("Escape",), "yes please", denies=True),
            Reply(("Escape",), "yes please", denies=True),
        ),
    ],
)
def test_replies_map_to_the_dialogs_keys(text: str, claude: Reply, codex: Reply) -> None:
    assert CLAUDE_DIALOG.reply(text) == claude
    assert CODEX_DIALOG.reply(text) == codex


def agent(profile: str, state: State, cause: str) -> Agent:
    a = Agent(id="a1", name="a", profile=profile, task="t")
    return dataclasses.replace(a, state=state, cause=cause, tmux_target="%1")


@pytest.mark.parametrize(
    ("profile", "state", "cause", "mapped"),
    [
        ("claude", State.BLOCKED, "hook:PermissionRequest", True),
        ("claude", State.BLOCKED, "hook:Notification:permission_prompt", True),
        ("claude", State.BLOCKED, "collision:src/app.py", True),  # the guard's `ask`
        ("claude", State.BLOCKED, "hook:PreToolUse", False),  # AskUserQuestion: free text
        ("claude", State.BLOCKED, "hook:Notification:idle_prompt", False),
        ("claude", State.BLOCKED, "reply:denied", False),  # the dialog is gone
        ("claude", State.WORKING, "hook:PermissionRequest", False),
        ("codex", State.BLOCKED, "hook:PermissionRequest", True),
        ("codex", State.BLOCKED, "silence:30s", False),
        ("gemini", State.BLOCKED, "hook:Notification:ToolPermission", True),
        ("gemini", State.BLOCKED, "collision:src/app.py", True),
        ("opencode", State.BLOCKED, "hook:permission.asked", True),
        ("opencode", State.BLOCKED, "hook:question.asked", False),
        ("aider", State.BLOCKED, "screen:aider-idle", False),
        ("shell", State.BLOCKED, "silence:30s", False),
    ],
)
def test_only_a_blocked_agent_on_its_permission_dialog_is_mapped(
    profile: str, state: State, cause: str, mapped: bool
) -> None:
    p = get_profile(profile)
    assert (open_dialog(p, agent(profile, state, cause)) is not None) is mapped


def test_the_hint_says_what_y_and_n_do_only_on_a_dialog() -> None:
    on = agent("claude", State.BLOCKED, "hook:PermissionRequest")
    assert (
        dialog_hint(on)
        == "y allows once · n denies · other text denies and tells the agent instead"
    )
    assert dialog_hint(agent("claude", State.BLOCKED, "hook:PreToolUse")) is None
    assert dialog_hint(agent("no-such-profile", State.BLOCKED, "hook:PermissionRequest")) is None
