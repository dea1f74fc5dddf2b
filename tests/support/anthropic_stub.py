"""A scripted stand-in for the Anthropic Messages API, for driving the real Claude Code CLI.

Claude Code talks to ``$ANTHROPIC_BASE_URL`` (here ``http://127.0.0.1:<ephemeral>``).
The stub answers the *main conversation* from a script (a list of turns: text, or a
``tool_use``) and every *side request* with a harmless canned answer.

How a request is classified (seen with Claude Code 2.1.197): the main loop always sends the
tool list (``Bash``, ``Read``, ...) and streams; side requests (session title, "is this a new
topic", quota probe, command-prefix checks) go to the small/fast model without tools.  So:
a request with a non-empty ``tools`` array is a main turn; anything else is a side request.

Every request is recorded (``stub.requests``) with its path, classification and arrival
time, and every scripted turn records when it was sent (``turn.sent_at``), so tests can
measure hook latency against the moment the model's answer left the "API".
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_stub import Exchange, RecordedRequest, ScriptedStub

__all__ = ["AnthropicStub", "RecordedRequest", "StubUsage", "Turn"]


@dataclass(frozen=True)
class StubUsage:
    """Token counts the stub reports for one response (what a transcript will carry)."""

    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def as_api(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


@dataclass
class Turn:
    """One scripted answer of the main conversation.

    Exactly one of ``text`` / ``tool`` is the point of the turn; a tool turn may carry a
    short ``text`` preamble too (the real model often says what it is about to do).
    """

    text: str | None = None
    tool: str | None = None  # tool name, e.g. "Bash"
    tool_input: dict[str, Any] | None = None
    #: makes ``tool_input`` from the request being answered (a path only the CLI knows,
    #: e.g. the plan file: :func:`write_plan`)
    input_from: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    usage: StubUsage = field(default_factory=StubUsage)
    delay_s: float = 0.0  # wait before answering (a slow model)
    # filled in by the stub
    sent_at: float | None = None  # time.monotonic() when the last byte was written
    sent_wall: float | None = None  # time.time() then (to compare with spool timestamps)
    message_id: str | None = None
    request_id: str | None = None

    @staticmethod
    def say(text: str, usage: StubUsage | None = None) -> Turn:
        return Turn(text=text, usage=usage or StubUsage())

    @staticmethod
    def bash(command: str, usage: StubUsage | None = None, description: str = "") -> Turn:
        inp = {"command": command, "description": description or f"Run {command}"}
        return Turn(tool="Bash", tool_input=inp, usage=usage or StubUsage())

    @staticmethod
    def write_plan(plan: str) -> Turn:
        """In plan mode: ``Write`` the plan to the plan file the CLI named (2.1.197 reads
        the plan that ExitPlanMode shows from that file, not from the tool's input)."""
        return Turn(
            tool="Write", input_from=lambda body: {"file_path": plan_file(body), "content": plan}
        )


#: Claude Code 2.1.197's plan-mode reminder names the file the plan goes to ("You should
#: create your plan at <HOME>/.claude/plans/<slug>.md using the Write tool").
PLAN_FILE = re.compile(r"(/[^\s\"\\]+/plans/[^\s\"\\]+\.md)")


def plan_file(body: dict[str, Any]) -> str:
    """The plan file the request's plan-mode reminder names (the newest mention)."""
    found = PLAN_FILE.findall(json.dumps(body["messages"]))
    assert found, "no plan file named in the request: is the CLI in plan mode?"
    return str(found[-1])


SIDE_TEXT = "Stub session"


class AnthropicStub(ScriptedStub[Turn]):
    """The stub server.  ``start()`` binds 127.0.0.1:0 and serves from a daemon thread."""

    thread_name = "anthropic-stub"

    def __init__(
        self, turns: list[Turn] | None = None, *, model: str = "claude-sonnet-4-5"
    ) -> None:
        super().__init__(turns, lambda: Turn(text="(stub: script exhausted)"))
        self.model = model
        self.unknown: list[str] = []
        self._ids = itertools.count(1)

    # -- script ----------------------------------------------------------------------

    @property
    def served(self) -> int:
        """Main turns answered so far."""
        with self.lock:
            return self.script.sent

    def wait_served(self, n: int, timeout: float) -> bool:
        """Block until ``n`` main turns were answered (True) or ``timeout`` passed."""
        return self.wait_for(lambda: self.script.sent >= n, timeout)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_stub{next(self._ids):06d}"

    def record(self, ex: Exchange, kind: str) -> RecordedRequest:
        rec = super().record(ex, kind)
        if kind == "other":
            with self.lock:
                self.unknown.append(f"{ex.method} {ex.path}")
        return rec

    def handle(self, ex: Exchange) -> None:
        if ex.method == "HEAD":
            # Claude Code 2.1.197 probes the base URL with ``HEAD /`` once at start-up.
            self.record(ex, "probe" if ex.path == "/" else "other")
            ex.empty(200)
        elif ex.method == "GET":
            self._get(ex)
        else:
            self._post(ex)

    def _error(self, ex: Exchange) -> None:
        err = {"type": "not_found_error", "message": f"stub: no {ex.route}"}
        ex.json(404, {"type": "error", "error": err}, {"request-id": self.new_id("req")})

    def _get(self, ex: Exchange) -> None:
        path = ex.route
        if path.startswith("/v1/models"):
            self.record(ex, "models")
            m = {
                "type": "model",
                "id": self.model,
                "display_name": self.model,
                "created_at": "2025-01-01T00:00:00Z",
            }
            if path == "/v1/models":
                page = {"data": [m], "has_more": False, "first_id": m["id"], "last_id": m["id"]}
                ex.json(200, page, {"request-id": self.new_id("req")})
            else:
                ex.json(200, dict(m, id=path.rsplit("/", 1)[-1]))
            return
        if path == "/":
            self.record(ex, "probe")
            ex.json(200, {})
            return
        self.record(ex, "other")
        self._error(ex)

    def _post(self, ex: Exchange) -> None:
        body = ex.body
        if ex.route == "/v1/messages/count_tokens":
            self.record(ex, "count_tokens")
            ex.json(200, {"input_tokens": 42})
            return
        if ex.route != "/v1/messages" or body is None:
            self.record(ex, "other")
            self._error(ex)
            return
        is_main = bool(body.get("tools"))
        self.record(ex, "main" if is_main else "side")
        if is_main:
            turn = self.script.take()
            if turn.delay_s:
                time.sleep(turn.delay_s)
            if turn.input_from is not None:
                turn.tool_input = turn.input_from(body)
        else:
            turn = Turn(text=_side_answer(body), usage=StubUsage(input_tokens=10, output_tokens=5))
        blocks = _content_blocks(turn, self)
        msg_id = self.new_id("msg")
        req_id = self.new_id("req")
        message = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model") or self.model),
            "content": blocks,
            "stop_reason": "tool_use" if turn.tool else "end_turn",
            "stop_sequence": None,
        }
        if body.get("stream"):
            ex.sse(_sse_events(message, blocks, turn.usage), {"request-id": req_id})
        else:
            ex.json(200, dict(message, usage=turn.usage.as_api()), {"request-id": req_id})
        if is_main:
            turn.message_id = msg_id
            turn.request_id = req_id
            self.script.mark_sent(turn)


