"""What commands print: tables sized in terminal columns, agent text cut to one line
with its control characters made visible, JSON, notices on stderr."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mullui.textsafe import visible


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _age(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    s = int((now - t).total_seconds())
    if s < 60:
        return f"{max(s, 0)}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


def _width(s: str) -> int:
    """Columns ``s`` takes in a terminal: East Asian wide/full-width characters take
    two, combining marks and zero-width characters none."""
    n = 0
    for c in s:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        n += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return n


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [
        max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h)
        for i, h in enumerate(header)
    ]
    lines = ["  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _one_line(s: str, n: int = 60) -> str:
    """``s`` on one line, cut to ``n`` terminal columns; control characters made visible
    (agent text: no escape reaches the terminal)."""
    s = visible(" ".join(s.split()))
    if _width(s) <= n:
        return s
    out, used = "", 0
    for c in s:
        w = _width(c)
        if used + w > n - 1:
            break
        out, used = out + c, used + w
    return out + "…"


def _repo_column(agents: list[Any]) -> Callable[[Any], str] | None:
    """A REPO column when the agents come from more than one repository: the repository's
    name, or its path where two share a name."""
    repos = {x.repo for x in agents if x.repo}
    if len(repos) < 2:
        return None
    from pathlib import Path

    names = [Path(r).name for r in repos]
    home = str(Path.home())

    def show(x: Any) -> str:
        repo: str = x.repo or ""
        name = Path(repo).name
        if not repo or names.count(name) == 1:
            return name
        return "~" + repo[len(home) :] if repo.startswith(home + "/") else repo

    return show


def _notice(line: str) -> None:
    print(f"mullui: {visible(line)}", file=sys.stderr)
