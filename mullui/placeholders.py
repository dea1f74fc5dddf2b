"""``{name}`` placeholders in task text and custom argv, replaced without a parser.

Done by hand rather than ``str.format``: a task full of code (``{`` and ``}`` everywhere)
must never be parsed as a format string, and only the names given are replaced.
"""

from __future__ import annotations


def expand(template: str, values: dict[str, str]) -> str:
    """Replace ``{key}`` for the keys in ``values``; any other brace stays as typed."""
    out: list[str] = []
    i = 0
    while i < len(template):
        if template[i] == "{":
            end = template.find("}", i)
            key = template[i + 1 : end] if end > 0 else ""
            if key in values:
                out.append(values[key])
                i = end + 1
                continue
        out.append(template[i])
        i += 1
    return "".join(out)
