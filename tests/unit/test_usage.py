"""Tokens and cost from agent transcripts (Claude lines copied from Claude Code 2.1.197)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mullui.errors import ConfigError
from mullui.usage import (
    DEFAULT_PRICES,
    ClaudeTranscript,
    Price,
    Usage,
    claude_session_usage,
    codex_session_usage,
    price_for,
    prices_from_config,
)


def assistant_line(
    msg_id: str,
    *,
    model: str = "claude-sonnet-4-5-20250929",
    inp: int = 0,
    out: int = 0,
    cread: int = 0,
    cwrite: int = 0,
    cwrite_1h: int = 0,
    block: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> str:
    """One ``"type": "assistant"`` transcript line as Claude Code writes it."""
    return json.dumps(
        {
            "parentUuid": None,
            "isSidechain": False,
            "message": {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block or {"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "usage": {
                    "input_tokens": inp,
                    "cache_creation_input_tokens": cwrite,
                    "cache_read_input_tokens": cread,
                    "output_tokens": out,
                    "service_tier": "standard",
                    "cache_creation": {
                        "ephemeral_1h_input_tokens": cwrite_1h,
                        "ephemeral_5m_input_tokens": cwrite - cwrite_1h,
                    },
                },
            },
            "requestId": request_id or f"req_{msg_id}",
            "type": "assistant",
            "uuid": f"uuid-{msg_id}-{id(block)}",
        }
    )


USER_LINE = json.dumps(
    {"type": "user", "message": {"role": "user", "content": "do it"}, "uuid": "u1"}
)


def write(path: Path, lines: list[str], *, torn_tail: str = "") -> Path:
    path.write_text("".join(line + "\n" for line in lines) + torn_tail)
    return path


def test_one_response_split_over_lines_is_counted_once(tmp_path: Path) -> None:
    # A response with text + tool_use is written as two lines sharing message.id.
    lines = [
        USER_LINE,
        assistant_line("msg_1", inp=100, out=40, cread=1000, cwrite=200),
        assistant_line(
            "msg_1",
            inp=100,
            out=40,
            cread=1000,
            cwrite=200,
            block={"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
        ),
        assistant_line("msg_2", inp=10, out=5),
    ]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines))
    assert u.requests == 2
    assert u.tokens_out == 45
    assert u.cache_read == 1000
    assert u.cache_write == 200
    # tokens_in counts every prompt token read: uncached + cache reads + cache writes
    assert u.tokens_in == 100 + 1000 + 200 + 10


def test_streamed_usage_that_grows_keeps_the_final_numbers(tmp_path: Path) -> None:
    lines = [
        assistant_line("msg_1", inp=100, out=1),  # as of message_start
        assistant_line("msg_1", inp=100, out=300),  # after message_delta
    ]
    assert claude_session_usage(write(tmp_path / "s.jsonl", lines)).tokens_out == 300


def test_cost_is_priced_per_model(tmp_path: Path) -> None:
    lines = [
        assistant_line("a", model="claude-sonnet-4-5-20250929", inp=1_000_000, out=1_000_000),
        assistant_line("b", model="claude-haiku-4-5-20251001", cread=1_000_000, cwrite=1_000_000),
    ]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines))
    sonnet, haiku = DEFAULT_PRICES["claude-sonnet-4"], DEFAULT_PRICES["claude-haiku-4"]
    assert u.by_model["claude-sonnet-4-5-20250929"].cost_usd == pytest.approx(
        sonnet.input + sonnet.output
    )
    assert u.by_model["claude-haiku-4-5-20251001"].cost_usd == pytest.approx(
        haiku.cache_read + haiku.cache_write
    )
    assert u.cost_usd == pytest.approx(18.0 + 0.10 + 1.25)
    assert u.unpriced == ()


def test_one_hour_cache_writes_cost_twice_the_input_price(tmp_path: Path) -> None:
    lines = [assistant_line("a", model="claude-sonnet-4-5", cwrite=1_000_000, cwrite_1h=400_000)]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines))
    assert u.cost_usd == pytest.approx(0.6 * 3.75 + 0.4 * 6.0)


def test_config_prices_override_the_table(tmp_path: Path) -> None:
    prices = prices_from_config({"claude-sonnet-4-5-20250929": {"output": 100.0}})
    assert prices["claude-sonnet-4-5-20250929"] == Price(3.0, 100.0, 0.30, 3.75)
    lines = [assistant_line("a", model="claude-sonnet-4-5-20250929", out=1_000_000)]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines), prices)
    assert u.cost_usd == pytest.approx(100.0)


def test_config_price_with_an_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r'\[prices."m"\] unknown key \'inptu\''):
        prices_from_config({"m": {"inptu": 1.0}})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-opus-4-1-20250805", DEFAULT_PRICES["claude-opus-4-1"]),
        ("claude-opus-4-20250514", DEFAULT_PRICES["claude-opus-4-0"]),
        ("claude-opus-4-5-20251101", DEFAULT_PRICES["claude-opus-4-5"]),
        ("claude-opus-4-8", DEFAULT_PRICES["claude-opus-4-5"]),  # newer: family price
        ("claude-opus-4-8[1m]", DEFAULT_PRICES["claude-opus-4-5"]),
        ("claude-sonnet-4-20250514", DEFAULT_PRICES["claude-sonnet-4"]),
        ("claude-3-5-haiku-20241022", DEFAULT_PRICES["claude-3-5-haiku"]),
        ("claude-haiku-4-5-20251001", DEFAULT_PRICES["claude-haiku-4"]),
        ("gpt-5.1-codex", DEFAULT_PRICES["gpt-5"]),
        ("gpt-5.1-codex-mini-2025", DEFAULT_PRICES["gpt-5.1-codex-mini"]),
        ("llama-3-70b", None),
    ],
)
def test_price_lookup(model: str, expected: Price | None) -> None:
    assert price_for(model) == expected


def test_unknown_model_costs_nothing_and_is_named(tmp_path: Path) -> None:
    lines = [assistant_line("a", model="mystery-1", inp=5, out=5)]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines))
    assert (u.cost_usd, u.tokens_in, u.unpriced) == (0.0, 5, ("mystery-1",))


def test_synthetic_and_corrupt_lines_are_skipped(tmp_path: Path) -> None:
    lines = [
        "{not json",
        assistant_line("x", model="<synthetic>", inp=999, out=999),
        '{"type": "assistant", "message": "usage?"}',
        assistant_line("a", inp=7, out=3),
    ]
    u = claude_session_usage(write(tmp_path / "s.jsonl", lines))
    assert (u.tokens_in, u.tokens_out, u.requests) == (7, 3, 1)


def test_a_torn_last_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    full = assistant_line("b", inp=50, out=50)
    path = write(tmp_path / "s.jsonl", [assistant_line("a", inp=1, out=1)], torn_tail=full[:40])
    reader = ClaudeTranscript(path)
    reader.update()
    assert reader.usage().tokens_out == 1
    with path.open("a") as f:
        f.write(full[40:] + "\n")
    reader.update()
    assert reader.usage().tokens_out == 51
    reader.update()  # nothing new: nothing counted twice
    assert reader.usage().tokens_out == 51


def test_missing_transcript_is_zero(tmp_path: Path) -> None:
    assert claude_session_usage(tmp_path / "nope.jsonl").tokens_in == 0


def test_subagent_transcripts_are_included(tmp_path: Path) -> None:
    main = write(tmp_path / "sess.jsonl", [assistant_line("a", inp=10, out=1)])
    sub = tmp_path / "sess" / "subagents" / "workflows" / "run1"
    sub.mkdir(parents=True)
    write(sub / "agent-x.jsonl", [assistant_line("s1", model="claude-haiku-4-5", inp=20, out=2)])
    u = claude_session_usage(main)
    assert (u.tokens_in, u.tokens_out) == (30, 3)
    assert set(u.by_model) == {"claude-sonnet-4-5-20250929", "claude-haiku-4-5"}


def test_usage_event_shape(tmp_path: Path) -> None:
    u = claude_session_usage(write(tmp_path / "s.jsonl", [assistant_line("a", inp=1, out=2)]))
    ev = u.as_event()
    assert ev["kind"] == "usage"
    assert (ev["tokens_in"], ev["tokens_out"]) == (1, 2)
    assert isinstance(ev["cost_usd"], float)


RESPONSES = [
    assistant_line(f"m{i}", inp=i * 10, out=i, cread=i * 100, cwrite=i * 3) for i in range(1, 7)
] + [assistant_line("m3", inp=30, out=3, cread=300, cwrite=9, block={"type": "thinking"})]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_reading_in_any_pieces_equals_reading_once(tmp_path_factory: Any, cuts: list[int]) -> None:
    """Whatever byte boundaries the writer's appends fall on, the incremental reader ends
    with the same totals as a single read."""
    data = "".join(line + "\n" for line in RESPONSES).encode()
    path = tmp_path_factory.mktemp("t") / "s.jsonl"
    path.write_bytes(b"")
    reader = ClaudeTranscript(path)
    written = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        with path.open("ab") as f:
            f.write(data[written:cut])
        written = max(written, cut)
        reader.update()
    once = claude_session_usage(path)
    assert reader.usage() == once
    assert once.requests == 6
    assert once.tokens_out == sum(range(1, 7))


# ---- Codex CLI rollouts (shapes as Codex 0.5x writes them) -----------------------------


def codex_turn_context(model: str) -> str:
    return json.dumps(
        {
            "type": "turn_context",
            "payload": {"cwd": "/w", "approval_policy": "on-request", "model": model},
        }
    )


def codex_token_count(inp: int, cached: int, out: int) -> str:
    total = {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": out // 2,
        "total_tokens": inp + out,
    }
    return json.dumps(
        {
            "type": "event_msg",
            "payload": {
                "type": "token_count",
                "info": {"total_token_usage": total, "last_token_usage": total},
                "rate_limits": {"primary": {"used_percent": 7.0}},
            },
        }
    )


def test_codex_cumulative_totals_become_per_model_usage(tmp_path: Path) -> None:
    lines = [
        json.dumps({"type": "session_meta", "payload": {"id": "019a"}}),
        codex_turn_context("gpt-5-codex"),
        json.dumps({"type": "event_msg", "payload": {"type": "token_count", "info": None}}),
        codex_token_count(10_000, 4_000, 500),
        codex_token_count(10_000, 4_000, 500),  # re-emitted with a rate-limit update
        codex_token_count(30_000, 20_000, 900),
        codex_turn_context("gpt-5-mini"),
        codex_token_count(1_030_000, 20_000, 1_000_900),
    ]
    path = write(tmp_path / "rollout.jsonl", lines, torn_tail='{"type": "event_msg", "pay')
    u = codex_session_usage(path)
    assert u.requests == 3
    # Codex's input_tokens already include the cached ones; tokens_in is all prompt tokens.
    assert (u.tokens_in, u.cache_read, u.tokens_out) == (1_030_000, 20_000, 1_000_900)
    codex, mini = u.by_model["gpt-5-codex"], u.by_model["gpt-5-mini"]
    assert (codex.tokens_in, codex.cache_read, codex.tokens_out) == (30_000, 20_000, 900)
    assert mini.cost_usd == pytest.approx(0.25 + 2.0)  # 1M uncached input + 1M output
    assert codex.cost_usd == pytest.approx((10_000 * 1.25 + 20_000 * 0.125 + 900 * 10) / 1e6)


def test_codex_rollout_missing_is_zero(tmp_path: Path) -> None:
    assert codex_session_usage(tmp_path / "none.jsonl") == Usage()


def test_a_fifo_as_transcript_is_not_read(tmp_path: Path) -> None:
    """The transcript path comes from the agent's payload: a FIFO must not hang the hook."""
    import os

    from mullui.usage import claude_session_usage, codex_session_usage

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert claude_session_usage(fifo).requests == 0
    assert codex_session_usage(fifo).tokens_in == 0


