"""Agent and remote text made harmless for a terminal.

What an agent prints (its last message, its question, file names it creates) may carry
escape sequences: OSC 52 writes the clipboard, OSC 0 the window title, SGR 8 hides
text, a query makes the terminal type an answer into the shell.  Human-readable output
shows such text with every control character made visible (``\\x1b``); JSON and
``--raw`` stay exact.

- :func:`visible` for one field or a block of text (``ls``, ``inbox``, error lines);
- :class:`LogFilter` for a byte stream (``mullui logs``): on a terminal only colours
  and cursor movement pass, into a pipe no escape sequence at all.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, TextIO

#: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates that
#: make a terminal show text in another order than it is (line/paragraph separators too).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


_VISIBLE: dict[str, re.Pattern[str]] = {}


def visible(text: str, keep: str = "") -> str:
    """``text`` with each control character written as an escape (``\\x1b``,
    ``\\u202e``); the characters in ``keep`` (say ``"\\n"``) stay as they are."""
    pattern = _VISIBLE.get(keep)
    if pattern is None:
        kept = "".join(re.escape(c) for c in keep)
        body = f"(?![{kept}])[{_CONTROLS}]" if keep else f"[{_CONTROLS}]"
        pattern = _VISIBLE[keep] = re.compile(body)
    return pattern.sub(_escape, text)


class VisibleStream:
    """A text stream (``sys.stdout``) that writes everything through :func:`visible`,
    keeping newlines and tabs: the CLI puts it in front of human-readable output."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        self._stream.write(visible(s, "\n\t"))
        return len(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# ---- byte streams: logs ------------------------------------------------------------------
# ECMA-48: CSI (ESC [ or U+009B), the string commands OSC/DCS/SOS/PM/APC ended by ST or BEL,
# and the other ESC sequences (ESC, intermediates, one final).
_SEQ = re.compile(
    r"(?P<csi>(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~])"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-OQ-WYZ\\`a-~]"
)
_SEQ_OR_STRAY = re.compile(f"{_SEQ.pattern}|[\x1b\x7f-\x9f]")
#: Where a sequence may begin, and a sequence begun but not ended by the end of a chunk.
_INTRO = re.compile(r"[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
_OPEN = re.compile(
    r"(?:(?:\x1b\[|\x9b)[0-?]*[ -/]*"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*\x1b?"
    r"|\x1b[ -/]*)\Z"
)
#: CSI finals that only colour or move: what a terminal may still see.
_SAFE_CSI = frozenset("mABCDEFGHJKf")
#: a sequence not ended holds back at most this much of the stream
_MAX_OPEN = 1 << 16
_CRLF = re.compile(r"\r+\n")  # a pty writes "\r\n" for "\n" (and "\r\r\n" for "\r\n")
_CONTROL_BYTES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class LogFilter:
    """Feed it a pane log's bytes, chunk by chunk; it returns what may be shown.

    ``terminal=True``: colours (SGR) and cursor movement pass, every other sequence
    (titles, clipboard, hyperlinks, device queries, passthrough) is dropped.
    ``terminal=False`` (a pipe, a file): all sequences and control characters but
    newline and tab are dropped, ``\\r\\n`` (``\\r\\r\\n``) becomes ``\\n`` and a lone ``\\r`` a
    newline.
    Invalid UTF-8 becomes U+FFFD, so raw 8-bit controls cannot slip through.
    """

    def __init__(self, *, terminal: bool) -> None:
        self.terminal = terminal
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        text = self._held + self._decoder.decode(data, final)
        self._held = ""
        if not final:
            cut = self._open_tail(text)
            if cut is None and not self.terminal and text.endswith("\r"):
                cut = len(text.rstrip("\r"))  # "\r\n" split across chunks: one newline
            if cut is not None:
                text, self._held = text[:cut], text[cut:]
        return self._clean(text).encode("utf-8")

    @staticmethod
    def _open_tail(text: str) -> int | None:
        """Where a sequence that the next chunk may end begins (None: none does)."""
        for m in _INTRO.finditer(text, max(0, len(text) - _MAX_OPEN)):
            if not _SEQ.match(text, m.start()) and _OPEN.match(text, m.start()):
                return m.start()
        return None

    def close(self) -> bytes:
        return self.feed(b"", final=True)

    def _clean(self, text: str) -> str:
        def seq(m: re.Match[str]) -> str:
            csi = m.group("csi")
            if self.terminal and csi and csi[-1] in _SAFE_CSI:
                return "\x1b[" + csi[2:] if csi[0] == "\x1b" else "\x1b[" + csi[1:]
            return ""

        if self.terminal:
            # A lone introducer (of a sequence never ended) and C1 controls go too.
            return _SEQ_OR_STRAY.sub(seq, text)
        text = _CRLF.sub("\n", _SEQ.sub("", text)).replace("\r", "\n")
        return _CONTROL_BYTES.sub("", text)
