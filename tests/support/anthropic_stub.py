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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


@dataclass
class RecordedRequest:
    method: str
    path: str
    at: float  # time.monotonic()
    kind: str  # "main" | "side" | "count_tokens" | "other"
    body: dict[str, Any] | None
    headers: dict[str, str]


SIDE_TEXT = "Stub session"


class AnthropicStub:
    """The stub server.  ``start()`` binds 127.0.0.1:0 and serves from a daemon thread."""

    def __init__(
        self, turns: list[Turn] | None = None, *, model: str = "claude-sonnet-4-5"
    ) -> None:
        self.turns: list[Turn] = list(turns or [])
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.unknown: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.main_served = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "stub not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> AnthropicStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="anthropic-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AnthropicStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ----------------------------------------------------------------------

    def add(self, *turns: Turn) -> None:
        with self._lock:
            self.turns.extend(turns)

    @property
    def served(self) -> int:
        """Main turns answered so far."""
        with self._lock:
            return self._next

    def wait_served(self, n: int, timeout: float) -> bool:
        """Block until ``n`` main turns were answered (True) or ``timeout`` passed."""
        with self.main_served:
            return self.main_served.wait_for(lambda: self._next >= n, timeout)

    def main_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "main"]

    def _take_turn(self) -> Turn:
        with self._lock:
            if self._next < len(self.turns):
                turn = self.turns[self._next]
            else:
                # Past the script: end the turn politely instead of erroring, so a test
                # failure shows up as a wrong assertion, not as a CLI stuck on retries.
                turn = Turn(text="(stub: script exhausted)")
                self.turns.append(turn)
            return turn

    def _mark_sent(self, turn: Turn) -> None:
        with self.main_served:
            turn.sent_at = time.monotonic()
            turn.sent_wall = time.time()
            self._next += 1
            self.main_served.notify_all()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_stub{next(self._ids):06d}"


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


class _Handler(BaseHTTPRequestHandler):
    owner: AnthropicStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # quiet: tests read stub.requests instead

    def _read_body(self) -> dict[str, Any] | None:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self.owner.new_id("req"))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, kind: str, body: dict[str, Any] | None) -> None:
        rec = RecordedRequest(
            method=self.command,
            path=self.path,
            at=time.monotonic(),
            kind=kind,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with self.owner._lock:
            self.owner.requests.append(rec)
            if kind == "other":
                self.owner.unknown.append(f"{self.command} {self.path}")

    def do_HEAD(self) -> None:
        # Claude Code 2.1.197 probes the base URL with ``HEAD /`` once at start-up.
        self._record("probe" if self.path == "/" else "other", None)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/models"):
            self._record("models", None)
            m = {
                "type": "model",
                "id": self.owner.model,
                "display_name": self.owner.model,
                "created_at": "2025-01-01T00:00:00Z",
            }
            if path == "/v1/models":
                self._json(
                    200, {"data": [m], "has_more": False, "first_id": m["id"], "last_id": m["id"]}
                )
            else:
                self._json(200, dict(m, id=path.rsplit("/", 1)[-1]))
            return
        if path == "/":
            self._record("probe", None)
            self._json(200, {})
            return
        self._record("other", None)
        self._json(
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": f"stub: no {path}"}},
        )

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/v1/messages/count_tokens":
            self._record("count_tokens", body)
            self._json(200, {"input_tokens": 42})
            return
        if path != "/v1/messages" or body is None:
            self._record("other", body)
            self._json(
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"stub: no {path}"},
                },
            )
            return
        is_main = bool(body.get("tools"))
        self._record("main" if is_main else "side", body)
        stub = self.owner
        if is_main:
            turn = stub._take_turn()
            if turn.delay_s:
                time.sleep(turn.delay_s)
        else:
            turn = Turn(text=_side_answer(body), usage=StubUsage(input_tokens=10, output_tokens=5))
        blocks = _content_blocks(turn, stub)
        msg_id = stub.new_id("msg")
        req_id = stub.new_id("req")
        message = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model") or stub.model),
            "content": blocks,
            "stop_reason": "tool_use" if turn.tool else "end_turn",
            "stop_sequence": None,
        }
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("request-id", req_id)
            # No content-length: close the connection to end the stream (HTTP/1.1
            # chunked encoding would be the alternative; closing is simpler and the
            # Anthropic SDK copes with either).
            self.send_header("connection", "close")
            self.end_headers()
            for name, event in _sse_events(message, blocks, turn.usage):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True
        else:
            data = json.dumps(dict(message, usage=turn.usage.as_api())).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", req_id)
            self.end_headers()
            self.wfile.write(data)
        if is_main:
            turn.message_id = msg_id
            turn.request_id = req_id
            stub._mark_sent(turn)


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
