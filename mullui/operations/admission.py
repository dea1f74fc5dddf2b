"""When may a queued agent start: the limits (``--after``, ``max_unreviewed``,
``max_running`` per host), the lock that makes "decide + start" one step across
processes, and the ``{prev.*}`` placeholders filled in right before a start.

:func:`plan` decides for every queued agent at once, oldest first, from records alone.
Spawning an agent asks :func:`wait_reason` under :func:`admission`; the queue's tick
(``mullui.queue``) acts on the whole plan.

Placeholders ``{prev.id}`` ``{prev.worktree}`` ``{prev.branch}`` ``{prev.last_message}``
are expanded right before an agent starts (not when it is queued: the predecessor has no
worktree or last message yet).  In a ``shell`` task a value that the shell would split or
interpret (a last message is agent output, i.e. untrusted text) is inserted as one
single-quoted word, so write ``cat {prev.worktree}/PLAN.md``, not ``"{prev.worktree}"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from mullui.agents import get_profile
from mullui.config import Config
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import CANNOT_START, RUNNING, STUCK_CAUSES, STUCK_PREFIX, Agent, D, F, Q, U, X
from mullui.placeholders import env_name, expand, shell_text

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


# ---- the decision (pure) ------------------------------------------------------------------
def _label(a: Agent) -> str:
    return f"{a.name} ({a.id})"


def predecessor_reason(a: Agent, by_id: dict[str, Agent]) -> str | None:
    """Why ``a`` must wait for its predecessor, or None when there is none or it is done."""
    if not a.after:
        return None
    prev = by_id.get(a.after)
    if prev is None:
        return f"{STUCK_PREFIX}{a.after} no longer exists: `mullui rm {a.id}` or spawn it again"
    if prev.state is D:
        return None
    if prev.state is F:
        return f"{STUCK_PREFIX}{prev.name} failed: {prev.cause}"
    if prev.state is X:
        return f"{STUCK_PREFIX}{prev.name} was stopped ({prev.cause})"
    return f"waiting for {_label(prev)} to be done"


def is_stuck(a: Agent) -> bool:
    """A queued agent that will not start by itself - its predecessor failed, was stopped
    or vanished, or its start fails - so the human should hear about it."""
    return a.state is Q and a.cause.startswith(STUCK_CAUSES)


def unreviewed(a: Agent) -> bool:
    """Done, and neither acked nor merged: work that waits for the human's review."""
    return a.state is D and not a.removed and a.needs_human()


def _slot_key(a: Agent) -> str | None:
    return a.host


def _slot_limit(cfg: Config, host: str | None) -> int:
    if host is not None and host in cfg.hosts and cfg.hosts[host].max_running:
        return int(cfg.hosts[host].max_running or 0)
    return cfg.limits.max_running


def _holds_slot(a: Agent) -> bool:
    if a.removed:
        return False
    # A remote agent whose host is unreachable is most likely still running there.
    return a.state in RUNNING or (a.host is not None and a.state is U)


def plan(agents: Sequence[Agent], cfg: Config) -> list[tuple[Agent, str | None]]:
    """For every queued agent, oldest first: ``None`` = start it now, else the cause it
    keeps waiting with.  Agents that start take their slot before younger ones are looked
    at, so the result never exceeds ``max_running`` (per host for remote agents)."""
    by_id = {a.id: a for a in agents}
    running: Counter[str | None] = Counter(_slot_key(a) for a in agents if _holds_slot(a))
    waiting_review = {a.id for a in agents if unreviewed(a)}
    out: list[tuple[Agent, str | None]] = []
    # A mirror of an agent queued on its host is the host's queue to start, not ours.
    queued = sorted(
        (a for a in agents if a.state is Q and not a.removed and "remote_seq" not in a.extra),
        key=lambda a: (a.created_at, a.id),
    )
    for a in queued:
        reason = predecessor_reason(a, by_id)
        cap = cfg.limits.max_unreviewed
        if reason is None and cap:
            # The predecessor's result is this agent's input, not a review it waits for;
            # counting it would deadlock every chain when max_unreviewed is 1.
            n = len(waiting_review - {a.after})
            if n >= cap:
                reason = f"waiting for review: {n} done agents unreviewed (max_unreviewed {cap})"
        if reason is None:
            key = _slot_key(a)
            limit = _slot_limit(cfg, key)
            if running[key] >= limit:
                where = f" on {key}" if key else ""
                reason = f"waiting for a free slot{where} (max_running {limit})"
            elif not a.cause.startswith(CANNOT_START):
                # One whose start keeps failing gets retried but takes no slot from others.
                running[key] += 1
        out.append((a, reason))
    return out


# ---- placeholders (pure) ------------------------------------------------------------------
#: ``{prev.*}`` and ``{task}`` in a queued agent's task (same rules as custom argv).
substitute = expand


def prev_values(prev: Agent, *, last_message: str | None = None) -> dict[str, str]:
    """The ``{prev.*}`` values of predecessor ``prev``."""
    raw = {
        "id": prev.id,
        "worktree": prev.worktree or "",
        "branch": prev.branch or "",
        "last_message": (prev.last_message if prev.last_message is not None else last_message)
        or "",
    }
    return {f"prev.{k}": v for k, v in raw.items()}


