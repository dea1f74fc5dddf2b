"""Tokens and cost of an agent, read from its CLI's own transcript; the price table.

Claude Code writes one JSONL transcript per session
(``~/.claude/projects/<cwd-slug>/<session_id>.jsonl``; the ``transcript_path`` of every hook
payload) and its subagents' transcripts under ``<session_id>/subagents/**/agent-*.jsonl``.
Each ``"type": "assistant"`` line carries ``message.usage`` of the API response it came
from.  One response may be split over several lines (one per content block: thinking,
text, tool_use), each repeating the same ``message.id`` / ``requestId`` and usage, so lines
are **deduplicated per request**; per field the largest value seen wins (a streamed
response's usage only grows).

What ``Usage`` counts:

- ``tokens_in``: every prompt token the model read = uncached input + cache reads + cache
  writes.  That is the volume a ledger compares across agents; ``cache_read`` and
  ``cache_write`` are kept separately, so the uncached part is
  ``tokens_in - cache_read - cache_write``.
- ``tokens_out``: output tokens (thinking included, as the API bills them).
- ``cost_usd``: priced per model with :data:`DEFAULT_PRICES` or ``[prices."model"]`` from
  config.  A model the table does not know costs 0 and is listed in ``unpriced``.

Codex CLI rollouts (``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl``) carry cumulative
totals instead (``event_msg`` / ``token_count`` / ``info.total_token_usage``), where
``input_tokens`` already includes ``cached_input_tokens`` and ``output_tokens`` includes
reasoning: :func:`codex_session_usage` maps them onto the same ``Usage``.

Requests the CLI makes for its own bookkeeping (session titles on the small model) do not
appear in the transcript and are not counted.

Reading tolerates a torn last line (the CLI may be mid-write) and corrupt lines: they are
skipped, never fatal - usage is a report, not a source of truth.
"""

from __future__ import annotations

import json
import os
import stat
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mullui.errors import ConfigError

MILLION = 1_000_000

#: Bytes one update reads from a transcript at most (the rest waits for the next update):
#: the path comes from the agent's hook payload, and a 1 GB sparse file must not be
#: read - or held - whole.
MAX_READ = 64 * 1024 * 1024
#: Bytes held at once while reading.
READ_CHUNK = 1024 * 1024
#: A line longer than this is skipped, not buffered.
MAX_LINE = 8 * 1024 * 1024
#: Subagent transcripts looked at, and how deep their directory tree may go.
MAX_SUBAGENT_FILES = 500
MAX_SUBAGENT_DEPTH = 4
#: Incremental readers kept per process (the supervisor reads each new byte once).
READERS_KEPT = 256


