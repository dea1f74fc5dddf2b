"""Gemini CLI, OpenCode and Aider, for real: ``mullui spawn --agent NAME`` in tmux against
loopback stubs of their model APIs, the human answering with ``mullui send``.

For each CLI this proves, at the version ``.ci/run`` installs: the task reaches the model,
a permission prompt shows up in ``mullui ls`` as *blocked* with the question in it, the
human's answer through ``mullui send`` lets the tool run and the turn ends *done*, tokens
(and cost where the CLI has it) reach the record, the exit code is recorded, and the
user's own config files for that CLI are byte-identical afterwards.  Each test also
prints the time from the prompt being drawn on screen to the agent being *blocked*
(``benchmarks/bench_agents.py`` measures it properly).

Skipped only when the CLI's binary is missing (CI installs all three).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_clis import (
    Pipeline,
    setup_aider,
    setup_gemini,
    setup_opencode,
    since,
)
from tests.support.agents import wait_for
from tests.support.chat_stub import ChatStub
from tests.support.gemini_stub import GeminiStub
from tests.support.http_stub import Turn, Usage

pytestmark = pytest.mark.timeout(300)


def needs(binary: str, install: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        shutil.which(binary) is None,
        reason=f"{binary.upper()} NOT INSTALLED - its real-CLI test did NOT run "
        f"({install}; CI does)",
    )


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path)
    try:
        yield p
    finally:
        p.close()


def report_latency(name: str, drawn_at: float, blocked: dict[str, Any]) -> None:
    print(f"\n{name}: prompt drawn -> blocked {(since(blocked) - drawn_at) * 1000:+.0f} ms")


def quit_with(pipe: Pipeline, command: str) -> None:
    """Quit the CLI like a user; mullui records exit code 0 and the agent stays done."""
    pipe.send(command)
    try:
        gone = pipe.exited(5)
    except AssertionError:
        pipe.keys("Enter")  # the slash-command menu took the first Enter
        gone = pipe.exited(60)
    assert gone["exit_code"] == 0
    assert gone["state"] == "done"


def blocked_then_done(
    pipe: Pipeline, agent: str, prompt: str, cause: str, question: str, answer: str
) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Spawn ``agent`` on "create hello.txt"; it must be blocked (``cause``, ``question``)
    once ``prompt`` is drawn, with nothing run yet; ``answer`` goes in with ``mullui send``
    and the agent must then be done with the file made.  (blocked, done, worktree)."""
    pipe.spawn("create hello.txt", agent)
    drawn_at = pipe.drawn(prompt, 180)
    blocked = pipe.state("blocked", 30)
    report_latency(agent, drawn_at, blocked)
    assert blocked["cause"] == cause
    assert pipe.why() == question
    wt = Path(blocked["worktree"])
    assert not (wt / "hello.txt").exists()
    pipe.send(answer)
    done = pipe.state("done", 90)
    assert (wt / "hello.txt").exists()
    return blocked, done, wt


# ---- Gemini CLI --------------------------------------------------------------------------


@needs("gemini", "npm install -g @google/gemini-cli")
def test_gemini_blocked_on_a_permission_then_done_after_mullui_send(pipe: Pipeline) -> None:
    turns = [
        Turn.call("run_shell_command", command="touch hello.txt", description="Create it"),
        Turn.say("Created hello.txt.", usage=Usage(300, 40)),
    ]
    with GeminiStub(turns) as stub:
        before = {f: f.read_bytes() for f in setup_gemini(pipe, stub.url)}
        _, done, _ = blocked_then_done(
            pipe, "gemini", "Allow execution", "hook:Notification:ToolPermission",
            "Shell: touch hello.txt", "1",  # "1. Allow once"
        )  # fmt: skip
        assert done["cause"] == "hook:AfterAgent"
        assert pipe.why() == "Created hello.txt."
        (main,) = [r for r in stub.main_requests() if "touch" not in json.dumps(r.body)][:1]
        assert "create hello.txt" in json.dumps(main.body)  # the task reached the model
        # two main turns: 100 + 300 prompt tokens, 20 + 40 output tokens (no cost: the
        # CLI reports none)
        assert (done["tokens_in"], done["tokens_out"]) == (400, 60)

        quit_with(pipe, "/quit")
    for f, data in before.items():
        assert f.read_bytes() == data, f"{f} was changed"


# ---- OpenCode ----------------------------------------------------------------------------


@needs("opencode", "npm install -g opencode-ai")
def test_opencode_blocked_on_a_permission_then_done_after_mullui_send(pipe: Pipeline) -> None:
    turns = [
        Turn.call("bash", command="touch hello.txt", description="Create hello.txt"),
        Turn.say("Created hello.txt.", usage=Usage(300, 40)),
    ]
    with ChatStub(turns) as stub:
        before = {f: f.read_bytes() for f in setup_opencode(pipe, stub.url)}
        _, done, _ = blocked_then_done(
            pipe, "opencode", "Permission required", "hook:permission.asked",
            "bash: touch hello.txt", "y",  # mapped to Enter: "Allow once" is the default
        )  # fmt: skip
        assert done["cause"] == "hook:session.idle"
        assert pipe.why() == "Created hello.txt."
        assert "create hello.txt" in json.dumps(stub.main_requests()[0].body)
        assert (done["tokens_in"], done["tokens_out"]) == (400, 60)
        # OpenCode prices it from the model's configured cost ($ per million tokens)
        assert done["cost_usd"] == pytest.approx((400 * 3 + 60 * 15) / 1e6)

        quit_with(pipe, "/exit")
    for f, data in before.items():
        assert f.read_bytes() == data, f"{f} was changed"


