"""Placeholders: values stay data - one argv element, or a variable in shell text."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mullui.errors import MulluiError
from mullui.placeholders import expand_argv, shell_script_index, shell_text

EVIL = '$(touch /tmp/pwned) `id` \'; rm -rf ~ "$HOME"'


def test_shell_text_turns_bare_placeholders_into_quoted_variables() -> None:
    out = shell_text("cat {prev.worktree}/P.md; echo {prev.last_message}-x \\{prev.id}",
                     ["prev.worktree", "prev.last_message", "prev.id"], "the task")  # fmt: skip
    assert out == 'cat "$MULLUI_PREV_WORKTREE"/P.md; echo "$MULLUI_PREV_LAST_MESSAGE"-x \\{prev.id}'


@pytest.mark.parametrize(
    "script",
    [
        "echo '{task}'",
        'echo "got {task}"',
        "echo $'a {task}'",
        'echo "it\\"s {task}"',
        "echo 'a'\"{task}\"",
    ],
)
def test_a_placeholder_inside_quotes_is_refused_with_a_hint(script: str) -> None:
    with pytest.raises(MulluiError) as e:
        shell_text(script, ["task"], "[profiles.x] command")
    assert "inside quotes" in e.value.message and '"$MULLUI_TASK"' in e.value.message


def test_quotes_that_close_before_the_placeholder_do_not_count() -> None:
    assert shell_text("echo 'a' \"b\" $'c\\'' {task}", ["task"], "w").endswith(' "$MULLUI_TASK"')


@pytest.mark.parametrize(
    "argv,index",
    [
        (["sh", "-c", "x"], 2),
        (["/bin/bash", "-lc", "x"], 2),
        (["foot", "-e", "sh", "-c", "x"], 4),
        (["env", "A=1", "zsh", "-e", "-c", "x"], 5),
        (["busybox", "sh", "-c", "x"], 3),
        (["sh", "script.sh", "-c"], None),
        (["my-agent", "--prompt", "{task}"], None),
    ],
)
def test_the_shell_script_is_found_where_it_is(argv: list[str], index: int | None) -> None:
    assert shell_script_index(argv) == index


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=80)
)
def test_whatever_the_value_a_real_shell_prints_it_and_runs_nothing(value: str) -> None:
    """Through real sh: an argv element, ``sh -c`` text and an ``ssh``-style remote
    word all carry the value as data."""
    argv, env = expand_argv(["sh", "-c", "printf %s {task}"], {"task": value}, "w")
    r = subprocess.run(argv, env=env, capture_output=True, check=True)
    assert r.stdout == value.encode()
    argv, _ = expand_argv(["ssh", "host", "printf", "%s", "{task}"], {"task": value}, "w")
    r = subprocess.run(["sh", "-c", " ".join(argv[2:])], capture_output=True, check=True)
    assert r.stdout == value.encode()


def test_evil_values_in_every_position() -> None:
    argv, env = expand_argv(["tool", "--id={id}", "sh", "-c", "x {id}"], {"id": EVIL}, "w")
    assert argv == ["tool", f"--id={EVIL}", "sh", "-c", 'x "$MULLUI_AGENT_ID"']
    assert env == {"MULLUI_AGENT_ID": EVIL}
