"""The ledger of folded agents, read: ``<state>/ledger.jsonl`` (one line per agent that
left the live store, first line per id wins) and ``<state>/history/`` (their spools and
logs).  Folding agents into it is ``mullui.ledger``; the report reads it from here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mullui import journal
from mullui.paths import Paths


def ledger_file(paths: Paths) -> Path:
    return paths.state_dir / "ledger.jsonl"


def history_dir(paths: Paths) -> Path:
    return paths.state_dir / "history"


def rows(paths: Paths) -> Iterator[dict[str, Any]]:
    """Every folded agent's line, first line per id, in the order they were folded;
    streamed (a corrupt line is skipped)."""
    seen: set[str] = set()
    for e, _ in journal.read(ledger_file(paths)):
        aid = e.get("id")
        if not isinstance(aid, str) or aid in seen:
            continue
        if not isinstance(e.get("ls"), dict) or not isinstance(e.get("report"), dict):
            continue
        seen.add(aid)
        yield e


def folded_ids(paths: Paths) -> set[str]:
    return {e["id"] for e in rows(paths)}
