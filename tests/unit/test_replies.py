"""Which keys a reply to an agent's permission dialog becomes (the real CLIs are driven in
tests/integration/test_claude_cli.py and test_codex_cli.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mullui.agents import get_profile
from mullui.agents.base import Reply
from mullui.agents.claude import CLAUDE_DIALOG, PLAN_DIALOG, QUESTION_DIALOG, dialog_options
from mullui.agents.codex import CODEX_DIALOG
from mullui.errors import MulluiError
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


def agent(profile: str, state: State, cause: str, question: str | None = None) -> Agent:
    a = Agent(id="a1", name="a", profile=profile, task="t")
    return dataclasses.replace(a, state=state, cause=cause, tmux_target="%1", question=question)


@pytest.mark.parametrize(
    ("profile", "state", "cause", "mapped"),
    [
        ("claude", State.BLOCKED, "hook:PermissionRequest", True),
        ("claude", State.BLOCKED, "hook:Notification:permission_prompt", True),
        ("claude", State.BLOCKED, "collision:src/app.py", True),  # the guard's `ask`
        ("claude", State.BLOCKED, "hook:PreToolUse", False),  # no question: typed as is
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
    plan = agent("claude", State.BLOCKED, "hook:PreToolUse", "ExitPlanMode: approve the plan")
    assert dialog_hint(plan) == PLAN_DIALOG.hint
    assert "y approves the plan (each edit still asks)" in PLAN_DIALOG.hint
    assert dialog_hint(agent("no-such-profile", State.BLOCKED, "hook:PermissionRequest")) is None


# ---- Claude Code 2.1.197's plan approval and AskUserQuestion (screens as captured) ----

PLAN_SCREEN = """\
● Here is my plan.
────────────────────────────────────────────────────────────────────────────────
 Ready to code?
 Here is Claude's plan:
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
 Plan: hello
 1. Write hello.txt containing hi
 2. Say done
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
────────────────────────────────────────────────────────────────────────────────
 Claude has written up a plan and is ready to execute. Would you like to
 proceed?
 ❯ 1. Yes, and use auto mode
   2. Yes, manually approve edits
   3. Tell Claude what to change
      shift+tab to approve with this feedback
 ctrl+g to edit in Vim ·
                      ~/.claude/plans/plan-writing-hello-txt-replicated-fog.md
"""

#: no plan file written: the short form
EXIT_SCREEN = """\
 Exit plan mode?

  Claude wants to exit plan mode

  ❯ 1. Yes
    2. No
"""

QUESTION_SCREEN = """\
❯ Plan writing hello.txt
────────────────────────────────────────────────────────────────────────────────
 ☐ DB

Which database?

❯ 1. Postgres
     relational
  2. SQLite
     file
  3. Type something.
────────────────────────────────────────────────────────────────────────────────
  4. Chat about this

Enter to select · ↑/↓ to navigate · Esc to cancel
"""


def test_the_options_are_the_dialogs_not_the_plans_numbered_steps() -> None:
    assert dialog_options(PLAN_SCREEN) == [
        ("1", "Yes, and use auto mode"),
        ("2", "Yes, manually approve edits"),
        ("3", "Tell Claude what to change"),
    ]
    assert [k for k, _ in dialog_options(QUESTION_SCREEN)] == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("screen", "text", "reply"),
    [
        # y: the approval that keeps each edit asking, never "auto mode" (Enter's default)
        (PLAN_SCREEN, "y", Reply(("2",))),
        (PLAN_SCREEN.replace("use auto mode", "auto-accept edits"), "yes", Reply(("2",))),
        (EXIT_SCREEN, "y", Reply(("1",))),  # its only approval
        (PLAN_SCREEN, "n", Reply(("Escape",), denies=True)),
        (EXIT_SCREEN, "no", Reply(("Escape",), denies=True)),
        (PLAN_SCREEN, "use bye.txt", Reply(("3",), "use bye.txt", field="3")),
        (PLAN_SCREEN, "1", Reply(("1",))),  # the human's own pick
        (EXIT_SCREEN, "2", Reply(("2",), denies=True)),
        (EXIT_SCREEN, "use bye.txt", Reply(("Escape",), "use bye.txt", denies=True)),
    ],
)
def test_replies_to_the_plan_dialog(screen: str, text: str, reply: Reply) -> None:
    assert PLAN_DIALOG.shown(screen)
    assert PLAN_DIALOG.reply(text, screen) == reply


def test_y_is_refused_when_every_approval_auto_accepts() -> None:
    screen = PLAN_SCREEN.replace("manually approve edits", "and bypass permissions")
    with pytest.raises(MulluiError, match="no approval that keeps edits asking.*1 Yes, and use"):
        PLAN_DIALOG.reply("y", screen)


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("2", Reply(("2",))),
        ("sqlite", Reply(("2",))),
        (" Postgres ", Reply(("1",))),
        ("4", Reply(("4",))),  # "Chat about this" is an option too
        ("n", Reply(("Escape",), denies=True)),
        ("MySQL please", Reply(("3",), "MySQL please", field="3")),
        ("y", Reply(("3",), "y", field="3")),
    ],
)
def test_replies_to_askuserquestion(text: str, reply: Reply) -> None:
    assert QUESTION_DIALOG.shown(QUESTION_SCREEN)
    assert not PLAN_DIALOG.shown(QUESTION_SCREEN) and not QUESTION_DIALOG.shown(PLAN_SCREEN)
    assert QUESTION_DIALOG.reply(text, QUESTION_SCREEN) == reply


def test_a_question_without_a_free_text_answer_refuses_other_text() -> None:
    screen = QUESTION_SCREEN.replace("  3. Type something.\n", "").replace("4. Chat", "3. Chat")
    with pytest.raises(MulluiError, match="reply with one of 1 Postgres, 2 SQLite, 3 Chat about"):
        QUESTION_DIALOG.reply("MySQL", screen)


TABS_SCREEN = QUESTION_SCREEN.replace(" ☐ DB", "←  ☐ DB  ☐ Lang  ✔ Submit  →")

REVIEW_SCREEN = """\
❯ Plan writing hello.txt
────────────────────────────────────────────────────────────────────────────────
←  ☒ DB  ☒ Lang  ✔ Submit  →

