"""The ledger of folded agents, read: ``<state>/ledger.jsonl`` (one line per agent that
left the live store, first line per id wins) and ``<state>/history/`` (their spools and
logs).  Folding agents into it is ``mullui.ledger``; the report reads it from here.

An agent acted on again after it was folded (``mullui rm``, ``merge``, ``ack``,
``resume``... while its worktree or branch is still there) comes back to the live store:
a ``{"id", "revived_at"}`` line says so, and the agent's earlier lines no longer count.
When it is folded again its new line is the one read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mullui import journal
from mullui.errors import MulluiError
from mullui.paths import Paths


def ledger_file(paths: Paths) -> Path:
    return paths.state_dir / "ledger.jsonl"


def history_dir(paths: Paths) -> Path:
    return paths.state_dir / "history"


def revived_line(agent_id: str, at: str) -> dict[str, Any]:
    """The line that takes an agent out of the ledger again (it is live once more)."""
    return {"id": agent_id, "revived_at": at}


def rows(paths: Paths) -> Iterator[dict[str, Any]]:
    """Every folded agent's line, first line per id since it was last revived, in the
    order they were folded (a corrupt line is skipped)."""
    found: dict[str, dict[str, Any]] = {}
    for e, _ in journal.read(ledger_file(paths)):
        aid = e.get("id")
        if not isinstance(aid, str):
            continue
        if "revived_at" in e:
            found.pop(aid, None)
            continue
        if aid in found:
            continue
        if not isinstance(e.get("ls"), dict) or not isinstance(e.get("report"), dict):
            continue
        found[aid] = e
    yield from found.values()


def folded_ids(paths: Paths) -> set[str]:
    return {e["id"] for e in rows(paths)}


def find(paths: Paths, ref: str) -> dict[str, Any] | None:
    """The ledger line of the folded agent ``ref`` names (id, unique id prefix, or name;
    a name several folded agents had is refused), or None."""
    if not ref or not ledger_file(paths).exists():
        return None
    by_id: dict[str, Any] | None = None
    by_name: list[dict[str, Any]] = []
    by_prefix: list[dict[str, Any]] = []
    for r in rows(paths):
        if r["id"] == ref:
            by_id = r
        if r["ls"].get("name") == ref:
            by_name.append(r)
        if r["id"].startswith(ref):
            by_prefix.append(r)
    if by_id is not None:
        return by_id
    for found in (by_name, by_prefix):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise MulluiError(
                f"{ref!r} names several agents in the history: use the id from `mullui ls --all`"
            )
    return None
