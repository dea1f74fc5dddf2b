"""Claude Code spawned by the mullui CLI against the Anthropic stub, and the dialogs it
blocks on (permission, plan approval, AskUserQuestion): shared by
``tests/integration/test_claude_cli.py`` and the TUI's reply test
(``tests/tui/test_reply_dialogs.py``)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_clis import Pipeline, setup_claude
from tests.support.agents import wait_for
from tests.support.anthropic_stub import AnthropicStub, Turn

CLAUDE = shutil.which("claude")

needs_claude = pytest.mark.skipif(
    CLAUDE is None,
    reason=(
        "CLAUDE CODE CLI NOT INSTALLED - the real-CLI hook tests did NOT run. "
        "Install it with `npm install -g @anthropic-ai/claude-code` (CI does)."
    ),
)


@dataclass
class Spawned:
    """``mullui spawn``ed Claude Code against the stub, driven by the mullui CLI."""

    pipe: Pipeline
    stub: AnthropicStub
    user_settings: Path


@contextlib.contextmanager
def spawned(tmp_path: Path) -> Iterator[Spawned]:
    """A HOME where Claude Code starts on the stub, and an isolated mullui driving it."""
    p = Pipeline(tmp_path)
    try:
        with AnthropicStub() as stub:
            (user_settings,) = setup_claude(p, stub.url)
            yield Spawned(p, stub, user_settings)
    finally:
        p.close()


def last_user_blocks(stub: AnthropicStub) -> list[dict[str, Any]]:
    """The content blocks of the user message the newest main request ends with."""
    msg = stub.main_requests()[-1].body["messages"][-1]  # type: ignore[index]
    assert msg["role"] == "user"
    content = msg["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


PLAN = "# Plan: hello\n\n1. Write hello.txt containing hi\n"


def asks(p: Spawned) -> str | None:
    """What the agent asks now (None: it is not in the inbox)."""
    res = p.pipe.mullui("inbox", "--json")
    assert res.returncode == 0, res.stderr
    return next((x["why"] for x in json.loads(res.stdout) if x["id"] == p.pipe.agent_id), None)


def main_bodies(stub: AnthropicStub) -> list[str]:
    return [json.dumps(r.body) for r in stub.main_requests()]


def in_plan_mode(p: Spawned) -> None:
    config = p.pipe.tmp / "mullui" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[profiles.claude]\nargs = ["--permission-mode", "plan"]\n')


def blocked_on_plan(p: Spawned, *then: Turn) -> dict[str, Any]:
    """Claude Code in plan mode, its plan written to its plan file, asking to go ahead;
    ``then``: the model's next turns."""
    in_plan_mode(p)
    p.stub.add(
        Turn.write_plan(PLAN),
        Turn(text="Here is my plan.", tool="ExitPlanMode", tool_input={}),
        *then,
    )
    p.pipe.spawn("Plan, then write hello.txt", "claude")
    blocked = p.pipe.state("blocked", 60)
    assert p.pipe.why() == "ExitPlanMode: approve the plan: # Plan: hello"
    wait_for(lambda: "Ready to code?" in p.pipe.screen(), 30, "the plan dialog")
    inbox = p.pipe.mullui("inbox").stdout
    assert (
        "on a plan approval dialog; `mullui send ID TEXT`: y approves the plan (each edit "
        "still asks) · n refuses, Claude keeps planning · other text refuses and tells "
        "Claude what to change"
    ) in inbox
    return blocked