def _content_blocks(turn: Turn, stub: AnthropicStub) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.text is not None:
        blocks.append({"type": "text", "text": turn.text})
    if turn.tool is not None:
        blocks.append(
            {
                "type": "tool_use",
                "id": stub.new_id("toolu"),
                "name": turn.tool,
                "input": turn.tool_input or {},
            }
        )
    return blocks


def _sse_events(
    message: dict[str, Any], blocks: list[dict[str, Any]], usage: StubUsage
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The event sequence of the streaming Messages API for one finished message."""
    start_usage = dict(usage.as_api(), output_tokens=1)
    yield "message_start", {"type": "message_start", "message": dict(message, usage=start_usage)}
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "text_delta", "text": b["text"]},
                },
            )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {
                        "type": "tool_use",
                        "id": b["id"],
                        "name": b["name"],
                        "input": {},
                    },
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])},
                },
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    # The real API (2025) repeats the full, cumulative usage in message_delta.
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": usage.as_api(),
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _side_answer(body: dict[str, Any]) -> str:
    """A plausible answer for the CLI's own bookkeeping requests.

    The session-title request (Claude Code 2.1.197) asks for structured output through
    ``output_config.format.json_schema``; answer any such schema with an object whose
    string properties are filled in, so the CLI's parser is satisfied.
    """
    fmt = (body.get("output_config") or {}).get("format") or {}
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if isinstance(schema, dict) and schema.get("type") == "object":
        props = schema.get("properties") or {}
        answer: dict[str, Any] = {}
        for name, spec in props.items():
            kind = spec.get("type") if isinstance(spec, dict) else None
            answer[name] = {"boolean": False, "integer": 0, "number": 0}.get(str(kind), SIDE_TEXT)
        return json.dumps(answer)
    return SIDE_TEXT
