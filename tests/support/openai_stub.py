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
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

    @staticmethod
    def say(text: str) -> Turn:
        return Turn(text=text)

    @staticmethod
    def call(tool: str, **arguments: Any) -> Turn:
        return Turn(tool=tool, arguments=arguments)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: dict[str, Any] | None
    at: float


class OpenAIStub:
    """``with OpenAIStub([Turn.say("hi")]) as stub: ... stub.url``"""

    def __init__(
        self,
        turns: list[Turn] | None = None,
        fallback: str = "Nothing more to do.",
        side_answer: str = "Stub title",
    ) -> None:
        self.turns: list[Turn] = list(turns or [])
        self.fallback = fallback
        self.side_answer = side_answer
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.served = threading.Condition(self.lock)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def model_requests(self) -> list[RecordedRequest]:
        """Requests of the main conversation (side requests left out)."""
        with self.lock:
            return [r for r in self.requests if _is_main(r)]

    def wait_model_requests(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.served:
            while sum(1 for r in self.requests if _is_main(r)) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.served.wait(left)
        return True

    def _take(self) -> Turn:
        with self.lock:
            return self.turns.pop(0) if self.turns else Turn(text=self.fallback)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"


def _is_main(r: RecordedRequest) -> bool:
    return r.path.rstrip("/").endswith("/responses") and bool((r.body or {}).get("tools"))


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


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _record(self, body: dict[str, Any] | None) -> None:
        with self.owner.served:
            self.owner.requests.append(RecordedRequest(self.path, body, time.time()))
            self.owner.served.notify_all()

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [], "models": []})
        else:
            self._json(404, {"error": {"message": "not here"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not self.path.rstrip("/").endswith("/responses"):
            self._record(body)
            self._json(200, {})
            return
        if (body or {}).get("tools"):
            turn = self.owner._take()
        else:
            turn = Turn(text=self.owner.side_answer)
        model = str((body or {}).get("model") or "stub-model")
        events = _events(turn, self.owner, model)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        turn.sent_at = time.time()
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True
        # Recorded last: a test waiting for N requests then sees the answer already sent.
        self._record(body)
