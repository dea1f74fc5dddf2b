"""Agent, git and file-name text on screen: always literal, never markup, never escapes.

Agents read pages, issues and code written by strangers, and whatever they print ends up
in a last message, a question, a branch or a file name.  None of it may be parsed as
Rich/Textual markup (``[/tmp/x]`` crashed the TUI; ``[@click=...]`` became an action) or
reach the terminal as a control sequence (OSC 52 writes the clipboard, OSC 0 the window
title, ``ESC[8m`` hides text).  So every such string is shown through :func:`text` (a
``rich.text.Text``, which is never parsed) after :func:`visible` has written each control
character as an escape, as the CLI does: ``ESC]0;x BEL`` reads ``\\x1b]0;x\\x07``.

Logs are different: they are the agent's terminal output, and their colours are worth
keeping.  :func:`sgr_only` keeps the colour and style sequences (SGR) and drops every
other escape sequence and control character before ``Text.from_ansi`` reads the line.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

from mullui import textsafe

#: A colour sequence (SGR), the one kind of escape a log line keeps.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
#: C0 controls a terminal still acts on once the sequences are gone (SO/SI switch the
#: character set, BS/BEL...): dropped from logs.  Newline and tab are handled before.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1a\x1c-\x1f]")
_CONCEAL_OFF = Style(conceal=False)
#: An SGR sequence with parameter 8 (conceal: hidden text).
_CONCEAL = re.compile(r"\x1b\[(?:[0-9:]*;)*8[;m]")


def visible(s: str, *, one_line: bool = True) -> str:
    """``s`` with every control character written as an escape (``\\x1b``, as the CLI
    shows them: :func:`mullui.textsafe.visible`).

    ``one_line``: a tab reads as a space and a newline as ``\\x0a`` (cells, titles);
    otherwise newlines stay (multi-line dialogs)."""
    if s.isprintable():
        return s  # the usual case: nothing to do (and fast)
    if one_line:
        return textsafe.visible(s.replace("\t", " "))
    return textsafe.visible(s, "\n\t")


def text(s: str, style: str | Style = "", *, one_line: bool = True) -> Text:
    """Untrusted text as a ``Text``: never parsed as markup, controls made visible."""
    return Text(visible(s, one_line=one_line), style=style, end="")


def append(t: Text, s: str, style: str | Style = "") -> Text:
    """Append untrusted ``s`` to ``t`` (literal, controls visible); returns ``t``."""
    t.append(visible(s), style=style)
    return t


def sgr_only(line: str) -> str:
    """A log line with its colours (SGR sequences) kept and every other escape sequence
    and control character removed: nothing but colour reaches the terminal.  The
    sequences are read by ``mullui logs``' own filter (:class:`mullui.textsafe.LogFilter`,
    which lets cursor moves through too: ``Text.from_ansi`` ignores those)."""
    if line.isprintable() or _SGR.sub("", line).isprintable():
        return line  # the usual case: plain, or colours only (and fast)
    kept = textsafe.LogFilter(terminal=True).feed(line.encode(), final=True).decode()
    return _CONTROLS.sub("", kept)


def from_ansi(line: str) -> Text:
    """A log or diff line as ``Text``: its colours, no other escapes, no hidden text and
    no links (``Text.from_ansi`` alone makes OSC 8 a link and passes OSC 0 through)."""
    t = Text.from_ansi(sgr_only(line), no_wrap=True, end="")
    if _CONCEAL.search(line):
        t.spans[:] = [
            span._replace(style=span.style + _CONCEAL_OFF)
            if isinstance(span.style, Style)
            else span
            for span in t.spans
        ]
    return t