class FileTail:
    """The complete lines appended to a file since the last call.

    Opened with ``O_NOFOLLOW`` (a symlink is not followed), regular files only (a FIFO or a
    device would hang or flood), at most :data:`MAX_READ` bytes per call, streamed in
    :data:`READ_CHUNK` pieces.  ``reset`` is True after :meth:`lines` found the file
    replaced or cut (the owner starts its sums again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.ident: tuple[int, int] | None = None
        self.reset = False

    def lines(self) -> Iterator[str]:
        self.reset = False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, ValueError):
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            ident = (st.st_dev, st.st_ino)
            if ident != self.ident or st.st_size < self.offset:
                self.reset = self.ident is not None or self.offset > 0
                self.ident, self.offset = ident, 0
            budget = MAX_READ
            buf = b""
            while budget > 0:
                chunk = os.pread(fd, min(READ_CHUNK, budget), self.offset + len(buf))
                if not chunk:
                    break
                budget -= len(chunk)
                buf += chunk
                end = buf.rfind(b"\n")
                if end < 0:
                    if len(buf) > MAX_LINE:  # one absurd line: skip what we hold of it
                        self.offset += len(buf)
                        buf = b""
                    continue
                self.offset += end + 1
                text = buf[: end + 1].decode("utf-8", "replace")
                buf = buf[end + 1 :]
                yield from text.splitlines()
        except OSError:
            return
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float  # 5-minute cache write (1.25 x input on Anthropic's price list)

    @property
    def cache_write_1h(self) -> float:
        # Anthropic bills 1-hour cache writes at 2 x the input price; the config schema has
        # no key for it, so it follows ``input``.
        return self.input * 2


# Anthropic list prices (USD / MTok), checked against the public price page as of the
# Claude 4.x models.  Keys are model-id prefixes; the longest matching prefix wins, then
# the family fallbacks below.  Long-context (>200k) surcharges are not modelled.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-6": Price(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4-0": Price(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4-2": Price(15.0, 75.0, 1.50, 18.75),  # claude-opus-4-20250514
    "claude-3-opus": Price(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
    "claude-3-7-sonnet": Price(3.0, 15.0, 0.30, 3.75),
    "claude-3-5-sonnet": Price(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4": Price(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.0, 0.08, 1.0),
    "claude-3-haiku": Price(0.25, 1.25, 0.03, 0.30),
    # OpenAI (Codex CLI): no cache-write charge; cached input is billed at cache_read.
    "gpt-5": Price(1.25, 10.0, 0.125, 0.0),  # also gpt-5-codex, gpt-5.1(-codex)
    "gpt-5-mini": Price(0.25, 2.0, 0.025, 0.0),
    "gpt-5.1-codex-mini": Price(0.25, 2.0, 0.025, 0.0),
    "gpt-5-nano": Price(0.05, 0.40, 0.005, 0.0),
    "gpt-4.1": Price(2.0, 8.0, 0.50, 0.0),
    "o3": Price(2.0, 8.0, 0.50, 0.0),
    "o4-mini": Price(1.10, 4.40, 0.275, 0.0),
}

# A model id newer than the table (e.g. "claude-opus-4-8") is priced like the newest
# model of its family rather than as free: an estimate beats a silent zero in a budget.
FAMILY_PRICES: dict[str, Price] = {
    "opus": DEFAULT_PRICES["claude-opus-4-5"],
    "sonnet": DEFAULT_PRICES["claude-sonnet-4"],
    "haiku": DEFAULT_PRICES["claude-haiku-4"],
}

PRICE_KEYS = ("input", "output", "cache_read", "cache_write")


def prices_from_config(table: Mapping[str, Mapping[str, float]]) -> dict[str, Price]:
    """``[prices."model-name"]`` tables from config -> prices.  A missing key takes the
    default price of that model (or its family), so ``output = 20`` alone is enough."""
    out: dict[str, Price] = {}
    for model, keys in table.items():
        base = price_for(model, {}) or Price(0.0, 0.0, 0.0, 0.0)
        values = {k: getattr(base, k) for k in PRICE_KEYS}
        for k, v in keys.items():
            if k not in PRICE_KEYS:
                raise ConfigError(
                    f'[prices."{model}"] unknown key {k!r}; use one of {", ".join(PRICE_KEYS)}'
                )
            values[k] = float(v)
        out[model] = Price(**values)
    return out


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model``: an exact or longest-prefix override, else the default table,
    else its family (opus/sonnet/haiku); None when nothing fits."""
    name = model.split("[", 1)[0]  # "claude-opus-4-8[1m]" -> the 1M-context variant id
    for table in (overrides or {}, DEFAULT_PRICES):
        if name in table:
            return table[name]
        best = max((k for k in table if name.startswith(k)), key=len, default=None)
        if best is not None:
            return table[best]
    for family, price in FAMILY_PRICES.items():
        if family in name:
            return price
    return None


@dataclass(frozen=True)
class ModelUsage:
    tokens_in: int = 0  # uncached input + cache_read + cache_write
    tokens_out: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost_usd: float = 0.0
    requests: int = 0


@dataclass(frozen=True)
class Usage:
    """Totals over a transcript; see the module docstring for what each field counts."""

    tokens_in: int = 0
    tokens_out: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost_usd: float = 0.0
    by_model: Mapping[str, ModelUsage] = field(default_factory=dict)
    unpriced: tuple[str, ...] = ()

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.by_model.values())

    def as_event(self) -> dict[str, Any]:
        """The normalized ``usage`` event (totals so far)."""
        return {
            "kind": "usage",
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost_usd, 6),
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
            "by_model": {
                m: {
                    "tokens_in": u.tokens_in,
                    "tokens_out": u.tokens_out,
                    "cost_usd": round(u.cost_usd, 6),
                }
                for m, u in self.by_model.items()
            },
        }


