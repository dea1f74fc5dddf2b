"""A scripted stand-in for an OpenAI-compatible Chat Completions API (streaming), for
driving the real OpenCode (``@ai-sdk/openai-compatible`` provider) and Aider (litellm,
``OPENAI_API_BASE``).

``POST <url>/chat/completions`` with ``"stream": true`` is answered from the script as
``chat.completion.chunk`` server-sent events: the role, the text, a tool call (name and
JSON arguments in one delta), the finish reason, a usage chunk, then ``data: [DONE]``.
Without ``stream`` the same turn comes back as one ``chat.completion``.
``GET <url>/models`` lists the stub's model.

Which requests belong to the main conversation is the caller's choice (``is_main``):
OpenCode's main loop always offers tools while its title / summary requests offer none
(the default); Aider never sends tools, so its tests count every request as main.  A
side request gets ``side_answer`` and never consumes a scripted turn.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from tests.support.http_stub import Exchange, RecordedRequest, ScriptedStub, Turn, Usage

__all__ = ["ChatStub", "RecordedRequest", "Turn", "Usage", "offers_tools"]


def offers_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


class ChatStub(ScriptedStub[Turn]):
    """``with ChatStub([Turn.say("hi")]) as stub: ... stub.url`` (ends in ``/v1``)."""

    url_suffix = "/v1"
    thread_name = "chat-stub"

    def __init__(
        self,
        turns: list[Turn] | None = None,
        *,
        model: str = "stub-model",
        is_main: Callable[[dict[str, Any]], bool] = offers_tools,
        side_answer: str = "Stub title",
    ) -> None:
        super().__init__(turns, lambda: Turn(text="(stub: script exhausted)"))
        self.model = model
        self.is_main = is_main
        self.side_answer = side_answer
        self._ids = itertools.count(1)

    def handle(self, ex: Exchange) -> None:
        route = ex.route.rstrip("/")
        if ex.method == "GET" and route.endswith("/models"):
            self.record(ex, "models")
            model = {"id": self.model, "object": "model", "created": 0, "owned_by": "stub"}
            ex.json(200, {"object": "list", "data": [model]})
            return
        if ex.method != "POST" or not route.endswith("/chat/completions") or ex.body is None:
            self.record(ex, "other")
            ex.json(404, {"error": {"message": f"stub: no {ex.method} {route}"}})
            return
        body = ex.body
        main = self.is_main(body)
        self.record(ex, "main" if main else "side")
        turn = self.script.take() if main else Turn(text=self.side_answer, usage=Usage(10, 5))
        if turn.delay_s:
            time.sleep(turn.delay_s)
        model = str(body.get("model") or self.model)
        cid = f"chatcmpl-stub{next(self._ids):06d}"
        if body.get("stream"):
            ex.sse(((None, c) for c in _chunks(turn, cid, model)), done="[DONE]")
        else:
            ex.json(200, _completion(turn, cid, model))
        if main:
            self.script.mark_sent(turn)


def _usage(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    return out


def _tool_call(turn: Turn, cid: str) -> dict[str, Any]:
    return {
        "index": 0,
        "id": f"call_{cid[-6:]}",
        "type": "function",
        "function": {"name": turn.tool, "arguments": json.dumps(turn.args or {})},
    }


def _chunks(turn: Turn, cid: str, model: str) -> list[dict[str, Any]]:
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if turn.text is not None:
        out.append(chunk({"content": turn.text}))
    if turn.tool is not None:
        out.append(chunk({"tool_calls": [_tool_call(turn, cid)]}))
    out.append(chunk({}, "tool_calls" if turn.tool else "stop"))
    out.append({**base, "choices": [], "usage": _usage(turn.usage)})
    return out


def _completion(turn: Turn, cid: str, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.tool is not None:
        call = _tool_call(turn, cid)
        del call["index"]
        message["tool_calls"] = [call]
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if turn.tool else "stop"}
        ],
        "usage": _usage(turn.usage),
    }