# ---- hostile transcript paths (issue 20 item 7) ------------------------------------------
def test_a_huge_sparse_transcript_is_read_capped_and_streamed(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "sparse.jsonl"
    with path.open("wb") as f:
        f.truncate(1 << 30)  # 1 GB of NULs, no newline: nothing to count
    # VmHWM: this program's peak (ru_maxrss would count the forked test process's pages)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mullui.usage import claude_session_usage\n"
        "u = claude_session_usage(Path(sys.argv[1]))\n"
        "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
        "print(u.requests, int(hwm.split()[1]) // 1024)\n"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    requests, rss_mb = (int(x) for x in r.stdout.split())
    assert requests == 0 and rss_mb < 120, (r.stdout, r.stderr)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    real = write(tmp_path / "real.jsonl", [assistant_line("a", inp=10, out=1)])
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert claude_session_usage(link).requests == 0
    # a symlinked subagents dir pointing at / is not walked
    main = write(tmp_path / "sess.jsonl", [assistant_line("b", inp=1, out=1)])
    (tmp_path / "sess").mkdir()
    (tmp_path / "sess" / "subagents").symlink_to("/")
    from mullui.usage import subagent_transcripts

    assert subagent_transcripts(main) == []
    assert claude_session_usage(main).requests == 1