Review your answers

 ● Which database?
   → SQLite
 ● Which languages?
   → Rust

Ready to submit your answers?

❯ 1. Submit answers
  2. Cancel
"""


def test_several_questions_are_answered_one_reply_each_then_y_submits() -> None:
    assert QUESTION_DIALOG.asks(QUESTION_SCREEN) is None  # one question: nothing new
    assert QUESTION_DIALOG.asks(TABS_SCREEN) == "AskUserQuestion: Which database?"
    assert QUESTION_DIALOG.reply("sqlite", TABS_SCREEN) == Reply(("2",), stays_open=True)
    assert QUESTION_DIALOG.reply("MySQL", TABS_SCREEN) == Reply(
        ("3",), "MySQL", field="3", stays_open=True
    )
    assert QUESTION_DIALOG.shown(REVIEW_SCREEN)  # no "Enter to select" footer there
    assert QUESTION_DIALOG.asks(REVIEW_SCREEN) == (
        "AskUserQuestion: submit these answers? Which database? → SQLite; Which languages? → Rust"
    )
    assert QUESTION_DIALOG.reply("y", REVIEW_SCREEN) == Reply(("1",))
    assert QUESTION_DIALOG.reply("n", REVIEW_SCREEN) == Reply(("Escape",), denies=True)
    with pytest.raises(MulluiError, match="reply with one of 1 Submit answers, 2 Cancel"):
        QUESTION_DIALOG.reply("maybe", REVIEW_SCREEN)


MULTI_SCREEN = """\
←  ☐ Lang  ✔ Submit  →

Which languages?

❯ 1. [✔] Python
  py
  2. [ ] Rust
  rs
  3. [ ] Go
  go
  4. [ ] Type something
     Submit
────────────────────────────────────────────────────────────────────────────────
  5. Chat about this

Enter to select · ↑/↓ to navigate · Esc to cancel
"""


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("go, python", ("3", "Tab")),  # Python is checked already
        ("2", ("1", "2", "Tab")),
        ("Rust,3", ("1", "2", "3", "Tab")),
        ("python", ("Tab",)),
    ],
)
def test_a_multi_select_question_takes_several_names_with_commas(
    text: str, keys: tuple[str, ...]
) -> None:
    assert QUESTION_DIALOG.asks(MULTI_SCREEN) == "AskUserQuestion: Which languages?"
    assert QUESTION_DIALOG.reply(text, MULTI_SCREEN) == Reply(keys, stays_open=True)


def test_a_multi_select_question_refuses_what_is_not_an_option() -> None:
    with pytest.raises(MulluiError, match="'java' is not one.*from 1 Python, 2 Rust, 3 Go$"):
        QUESTION_DIALOG.reply("python, java", MULTI_SCREEN)
    assert QUESTION_DIALOG.reply("n", MULTI_SCREEN) == Reply(("Escape",), denies=True)


@pytest.mark.parametrize(
    ("question", "dialog"),
    [
        ("ExitPlanMode: approve the plan: # Plan", PLAN_DIALOG),
        ("AskUserQuestion: Which database?", QUESTION_DIALOG),
        ("Bash: touch x", CLAUDE_DIALOG),
    ],
)
@pytest.mark.parametrize(
    "cause", ["hook:PreToolUse", "hook:PermissionRequest", "hook:Notification:permission_prompt"]
)
def test_claude_picks_the_dialog_by_the_tool_that_blocks(
    question: str, dialog: object, cause: str
) -> None:
    p = get_profile("claude")
    expect = None if (dialog is CLAUDE_DIALOG and cause == "hook:PreToolUse") else dialog
    assert open_dialog(p, agent("claude", State.BLOCKED, cause, question)) is expect
    assert open_dialog(p, agent("claude", State.BLOCKED, "reply:denied", question)) is None