@dataclass
class _Request:
    model: str
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _merge(into: _Request, usage: Mapping[str, Any]) -> None:
    """Fold one line's usage into its request (max per field: repeats and growth)."""
    into.input = max(into.input, _int(usage.get("input_tokens")))
    into.output = max(into.output, _int(usage.get("output_tokens")))
    into.cache_read = max(into.cache_read, _int(usage.get("cache_read_input_tokens")))
    total_write = _int(usage.get("cache_creation_input_tokens"))
    split = usage.get("cache_creation")
    one_hour = _int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
    one_hour = min(one_hour, total_write)
    into.cache_write_1h = max(into.cache_write_1h, one_hour)
    into.cache_write_5m = max(into.cache_write_5m, total_write - one_hour)


class ClaudeTranscript:
    """Usage of one Claude Code transcript file, read incrementally.

    ``update()`` reads only what was appended since the last call, and only up to the last
    complete line: a torn tail (the CLI mid-write) is read next time, whole.  A long-lived
    reader (the supervisor) therefore costs O(new bytes) per Stop; a one-shot ``mullui
    hook`` process just reads the file once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tail = FileTail(path)
        self._requests: dict[str, _Request] = {}

    @property
    def _offset(self) -> int:
        return self._tail.offset

    def update(self) -> None:
        lines = self._tail.lines()
        for first in lines:
            if self._tail.reset:
                self._requests = {}
            self.feed([first])
            self.feed(lines)

    def feed(self, lines: Iterable[str]) -> None:
        """Fold transcript lines in (complete lines; bad ones are skipped)."""
        for n, line in enumerate(lines):
            # Cheap filter first: most lines (tool results, file snapshots) carry no usage,
            # and transcripts reach megabytes; json-decode only the candidates.
            if '"usage"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("type") != "assistant":
                continue
            msg = rec.get("message")
            if not isinstance(msg, dict):
                continue
            usage = msg.get("usage")
            model = msg.get("model")
            if not isinstance(usage, dict) or not isinstance(model, str):
                continue
            if model == "<synthetic>":
                continue  # the CLI's own placeholder messages (errors, interrupts): no API call
            key = msg.get("id") or rec.get("requestId") or rec.get("uuid") or f"{self._offset}:{n}"
            req = self._requests.get(str(key))
            if req is None:
                req = self._requests[str(key)] = _Request(model=model)
            _merge(req, usage)

    def absorb(self, other: ClaudeTranscript) -> None:
        """Add another file's requests (a subagent's), each request counted once."""
        for key, req in other._requests.items():
            self._requests.setdefault(key, req)

    def usage(self, prices: Mapping[str, Price] | None = None) -> Usage:
        return _total(self._requests.values(), prices)


def _total(requests: Iterable[_Request], prices: Mapping[str, Price] | None) -> Usage:
    acc: dict[str, ModelUsage] = {}
    unpriced: set[str] = set()
    for r in requests:
        price = price_for(r.model, prices)
        if price is None:
            unpriced.add(r.model)
            cost = 0.0
        else:
            cost = (
                r.input * price.input
                + r.output * price.output
                + r.cache_read * price.cache_read
                + r.cache_write_5m * price.cache_write
                + r.cache_write_1h * price.cache_write_1h
            ) / MILLION
        m = acc.get(r.model, ModelUsage())
        acc[r.model] = ModelUsage(
            tokens_in=m.tokens_in + r.input + r.cache_read + r.cache_write,
            tokens_out=m.tokens_out + r.output,
            cache_read=m.cache_read + r.cache_read,
            cache_write=m.cache_write + r.cache_write,
            cost_usd=m.cost_usd + cost,
            requests=m.requests + 1,
        )
    return Usage(
        tokens_in=sum(m.tokens_in for m in acc.values()),
        tokens_out=sum(m.tokens_out for m in acc.values()),
        cache_read=sum(m.cache_read for m in acc.values()),
        cache_write=sum(m.cache_write for m in acc.values()),
        cost_usd=sum(m.cost_usd for m in acc.values()),
        by_model=dict(sorted(acc.items())),
        unpriced=tuple(sorted(unpriced)),
    )


def subagent_transcripts(transcript_path: Path) -> list[Path]:
    """Transcripts of the session's subagents (Claude Code 2.1.x keeps them apart, under
    ``<dir>/<session_id>/subagents/``, nested for workflows).  Never through a symlinked
    directory, at most :data:`MAX_SUBAGENT_DEPTH` levels and
    :data:`MAX_SUBAGENT_FILES` files: the path comes from the agent."""
    session = transcript_path.with_suffix("")
    sub = session / "subagents"
    for d in (session, sub):
        try:
            if not stat.S_ISDIR(os.lstat(d).st_mode):
                return []
        except (OSError, ValueError):
            return []
    found: list[Path] = []
    todo = [(sub, 0)]
    while todo and len(found) < MAX_SUBAGENT_FILES:
        d, depth = todo.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        if depth < MAX_SUBAGENT_DEPTH:
                            todo.append((Path(e.path), depth + 1))
                    elif e.name.endswith(".jsonl") and e.is_file(follow_symlinks=False):
                        found.append(Path(e.path))
        except OSError:
            continue
    return sorted(found)[:MAX_SUBAGENT_FILES]


_READERS: OrderedDict[str, ClaudeTranscript] = OrderedDict()


def _reader(path: Path) -> ClaudeTranscript:
    """This process's incremental reader of ``path`` (the supervisor reads each new byte of
    a transcript once, however many Stops it sees)."""
    key = str(path)
    r = _READERS.pop(key, None) or ClaudeTranscript(path)
    _READERS[key] = r
    while len(_READERS) > READERS_KEPT:
        _READERS.popitem(last=False)
    return r


def is_regular_file(path: Path) -> bool:
    """Only a regular file is read as a transcript: the path comes from the agent's hook
    payload, and a FIFO or a device there would hang (or flood) the hook process."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def claude_session_usage(transcript_path: Path, prices: Mapping[str, Price] | None = None) -> Usage:
    """Usage of a Claude Code session: its transcript plus its subagents' transcripts.

    Requests are deduplicated across files too (a subagent's lines never share an id
    with the main thread's, but a resumed session may copy earlier lines).  Each file is
    read from where this process last stopped (:func:`_reader`)."""
    reader = _reader(transcript_path)
    reader.update()
    requests = dict(reader._requests)
    for extra in subagent_transcripts(transcript_path):
        sub = _reader(extra)
        sub.update()
        for key, req in sub._requests.items():
            requests.setdefault(key, req)
    return _total(requests.values(), prices)