def expand_prev(task: str, values: dict[str, str], *, in_shell: bool) -> str:
    """``task`` with its ``{prev.*}`` filled in: the values themselves in a prompt, quoted
    variable references (``"$MULLUI_PREV_LAST_MESSAGE"``) in shell text - whatever the
    previous agent printed is data there, never code (see ``placeholders``)."""
    if in_shell:
        return shell_text(task, values, "the task")
    return substitute(task, values)


def last_log_line(path: Path, limit: int = 64 * 1024) -> str | None:
    """The last non-empty line of a pane log, escapes stripped: the last message of an
    agent that has no hooks to say it (a shell command's final output)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError:
        return None
    text = _ANSI.sub("", data.decode("utf-8", "replace"))
    for line in reversed(re.split(r"[\r\n]+", text)):
        line = "".join(c for c in line if c.isprintable()).strip()
        if line:
            return line
    return None


# ---- deciding and starting as one step ------------------------------------------------------
_held = threading.local()


@contextlib.contextmanager
def admission(ctx: Context) -> Iterator[None]:
    """Serialize "decide + start" across processes (the TUI's supervisor, ``mullui watch``,
    a ``mullui spawn``), so two of them never both take the last free slot.  Re-entrant
    within a thread (flock is per open file: a nested open would deadlock)."""
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    path = ctx.paths.state_dir / "queue.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
    finally:
        os.close(fd)


_deferred = threading.local()


@contextlib.contextmanager
def deferring(why: str) -> Iterator[None]:
    """While creating a chain or a backlog, every new agent stays queued (cause ``why``);
    the tick that follows starts them in order.  Nothing starts half-way through creating
    a batch, and a step that finishes at once cannot start its follow-up unexpanded."""
    _deferred.why = why
    try:
        yield
    finally:
        _deferred.why = None


def _prev_of(ctx: Context, a: Agent) -> dict[str, str] | None:
    """``a``'s ``{prev.*}`` values, or None when it follows no agent."""
    prev = ctx.store.get(a.after) if a.after else None
    if prev is None:
        return None
    fallback = None
    if prev.last_message is None:
        fallback = last_log_line(ctx.paths.log_file(prev.id))
    return prev_values(prev, last_message=fallback)


def prev_environment(ctx: Context, a: Agent) -> dict[str, str]:
    """``MULLUI_PREV_ID``, ``_WORKTREE``, ``_BRANCH``, ``_LAST_MESSAGE`` for a follow-up's
    process: how shell text reads them (empty when ``a`` follows no agent)."""
    values = _prev_of(ctx, a)
    return {env_name(k): v for k, v in (values or {}).items()}


def expand_for_start(ctx: Context, a: Agent) -> Agent:
    """Write the task with its ``{prev.*}`` placeholders filled in (an ``update`` event)."""
    if not a.after or "{prev." not in a.task:
        return a
    values = _prev_of(ctx, a)
    if values is None:
        return a
    try:
        shell = get_profile(a.profile, repo_config(ctx, a.repo).profiles).task_is_shell
    except MulluiError:
        shell = True  # it will not start anyway; never splice on a doubt
    task = expand_prev(a.task, values, in_shell=shell)
    if task == a.task:
        return a
    extra = dict(a.extra)
    extra.setdefault("task_template", a.task)
    return ctx.store.emit(a.id, "update", fields={"task": task, "extra": extra})


def config_for(ctx: Context, agents: Sequence[Agent]) -> Config:
    """The config the queue obeys.  ``mullui watch`` runs outside any repository (its cwd
    is $HOME), where ``ctx.config`` would miss the repository's ``.mullui.toml``: then the
    repository of the oldest queued agent decides."""
    if ctx.repo_or_none() is not None:
        return ctx.config
    for a in sorted(agents, key=lambda a: a.created_at):
        if a.state is Q and a.repo:
            return repo_config(ctx, a.repo)
    return ctx.config


def repo_config(ctx: Context, repo: str | None) -> Config:
    """The config of an agent's repository when this process runs outside one."""
    if ctx.repo_or_none() is not None or not repo or not Path(repo).is_dir():
        return ctx.config
    path = Path(repo)
    return ctx.config_source.for_repo(path, lambda: ctx.load_config(path))


def resume_reason(ctx: Context, agent: Agent) -> str | None:
    """Why a stopped or failed agent about to be resumed must wait queued (no free slot,
    ``max_unreviewed``), or None to start it now.  Decided as if it were queued already,
    so the plan's rules are the queue's own; call it under :func:`admission`."""
    import dataclasses

    agents = [a for a in ctx.store.all() if a.id != agent.id]
    agents.append(dataclasses.replace(agent, state=Q, cause="resume"))
    for a, reason in plan(agents, config_for(ctx, [*agents])):
        if a.id == agent.id:
            return reason
    return "queued"


def wait_reason(ctx: Context, agent: Agent) -> str | None:
    """Why a just-created agent must stay queued, or None to start it now.

    Called by a local spawn right after the queued record exists.  When the answer is
    None the placeholders are expanded here (the caller starts the agent next).
    """
    why: str | None = getattr(_deferred, "why", None)
    if why:
        return why
    agents = ctx.store.all()
    if not any(a.id == agent.id for a in agents):
        agents.append(agent)
    for a, reason in plan(agents, config_for(ctx, agents)):
        if a.id == agent.id:
            if reason is None:
                expand_for_start(ctx, agent)
            return reason
    return "queued"
