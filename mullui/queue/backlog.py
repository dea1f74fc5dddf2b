"""Backlogs: a TOML file of tasks (``mullui spawn --from FILE``), validated whole, then
queued in dependency order."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mullui.context import Context
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent
from mullui.operations import lifecycle, records
from mullui.operations.admission import admission, deferring
from mullui.operations.names import taken_names
from mullui.queue.tick import tick
from mullui.runtime import worktrees

TASK_KEYS = ("name", "agent", "task", "after", "base", "estimate_h")


@dataclass(frozen=True)
class BacklogTask:
    """One task of a backlog file, validated."""

    name: str | None
    agent: str | None
    task: str
    after: str | None
    base: str | None
    estimate_h: float | None
    line: int  # where the task's table starts
    key_lines: tuple[tuple[str, int], ...] = ()

    def line_of(self, key: str) -> int:
        """The line of ``key`` in this task (its table's line when not found)."""
        return dict(self.key_lines).get(key, self.line)


def _key_lines(text: str) -> list[tuple[int, dict[str, int]]]:
    """For each task block (``[[tasks]]`` or ``[tasks.NAME]``), in order: its header line
    and the line of each key in it.  Good enough for error messages; tomllib keeps none."""
    blocks: list[tuple[int, dict[str, int]]] = []
    current: dict[str, int] | None = None
    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if s.startswith("["):
            header = re.sub(r"\s+", "", s.split("#", 1)[0])
            if header == "[[tasks]]" or header.startswith("[tasks."):
                current = {}
                blocks.append((i, current))
            else:
                current = None
            continue
        m = re.match(r'^["\']?([A-Za-z0-9_\-]+)["\']?\s*=', s)
        if m and current is not None:
            current.setdefault(m.group(1), i)
    return blocks


def parse_backlog(text: str, path: Path, profiles: Sequence[str]) -> list[BacklogTask]:
    """Validate a backlog file whole; raises ``ConfigError`` naming file and line.

    Shape: ``[[tasks]]`` tables (or ``[tasks.NAME]`` tables) with ``task`` (required),
    ``agent``, ``name``, ``after`` (another task's name in the same file), ``base``, and
    ``estimate_h`` (hours, kept for the cost ledger).
    """
    fname = path.name

    def err(line: int | None, what: str) -> ConfigError:
        where = f"{fname} line {line}" if line else fname
        return ConfigError(f"{where}: {what} ({path})")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        short = re.sub(r"\s*\(at line.*\)", "", str(e))
        raise err(int(m.group(1)) if m else None, f"TOML syntax error: {short}") from None
    for k in data:
        if k != "tasks":
            raise err(None, f"unknown top-level key {k!r}: tasks go in [[tasks]] tables")
    raw = data.get("tasks")
    blocks = _key_lines(text)
    items: list[tuple[str | None, Any]]
    if isinstance(raw, list):
        items = [(None, t) for t in raw]
    elif isinstance(raw, dict):
        items = list(raw.items())
    else:
        raise err(None, 'no tasks: add [[tasks]] tables with a task = "..." each')
    if not items:
        raise err(None, 'no tasks: add [[tasks]] tables with a task = "..." each')
    out: list[BacklogTask] = []
    for idx, (key_name, body) in enumerate(items):
        header, lines = blocks[idx] if idx < len(blocks) else (None, {})
        n = idx + 1

        def at(k: str, header: int | None = header, lines: dict[str, int] = lines) -> int | None:
            return lines.get(k, header)

        if not isinstance(body, dict):
            raise err(header, f"task {n} must be a table")
        for k in body:
            if k not in TASK_KEYS:
                raise err(at(k), f"task {n}: unknown key {k!r} (known: {', '.join(TASK_KEYS)})")
        for k in ("name", "agent", "task", "after", "base"):
            if k in body and not (isinstance(body[k], str) and body[k].strip()):
                raise err(at(k), f"task {n}: {k} must be a non-empty string")
        if "task" not in body:
            raise err(header, f"task {n}: task is required")
        if "\x00" in body["task"]:
            raise err(at("task"), f"task {n}: the task contains a NUL byte")
        est = body.get("estimate_h")
        if est is not None and (
            isinstance(est, bool) or not isinstance(est, int | float) or est < 0
        ):
            raise err(at("estimate_h"), f"task {n}: estimate_h must be a number of hours >= 0")
        name = body.get("name", key_name)
        if key_name is not None and "name" in body and body["name"] != key_name:
            raise err(
                at("name"), f"task {n}: name {body['name']!r} differs from [tasks.{key_name}]"
            )
        if name is not None and any(c in name for c in "\n\r"):
            raise err(at("name"), f"task {n}: name must be one line")
        agent = body.get("agent")
        if agent is not None and agent not in profiles:
            raise err(
                at("agent"),
                f"task {n}: unknown agent {agent!r} (known: {', '.join(sorted(profiles))})",
            )
        out.append(
            BacklogTask(
                name,
                agent,
                body["task"],
                body.get("after"),
                body.get("base"),
                float(est) if est is not None else None,
                header or at("task") or 0,
                tuple(lines.items()),
            )
        )
    names: dict[str, BacklogTask] = {}
    for t in out:
        if t.name is None:
            continue
        if t.name in names:
            raise err(
                t.line_of("name"),
                f"task name {t.name!r} is used twice (first at line "
                f"{names[t.name].line_of('name')})",
            )
        names[t.name] = t
    for t in out:
        if t.after is not None and t.after not in names:
            raise err(t.line_of("after"), f"after = {t.after!r} names no task in this file")
        if t.after is not None and t.base is not None:
            raise err(
                t.line_of("base"),
                f"task {t.name or t.task[:20]!r}: give after or base, not both "
                "(a follow-up starts from its predecessor's branch)",
            )
    for t in out:  # one predecessor each: a cycle is a loop of after pointers
        seen = [t.name]
        cur = t
        while cur.after is not None:
            if cur.after in seen:
                loop = " -> ".join([*(s or "" for s in seen[seen.index(cur.after) :]), cur.after])
                raise err(t.line_of("after"), f"after makes a cycle: {loop}")
            seen.append(cur.after)
            cur = names[cur.after]
    return out


def _dependency_order(tasks: list[BacklogTask]) -> list[BacklogTask]:
    by_name = {t.name: t for t in tasks if t.name}
    done: set[int] = set()
    out: list[BacklogTask] = []

    def visit(t: BacklogTask) -> None:
        if id(t) in done:
            return
        if t.after is not None:
            visit(by_name[t.after])
        done.add(id(t))
        out.append(t)

    for t in tasks:
        visit(t)
    return out


def spawn_backlog(ctx: Context, path: str | Path) -> list[Agent]:
    """Queue every task of a backlog file (validated whole first: nothing is created from
    an invalid file), in dependency order; then start what the limits allow."""
    p = Path(path)
    if not p.is_absolute():
        p = ctx.cwd / p
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MulluiError(f"no backlog file {p}: give the path of a tasks TOML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MulluiError(f"cannot read backlog file {p}: {e}") from e
    tasks = parse_backlog(text, p, ctx.profile_names())
    taken = taken_names(ctx)
    for t in tasks:
        if t.name in taken:
            raise ConfigError(
                f"{p.name} line {t.line_of('name')}: name {t.name!r} is taken by an existing "
                f"agent: rename the task or `mullui rm {t.name}` ({p})"
            )
    if any(t.base for t in tasks):
        repo = ctx.repo()
        for t in tasks:
            if t.base:
                try:
                    worktrees.resolve_ref(repo, t.base)
                except MulluiError as e:
                    raise ConfigError(
                        f"{p.name} line {t.line_of('base')}: base {t.base!r}: {e} ({p})"
                    ) from None
    ids: dict[str, str] = {}
    created: dict[int, Agent] = {}
    with admission(ctx), deferring(f"backlog {p.name}: being queued"):
        for t in _dependency_order(tasks):
            extra: dict[str, Any] = {"backlog": str(p)}
            if t.estimate_h is not None:
                extra["estimate_h"] = t.estimate_h
            try:
                a = lifecycle.spawn(
                    ctx,
                    t.task,
                    agent=t.agent,
                    name=t.name,
                    base=t.base,
                    after=ids[t.after] if t.after else None,
                    extra=extra,
                )
            except MulluiError:
                for c in created.values():  # all or nothing: nothing has started yet
                    records.forget(ctx, c.id)
                raise
            created[id(t)] = a
            if t.name:
                ids[t.name] = a.id
        tick(ctx)
    # In file order, so the printed ids line up with the file's tasks.
    return [ctx.store.get(created[id(t)].id) or created[id(t)] for t in tasks]
