"""The base every model-API stand-in shares: a loopback HTTP server with a request log,
a script of turns, and JSON / server-sent-event answers.

A stub subclasses :class:`HttpStub` and implements :meth:`HttpStub.handle`, which gets one
:class:`Exchange` per request (method, path, query, headers, parsed JSON body) and answers
it with :meth:`Exchange.json`, :meth:`Exchange.sse` or :meth:`Exchange.empty`.  The base
binds ``127.0.0.1:0`` (an ephemeral port, never the network), serves from daemon threads,
and records every request (:class:`RecordedRequest`) under one lock, so a test can wait
for "the CLI asked N times" (:meth:`HttpStub.wait_for`) instead of sleeping.

:class:`Script` is the scripted conversation: turns are taken in order, each one records
when its last byte left the "API" (``sent_at`` monotonic, ``sent_wall`` wall clock) so a
test can measure hook latency against the moment the model's answer was sent; past the
end of the script a fallback turn ends the conversation politely (a test failure then
shows as a wrong assertion, not as a CLI stuck retrying).

:class:`Turn` / :class:`Usage` are the protocol-neutral turn the newer stubs use
(``gemini_stub``, ``chat_stub``); the Anthropic and Responses stubs keep their own turn
types, whose fields their tests already spell.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, query string included
    at: float  # time.monotonic() when it was recorded
    kind: str  # the stub's classification: "main", "side", "models", "other", ...
    body: dict[str, Any] | None
    headers: dict[str, str]  # lower-cased names
    wall: float = 0.0  # time.time() then


class _Sent(Protocol):
    sent_at: float | None
    sent_wall: float | None


T = TypeVar("T", bound=_Sent)


class Script(Generic[T]):
    """Scripted turns, taken in order; ``fallback()`` makes one when the script is done."""

    def __init__(self, turns: Iterable[T], fallback: Callable[[], T], cond: threading.Condition):
        self.turns: list[T] = list(turns)
        self._fallback = fallback
        self._cond = cond
        self._next = 0
        self.sent = 0

    def add(self, *turns: T) -> None:
        with self._cond:
            self.turns.extend(turns)

    def take(self) -> T:
        with self._cond:
            if self._next >= len(self.turns):
                self.turns.append(self._fallback())
            turn = self.turns[self._next]
            self._next += 1
            return turn

    def mark_sent(self, turn: T) -> None:
        with self._cond:
            turn.sent_at = time.monotonic()
            turn.sent_wall = time.time()
            self.sent += 1
            self._cond.notify_all()


@dataclass(frozen=True)
class Usage:
    """Token counts one response reports (each stub spells them its API's way)."""

    input_tokens: int = 100
    output_tokens: int = 20
    cached_tokens: int = 0


@dataclass
class Turn:
    """One scripted answer: ``text``, and/or one call of ``tool`` with ``args``."""

    text: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    delay_s: float = 0.0  # wait before answering (a slow model)
    sent_at: float | None = None  # time.monotonic() when the last byte was written
    sent_wall: float | None = None  # time.time() then

    @staticmethod
    def say(text: str, usage: Usage | None = None) -> Turn:
        return Turn(text=text, usage=usage or Usage())

    @staticmethod
    def call(tool: str, usage: Usage | None = None, **args: Any) -> Turn:
        return Turn(tool=tool, args=args, usage=usage or Usage())


class Exchange:
    """One request and the ways to answer it."""

    def __init__(self, handler: _Handler, body: dict[str, Any] | None, raw: bytes) -> None:
        self._h = handler
        self.method = handler.command
        self.path = handler.path
        parts = urlsplit(handler.path)
        self.route = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.body = body
        self.raw = raw

    def json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        h = self._h
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def empty(self, status: int = 200) -> None:
        self._h.send_response(status)
        self._h.send_header("content-length", "0")
        self._h.end_headers()

    def sse(
        self,
        events: Iterable[tuple[str | None, Any]],
        headers: dict[str, str] | None = None,
        done: str | None = None,
    ) -> None:
        """Stream ``(event name or None, data)`` pairs as server-sent events, then close
        the connection (the end of the stream; every SDK seen copes with that).  ``data``
        that is not a string goes as JSON; ``done`` is a last data-only line (OpenAI's
        ``[DONE]``)."""
        h = self._h
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            head = f"event: {name}\n" if name else ""
            h.wfile.write(f"{head}data: {text}\n\n".encode())
        if done is not None:
            h.wfile.write(f"data: {done}\n\n".encode())
        h.wfile.flush()
        h.close_connection = True


class HttpStub:
    """``with SomeStub(...) as stub: ... stub.url``; subclasses implement :meth:`handle`."""

    #: appended to ``http://127.0.0.1:PORT`` in :attr:`url`
    url_suffix = ""
    thread_name = "http-stub"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "stub not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return self.base_url + self.url_suffix

    def start(self) -> Any:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name=self.thread_name, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the request log -------------------------------------------------------------

    def record(self, ex: Exchange, kind: str) -> RecordedRequest:
        rec = RecordedRequest(
            method=ex.method,
            path=ex.path,
            at=time.monotonic(),
            kind=kind,
            body=ex.body,
            headers=ex.headers,
            wall=time.time(),
        )
        with self.cond:
            self.requests.append(rec)
            self.cond.notify_all()
        return rec

    def of_kind(self, kind: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.kind == kind]

    def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        """Block until ``pred()`` (called under the lock) holds, or ``timeout`` passed."""
        with self.cond:
            return self.cond.wait_for(pred, timeout)

    # -- answering -------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        raise NotImplementedError


class ScriptedStub(HttpStub, Generic[T]):
    """An :class:`HttpStub` answering its main conversation from a :class:`Script`."""

    def __init__(self, turns: Iterable[T] | None, fallback: Callable[[], T]) -> None:
        super().__init__()
        self.script: Script[T] = Script(turns or [], fallback, self.cond)

    @property
    def turns(self) -> list[T]:
        return self.script.turns

    def add(self, *turns: T) -> None:
        self.script.add(*turns)

    def main_requests(self) -> list[RecordedRequest]:
        return self.of_kind("main")


class _Handler(BaseHTTPRequestHandler):
    owner: HttpStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # quiet: tests read stub.requests instead

    def _serve(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        body: dict[str, Any] | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        self.owner.handle(Exchange(self, body, raw))

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve
