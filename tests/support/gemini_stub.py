"""A scripted stand-in for the Gemini API, for driving the real Gemini CLI.

Gemini CLI reaches it with ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port>`` and any
``GEMINI_API_KEY`` (API-key auth; plain http is accepted for loopback).  The main
conversation goes to ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` and
always declares the CLI's tools (``tools[].functionDeclarations``); it is answered from
the script, one ``GenerateContentResponse`` per SSE ``data:`` line, the last one with
``finishReason`` and ``usageMetadata``.  Everything else is a side request of the CLI's
own (the next-speaker check, the model router, loop detection, session summaries): a
request that asks for JSON (``generationConfig.responseJsonSchema`` / ``responseSchema``)
gets an object filled from that schema (first enum value, false, 0, empty list), any
other gets a short text; ``:countTokens`` gets a count.  Side requests never consume a
scripted turn.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.http_stub import Exchange, RecordedRequest, ScriptedStub, Turn, Usage

__all__ = ["GeminiStub", "RecordedRequest", "Turn", "Usage"]

SIDE_TEXT = "Stub answer"


class GeminiStub(ScriptedStub[Turn]):
    """``with GeminiStub([Turn.say("hi")]) as stub: env GOOGLE_GEMINI_BASE_URL=stub.url``"""

    thread_name = "gemini-stub"

    def __init__(self, turns: list[Turn] | None = None) -> None:
        super().__init__(turns, lambda: Turn(text="(stub: script exhausted)"))

    def handle(self, ex: Exchange) -> None:
        route = ex.route
        if ex.method == "GET":
            self.record(ex, "models" if "/models" in route else "other")
            if route.rstrip("/").endswith("/models"):
                ex.json(200, {"models": []})
            else:
                ex.json(404, {"error": {"code": 404, "message": "stub: not here"}})
            return
        if route.endswith(":countTokens"):
            self.record(ex, "count_tokens")
            ex.json(200, {"totalTokens": 42})
            return
        streaming = route.endswith(":streamGenerateContent")
        if not (streaming or route.endswith(":generateContent")):
            self.record(ex, "other")
            ex.json(404, {"error": {"code": 404, "message": f"stub: no {route}"}})
            return
        body = ex.body or {}
        model = route.rsplit("/", 1)[-1].split(":", 1)[0]
        main = streaming and _declares_tools(body)
        self.record(ex, "main" if main else "side")
        if main:
            turn = self.script.take()
        else:
            turn = Turn(text=_side_answer(body), usage=Usage(10, 5))
        chunks = _chunks(turn, model)
        if streaming:
            ex.sse((None, c) for c in chunks)
        else:
            ex.json(200, _merged(chunks))
        if main:
            self.script.mark_sent(turn)


def _declares_tools(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(t, dict) and t.get("functionDeclarations") for t in tools
    )


def _usage(u: Usage) -> dict[str, int]:
    meta = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens,
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        meta["cachedContentTokenCount"] = u.cached_tokens
    return meta


def _chunks(turn: Turn, model: str) -> list[dict[str, Any]]:
    """The streamed responses of one turn: the text, then the call, then the finish."""
    parts: list[dict[str, Any]] = []
    if turn.text is not None:
        parts.append({"text": turn.text})
    if turn.tool is not None:
        parts.append({"functionCall": {"name": turn.tool, "args": turn.args or {}}})
    out = []
    for i, part in enumerate(parts):
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": model}
        if i == len(parts) - 1:
            cand["finishReason"] = "STOP"
            chunk["usageMetadata"] = _usage(turn.usage)
        out.append(chunk)
    return out


def _merged(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streaming answer: every chunk's parts in one candidate."""
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    last = chunks[-1]
    cand = {"content": {"role": "model", "parts": parts}, "index": 0, "finishReason": "STOP"}
    return {"candidates": [cand], "usageMetadata": last["usageMetadata"]}


def _from_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return SIDE_TEXT
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = str(schema.get("type") or "").lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _from_schema(v) for k, v in props.items()}
    if kind == "array":
        return []
    return {"boolean": False, "integer": 0, "number": 0}.get(kind, SIDE_TEXT)


def _side_answer(body: dict[str, Any]) -> str:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema:
        return json.dumps(_from_schema(schema))
    return SIDE_TEXT
