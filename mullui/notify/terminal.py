"""Terminal notifications: OSC 777 and OSC 9 escape sequences, then BEL.

The fallback when there is no desktop notification server (SSH, a container, a bare
console).  Terminals that understand OSC 777 (rxvt-unicode, foot, Ghostty, WezTerm) or
OSC 9 (iTerm2, kitty, Windows Terminal, WezTerm) raise a desktop notification of their
own; the others ignore the sequences and just ring the bell.  WezTerm understands both
and may show two popups; the bell alone never hurts.

Text from agents goes into these sequences, so it is sanitized first: a stray ESC or BEL
in an agent's message would otherwise end the sequence early and let the rest be
interpreted by the terminal.
"""

from __future__ import annotations

import re

TITLE_MAX = 80
BODY_MAX = 240
ESC = "\x1b"
BEL = "\x07"

# C0 controls, DEL and C1 controls (0x80-0x9f: 8-bit CSI/OSC/ST in some terminals).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SPACES = re.compile(r" {2,}")


def clean(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters, safe inside an OSC string."""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(line) > limit:
        line = line[: max(0, limit - 3)].rstrip() + "..."
    return line


def terminal_sequence(title: str, body: str, *, tmux: bool = False) -> str:
    """OSC 777 + OSC 9 + BEL announcing ``title``/``body``.

    ``;`` separates OSC 777's fields and a leading ``<digits>;`` makes ConEmu read OSC 9
    as a command (progress bars), so neither reaches these fields unescaped.

    With ``tmux=True`` each OSC is also wrapped in tmux's DCS passthrough, which tmux
    (3.3+) forwards to the outer terminal only when ``allow-passthrough`` is on; tmux
    drops bare OSC 777/9 either way, while BEL gets through as a window bell.
    """
    t = clean(title, TITLE_MAX).replace(";", ",")
    b = clean(body, BODY_MAX).replace(";", ",")
    oscs = [f"{ESC}]777;notify;{t};{b}{BEL}", f"{ESC}]9;{t}: {b}{BEL}"]
    if tmux:
        oscs = [f"{ESC}Ptmux;{osc.replace(ESC, ESC + ESC)}{ESC}\\" for osc in oscs]
    return "".join(oscs) + BEL