# ---- Aider -------------------------------------------------------------------------------

AIDER_REPLY = "I will create it.\n\n```bash\ntouch hello.txt\n```\n"


@needs("aider", "pip install aider-chat (in its own venv)")
def test_aider_blocked_on_a_question_then_done_after_mullui_send(pipe: Pipeline) -> None:
    with ChatStub([Turn.say(AIDER_REPLY, usage=Usage(700, 14))], is_main=lambda b: True) as stub:
        before = {f: f.read_bytes() for f in setup_aider(pipe, stub.url)}
        blocked, done, wt = blocked_then_done(
            pipe, "aider", "(Y)es/(N)o", "screen:aider-idle",
            "Run shell command? touch hello.txt", "y",
        )  # fmt: skip
        assert "create hello.txt" in json.dumps(stub.main_requests()[0].body)
    # what aider itself counted (it estimates a streamed prompt with its tokenizer), and
    # its cost from the model's prices ($3 / $15 per million)
    sent = aider_sent(pipe)
    assert (blocked["tokens_in"], blocked["tokens_out"]) == (
        sent["prompt_tokens"],
        sent["completion_tokens"],
    )
    assert blocked["tokens_in"] > 500
    assert blocked["cost_usd"] == pytest.approx(sent["total_cost"])
    assert blocked["cost_usd"] == pytest.approx(
        (sent["prompt_tokens"] * 3 + sent["completion_tokens"] * 15) / 1e6
    )
    # --message: aider exits when the reply is done
    assert done["exit_code"] == 0
    assert done["cause"].startswith("exit:0")
    # its history went to mullui's profile dir, not into the worktree
    assert not list(wt.glob(".aider.chat.history.md"))
    for f, data in before.items():
        assert f.read_bytes() == data, f"{f} was changed"


def aider_sent(pipe: Pipeline) -> dict[str, Any]:
    """The one ``message_send`` event of aider's analytics log (its own count)."""
    (log,) = pipe.tmp.glob("mullui/**/aider-analytics.jsonl")
    sends = [json.loads(x) for x in log.read_text().splitlines()]
    (sent,) = [x["properties"] for x in sends if x["event"] == "message_send"]
    return dict(sent)


@needs("aider", "pip install aider-chat (in its own venv)")
def test_aider_reply_without_a_question_is_done_at_exit_with_its_usage(pipe: Pipeline) -> None:
    """With ``--message`` and nothing to ask, no notification ever runs: the usage comes
    from the wrapper that runs aider, when it exits."""
    with ChatStub([Turn.say("Nothing to change.")], is_main=lambda b: True) as stub:
        setup_aider(pipe, stub.url)
        pipe.spawn("is there anything to change?", "aider")
        done = pipe.state("done", 120)
    assert done["cause"].startswith("exit:0") and done["exit_code"] == 0
    sent = aider_sent(pipe)
    assert (done["tokens_in"], done["tokens_out"]) == (
        sent["prompt_tokens"],
        sent["completion_tokens"],
    )


@needs("gemini", "npm install -g @google/gemini-cli")
@pytest.mark.parametrize("reply", ["n", "no, write it to other.txt"])
def test_gemini_permission_dialog_denied_by_a_reply(pipe: Pipeline, reply: str) -> None:
    """Typed as is, "n" + Enter ran the command (0.61.0: Enter is "1. Allow once")."""
    turns = [
        Turn.call("run_shell_command", command="touch hello.txt", description="Create it"),
        Turn.say("Understood."),
        Turn.say("Fine."),
    ]
    with GeminiStub(turns) as stub:
        setup_gemini(pipe, stub.url)
        pipe.spawn("create hello.txt", "gemini")
        blocked = pipe.state("blocked", 180)
        assert blocked["cause"] == "hook:Notification:ToolPermission"
        n = len(stub.main_requests())
        pipe.send(reply)
        if reply == "n":
            wait_for(lambda: pipe.agent()["cause"] == "reply:denied", 30, "the denial")
            pipe.send("then stop")  # the dialog is gone: typed as given
        wait_for(lambda: len(stub.main_requests()) > n, 60, "the next model request")
        sent = json.dumps(stub.main_requests()[n].body)
        assert (reply if reply != "n" else "then stop") in sent
        time.sleep(1)
        assert not (Path(blocked["worktree"]) / "hello.txt").exists(), f"{reply!r} allowed it"


@needs("opencode", "npm install -g opencode-ai")
@pytest.mark.parametrize("reply", ["n", "no, write it to other.txt"])
def test_opencode_permission_dialog_denied_by_a_reply(pipe: Pipeline, reply: str) -> None:
    """Typed as is, "n" + Enter ran the command (1.18.33: Enter is "Allow once")."""
    turns = [
        Turn.call("bash", command="touch hello.txt", description="Create hello.txt"),
        Turn.say("Understood."),
        Turn.say("Fine."),
    ]
    with ChatStub(turns) as stub:
        setup_opencode(pipe, stub.url)
        pipe.spawn("create hello.txt", "opencode")
        blocked = pipe.state("blocked", 180)
        assert blocked["cause"] == "hook:permission.asked"
        n = len(stub.main_requests())
        pipe.send(reply)
        if reply != "n":
            wait_for(lambda: len(stub.main_requests()) > n, 60, "the next model request")
            assert reply in json.dumps(stub.main_requests()[n].body)
        time.sleep(2)
        assert not (Path(blocked["worktree"]) / "hello.txt").exists(), f"{reply!r} allowed it"
