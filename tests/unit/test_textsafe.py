"""textsafe: agent text made harmless for a terminal, whatever the chunking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mullui.textsafe import LogFilter, visible

SAMPLE = (
    b"hi \x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b]52;c;abc\x1b\\ \x1b[21t \x1b[6n end\r\r\n"
    b"line2\x1bPq#0;2;0;0;0\x1b\\ \xc2\x9b31m \x1b_apc\x1b\\ \x1b(B\xff done\r\n"
)
SAFE_CSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[mABCDEFGHJKf]")


def run(data: bytes, size: int, *, terminal: bool) -> bytes:
    f = LogFilter(terminal=terminal)
    out = b"".join(f.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + f.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_a_pipe_gets_plain_text_and_a_terminal_only_colours_whatever_the_chunks(
    size: int,
) -> None:
    assert run(SAMPLE, size, terminal=False) == "hi red     end\nline2   \ufffd done\n".encode()
    assert (
        run(SAMPLE, size, terminal=True)
        == "hi \x1b[31mred\x1b[0m     end\r\r\nline2 \x1b[31m  \ufffd done\r\n".encode()
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=20))
def test_no_escape_gets_through_but_colours_on_a_terminal(data: bytes, size: int) -> None:
    piped = run(data, size, terminal=False)
    assert b"\x1b" not in piped and not re.search(rb"\xc2[\x80-\x9f]", piped)
    shown = run(data, size, terminal=True)
    rest = SAFE_CSI.sub(b"", shown)
    assert b"\x1b" not in rest and not re.search(rb"\xc2[\x80-\x9f]", rest)


def test_an_unended_sequence_is_held_back_only_so_far() -> None:
    f = LogFilter(terminal=False)
    assert f.feed(b"a\x1b]0;never ended") == b"a"
    out = f.feed(b"x" * 70_000)
    assert b"\x1b" not in out and len(out) > 60_000  # not held forever


def test_visible_writes_controls_as_escapes_and_keeps_what_is_asked() -> None:
    assert visible("a\x1b]0;t\x07\u202eb\n") == "a\\x1b]0;t\\x07\\u202eb\\x0a"
    assert visible("a\tb\nc\x9b", "\n\t") == "a\tb\nc\\x9b"
    assert visible("ünïcode ✓ 🙂") == "ünïcode ✓ 🙂"
