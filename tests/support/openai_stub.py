"""A scripted stand-in for the OpenAI Responses API, for driving the real Codex CLI.

Codex reaches it through a custom model provider (``-c model_provider=stub`` plus
``-c model_providers.stub={base_url=..., wire_api="responses"}``), so no API key and no
network are involved.  Every ``POST .../responses`` is answered from a script (a list of
turns: a text answer, or one function call), streamed as server-sent events the way the
real API does (``response.created`` ... ``response.output_item.done`` ...
``response.completed`` with usage).  Anything else (model listing, telemetry) gets an
empty, harmless answer.

Side requests are told apart from the main conversation the way Codex 0.171.0 makes them:
the main loop always offers its tools (``exec_command``, ...), while its bookkeeping
threads (the session title, generated in parallel with the first turn) send none.  A side
request gets ``side_answer`` and never consumes a scripted turn.

Requests are recorded (``stub.requests``) with their path and body, so a test can look at
the tools Codex offered and the call outputs it sent back.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.http_stub import Exchange, RecordedRequest, ScriptedStub

__all__ = ["OpenAIStub", "RecordedRequest", "StubUsage", "Turn"]


@dataclass(frozen=True)
class StubUsage:
    input_tokens: int = 120
    cached_tokens: int = 20
    output_tokens: int = 15
    reasoning_tokens: int = 0

    def as_api(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass
class Turn:
    """One scripted answer: ``text``, or a function call ``tool`` with JSON ``arguments``."""

    text: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    usage: StubUsage = field(default_factory=StubUsage)
    sent_at: float | None = None
    sent_wall: float | None = None

    @staticmethod
    def say(text: str) -> Turn:
        return Turn(text=text)

    @staticmethod
    def call(tool: str, **arguments: Any) -> Turn:
        return Turn(tool=tool, arguments=arguments)


class OpenAIStub(ScriptedStub[Turn]):
    """``with OpenAIStub([Turn.say("hi")]) as stub: ... stub.url``"""

    url_suffix = "/v1"
    thread_name = "openai-stub"

    def __init__(
        self,
        turns: list[Turn] | None = None,
        fallback: str = "Nothing more to do.",
        side_answer: str = "Stub title",
    ) -> None:
        super().__init__(turns, lambda: Turn(text=fallback))
        self.side_answer = side_answer
        self._ids = itertools.count(1)

    def model_requests(self) -> list[RecordedRequest]:
        """Requests of the main conversation (side requests left out)."""
        return self.of_kind("main")

    def wait_model_requests(self, n: int, timeout: float) -> bool:
        return self.wait_for(lambda: len(self.of_kind("main")) >= n, timeout)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def handle(self, ex: Exchange) -> None:
        if ex.method == "GET":
            self.record(ex, "models" if ex.route.rstrip("/").endswith("/models") else "other")
            if ex.route.rstrip("/").endswith("/models"):
                ex.json(200, {"object": "list", "data": [], "models": []})
            else:
                ex.json(404, {"error": {"message": "not here"}})
            return
        if not ex.route.rstrip("/").endswith("/responses"):
            self.record(ex, "other")
            ex.json(200, {})
            return
        main = _is_main(ex.body)
        turn = self.script.take() if main else Turn(text=self.side_answer)
        model = str((ex.body or {}).get("model") or "stub-model")
        ex.sse(_events(turn, self, model))
        if main:
            self.script.mark_sent(turn)
        # Recorded last: a test waiting for N requests then sees the answer already sent.
        self.record(ex, "main" if main else "side")


def _is_main(body: dict[str, Any] | None) -> bool:
    return bool((body or {}).get("tools"))


def _events(turn: Turn, stub: OpenAIStub, model: str) -> list[tuple[str, dict[str, Any]]]:
    rid = stub.new_id("resp")
    out: list[tuple[str, dict[str, Any]]] = []
    base = {"id": rid, "object": "response", "model": model, "status": "in_progress"}
    out.append(("response.created", {"type": "response.created", "response": base}))
    items: list[dict[str, Any]] = []
    if turn.text is not None:
        mid = stub.new_id("msg")
        added = {
            "type": "message",
            "id": mid,
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        out.append(
            (
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": 0, "item": added},
            )
        )
        out.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": mid,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": turn.text,
                },
            )
        )
        items.append(
            {
                "type": "message",
                "id": mid,
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
            }
        )
    if turn.tool is not None:
        items.append(
            {
                "type": "function_call",
                "id": stub.new_id("fc"),
                "call_id": stub.new_id("call"),
                "name": turn.tool,
                "arguments": json.dumps(turn.arguments or {}),
                "status": "completed",
            }
        )
    for i, item in enumerate(items):
        out.append(
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": i, "item": item},
            )
        )
    done = {**base, "status": "completed", "output": items, "usage": turn.usage.as_api()}
    out.append(("response.completed", {"type": "response.completed", "response": done}))
    return out