def codex_session_usage(rollout_path: Path, prices: Mapping[str, Price] | None = None) -> Usage:
    """Usage of a Codex CLI session from its rollout file.

    The totals are cumulative: each growth between successive ``token_count`` totals is one
    request, attributed to the model of the latest ``turn_context`` (a session can switch
    models with ``/model``).
    """
    model = "unknown"
    last = (0, 0, 0)  # input (incl. cached), cached, output
    requests: list[_Request] = []
    for line in FileTail(rollout_path).lines():
        if '"turn_context"' not in line and '"token_count"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # torn last line or garbage
        payload = rec.get("payload") if isinstance(rec, dict) else None
        if not isinstance(payload, dict):
            continue
        if rec.get("type") == "turn_context" and isinstance(payload.get("model"), str):
            model = payload["model"]
            continue
        info = payload.get("info") if payload.get("type") == "token_count" else None
        total = info.get("total_token_usage") if isinstance(info, dict) else None
        if not isinstance(total, dict):
            continue
        now = (
            _int(total.get("input_tokens")),
            _int(total.get("cached_input_tokens")),
            _int(total.get("output_tokens")),
        )
        grew_in, grew_cached, grew_out = (max(0, a - b) for a, b in zip(now, last, strict=True))
        last = (max(now[0], last[0]), max(now[1], last[1]), max(now[2], last[2]))
        if not (grew_in or grew_cached or grew_out):
            continue  # the same totals again (Codex re-emits them with rate-limit updates)
        cached = min(grew_cached, grew_in)
        requests.append(
            _Request(model=model, input=grew_in - cached, output=grew_out, cache_read=cached)
        )
    return _total(requests, prices)
