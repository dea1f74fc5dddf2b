"""Queued agents: ``--after``, chains, backlogs, and the limits that hold agents back.

A queued agent starts when three things hold: its predecessor (``after``) is ``done``, the
review bottleneck allows it (``max_unreviewed``), and a slot is free (``max_running``,
per host for remote agents).  :func:`plan` decides that for every queued agent at once,
oldest first, from records alone; :func:`tick` (called by the supervisor after every change)
acts on the plan.  Everything lives in the agents' records and spools, so a queue survives
a restart of mullui and of tmux: the next tick picks up where the last one stopped.

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
import secrets
import sys
import threading
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mullui.config import Config
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent, State
from mullui.placeholders import env_name, expand, shell_text

if TYPE_CHECKING:
    from mullui.workspace import Workspace

Q, ST, W, B, D, F, X, U = (
    State.QUEUED,
    State.STARTING,
    State.WORKING,
    State.BLOCKED,
    State.DONE,
    State.FAILED,
    State.STOPPED,
    State.UNKNOWN,
)
#: States that hold a slot.  ``done`` does not: an idle agent at its prompt costs nothing.
RUNNING = frozenset({ST, W, B})
#: Prefix of the cause of a follow-up whose predecessor will never be done by itself.
STUCK_PREFIX = "predecessor "
#: Prefix of the cause of a queued agent whose start failed before it launched.
CANNOT_START = "cannot start: "
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
    return a.state is Q and a.cause.startswith((STUCK_PREFIX, CANNOT_START))


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


# ---- acting on the plan ---------------------------------------------------------------------
_held = threading.local()


@contextlib.contextmanager
def admission(ws: Workspace) -> Iterator[None]:
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
    path = ws.paths.state_dir / "queue.lock"
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
def _deferring(why: str) -> Iterator[None]:
    """While creating a chain or a backlog, every new agent stays queued (cause ``why``);
    the tick that follows starts them in order.  Nothing starts half-way through creating
    a batch, and a step that finishes at once cannot start its follow-up unexpanded."""
    _deferred.why = why
    try:
        yield
    finally:
        _deferred.why = None


def _prev_of(ws: Workspace, a: Agent) -> dict[str, str] | None:
    """``a``'s ``{prev.*}`` values, or None when it follows no agent."""
    prev = ws.store.get(a.after) if a.after else None
    if prev is None:
        return None
    fallback = None
    if prev.last_message is None:
        fallback = last_log_line(ws.paths.log_file(prev.id))
    return prev_values(prev, last_message=fallback)


def prev_environment(ws: Workspace, a: Agent) -> dict[str, str]:
    """``MULLUI_PREV_ID``, ``_WORKTREE``, ``_BRANCH``, ``_LAST_MESSAGE`` for a follow-up's
    process: how shell text reads them (empty when ``a`` follows no agent)."""
    values = _prev_of(ws, a)
    return {env_name(k): v for k, v in (values or {}).items()}


def _expand_for_start(ws: Workspace, a: Agent) -> Agent:
    """Write the task with its ``{prev.*}`` placeholders filled in (an ``update`` event)."""
    if not a.after or "{prev." not in a.task:
        return a
    values = _prev_of(ws, a)
    if values is None:
        return a
    from mullui.agents import get_profile

    try:
        shell = get_profile(a.profile, _repo_config(ws, a.repo).profiles).task_is_shell
    except MulluiError:
        shell = True  # it will not start anyway; never splice on a doubt
    task = expand_prev(a.task, values, in_shell=shell)
    if task == a.task:
        return a
    extra = dict(a.extra)
    extra.setdefault("task_template", a.task)
    return ws.store.emit(a.id, "update", fields={"task": task, "extra": extra})


def _config(ws: Workspace, agents: Sequence[Agent]) -> Config:
    """The config the queue obeys.  ``mullui watch`` runs outside any repository (its cwd
    is $HOME), where ``ws.config`` would miss the repository's ``.mullui.toml``: then the
    repository of the oldest queued agent decides."""
    if ws.repo_or_none() is not None:
        return ws.config
    for a in sorted(agents, key=lambda a: a.created_at):
        if a.state is Q and a.repo:
            return _repo_config(ws, a.repo)
    return ws.config


def _repo_config(ws: Workspace, repo: str | None) -> Config:
    if ws.repo_or_none() is not None or not repo or not Path(repo).is_dir():
        return ws.config
    return ws.load_config(Path(repo))


def wait_reason(ws: Workspace, agent: Agent) -> str | None:
    """Why a just-created agent must stay queued, or None to start it now.

    Called by ``Workspace.spawn`` right after the queued record exists.  When the answer is
    None the placeholders are expanded here (the caller starts the agent next).
    """
    why: str | None = getattr(_deferred, "why", None)
    if why:
        return why
    agents = ws.store.all()
    if not any(a.id == agent.id for a in agents):
        agents.append(agent)
    for a, reason in plan(agents, _config(ws, agents)):
        if a.id == agent.id:
            if reason is None:
                _expand_for_start(ws, agent)
            return reason
    return "queued"


def _start(ws: Workspace, a: Agent) -> Agent | None:
    a = _expand_for_start(ws, a)
    if a.host is not None:
        from mullui.remote import dispatch

        try:
            return dispatch.start(ws, a.id)
        except MulluiError as e:
            msg = f"{CANNOT_START}{e}"
            if a.cause != msg:
                ws.store.emit(a.id, "state", state="queued", cause=msg)
            return None
    return ws.start(a.id)


def _not_started(ws: Workspace, a: Agent, why: str) -> None:
    """A start that failed.  Failures inside the launch already marked the agent failed;
    one before it (its profile gone from the config, no tmux) leaves it queued, and then
    its cause says so - once, not on every tick - and the next tick tries again."""
    now = ws.store.get(a.id)
    if now is None or now.state is not Q:
        return
    cause = f"{CANNOT_START}{why}"
    if now.cause != cause:
        print(f"mullui: could not start {a.name}: {why}", file=sys.stderr)
        ws.store.emit(a.id, "state", state="queued", cause=cause)


def tick(ws: Workspace) -> list[Agent]:
    """Start the queued agents that may start now (oldest first) and refresh the cause of
    those that keep waiting (an event only when the cause changed).  Returns the agents
    started.  A start that fails marks that agent failed (``Workspace.start`` records the
    cause); the tick goes on with the others."""
    started: list[Agent] = []
    with admission(ws):
        agents = ws.store.all()
        decisions = plan(agents, _config(ws, agents))
        for a, reason in decisions:
            if reason is not None:
                if a.cause != reason:
                    ws.store.emit(a.id, "state", state="queued", cause=reason)
                continue
            try:
                s = _start(ws, a)
            except MulluiError as e:
                _not_started(ws, a, str(e))
                continue
            except Exception as e:  # a runtime bug must not kill the supervisor's loop
                _not_started(ws, a, f"{type(e).__name__}: {e}")
                continue
            if s is not None:
                started.append(s)
    return started


# ---- budgets --------------------------------------------------------------------------------
def over_budget(a: Agent, limit: float) -> bool:
    """True when ``a`` spent more than ``limit`` dollars (0 = no limit)."""
    return bool(limit) and a.cost_usd is not None and a.cost_usd > limit


def enforce_budget(ws: Workspace, agent: Agent) -> Agent | None:
    """Stop an agent that spent more than ``max_cost_usd``; returns it (now failed) or None.

    The agent becomes ``failed`` with cause ``over budget: $12.34 > $10.00`` - failed, not
    stopped, because stopped is the user's own act and never in the inbox, while an agent
    stopped for its spending needs the human.  The ``fail`` event is written before the
    pane is stopped so the process's exit (``exit:130``) cannot overtake it.  A ``done``
    agent is stopped too: its idle session is one message away from spending again.
    """
    a = ws.store.get(agent.id) or agent
    limit = _repo_config(ws, a.repo).limits.max_cost_usd
    if not over_budget(a, limit) or a.state not in (ST, W, B, D):
        return None
    cause = f"over budget: ${a.cost_usd:.2f} > ${limit:.2f}"
    a = ws.store.emit(a.id, "fail", cause=cause)
    if a.host is not None:
        with contextlib.suppress(MulluiError):
            from mullui.remote import dispatch

            dispatch.stop(ws, a)
        return a
    if a.tmux_target:
        with contextlib.suppress(MulluiError):
            ws.tmux.stop(a.tmux_target)
    if a.repo and a.worktree and Path(a.worktree).exists():
        from mullui.runtime import worktrees

        with contextlib.suppress(MulluiError):
            worktrees.unlock(Path(a.repo), Path(a.worktree))
    return ws.store.get(a.id) or a


# ---- chains ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainRun:
    """One run of a chain, for showing it as one unit: its steps and where it stands."""

    run: str
    chain_name: str
    steps: tuple[Agent, ...]  # ordered by step
    total: int  # steps the chain has (a step may have been removed)

    @property
    def current(self) -> Agent | None:
        """The step that decides the run's state: the first one not done."""
        for s in self.steps:
            if s.state is not D:
                return s
        return self.steps[-1] if self.steps else None

    @property
    def state(self) -> str:
        cur = self.current
        if cur is None:
            return "empty"
        if all(s.state is D for s in self.steps) and len(self.steps) == self.total:
            return "done"
        return cur.state.value

    def summary(self) -> str:
        """``step 2/3 plan-critique-2: working`` and the like."""
        cur = self.current
        if cur is None:
            return f"{self.chain_name}: no steps"
        if self.state == "done":
            return f"{self.chain_name}: all {self.total} steps done"
        return (
            f"{self.chain_name}: step {cur.chain_step or '?'}/{self.total} {cur.name}: "
            f"{cur.state.value} ({cur.why()})"
        )


def chain_runs(agents: Sequence[Agent]) -> list[ChainRun]:
    """Every chain run among ``agents``, oldest first."""
    runs: dict[str, list[Agent]] = {}
    for a in agents:
        if a.chain:
            runs.setdefault(a.chain, []).append(a)
    out = []
    for run, steps in runs.items():
        steps.sort(key=lambda a: (a.chain_step or 0, a.created_at))
        total = max([int(s.extra.get("chain_steps", 0) or 0) for s in steps] + [len(steps)])
        out.append(ChainRun(run, steps[0].chain_name or run, tuple(steps), total))
    return sorted(out, key=lambda r: (r.steps[0].created_at, r.run))


def _free_names(ws: Workspace, stem: str, count: int) -> str:
    """A name stem for which ``stem-1 .. stem-count`` are all free."""
    taken = {a.name for a in ws.store.all() if not a.removed}
    candidate, n = stem, 2
    while any(f"{candidate}-{i}" in taken for i in range(1, count + 1)):
        candidate = f"{stem}-{n}"
        n += 1
    return candidate


def spawn_chain(
    ws: Workspace,
    chain_name: str,
    task: str,
    *,
    name: str | None,
    base: str | None,
    host: str | None,
) -> Agent:
    """Create every step of ``[chains.NAME]`` as queued agents linked by ``after``; the
    first starts at once when the limits allow.  Returns the first step."""
    from mullui.agents import get_profile
    from mullui.workspace import slugify

    cfg = ws.config
    steps = cfg.chains.get(chain_name)
    if not steps:
        known = ", ".join(sorted(cfg.chains)) or "none configured"
        raise MulluiError(
            f"no chain {chain_name!r} (known: {known}): add [chains.{chain_name}] steps "
            "to config.toml or .mullui.toml"
        )
    for s in steps:  # fail before creating anything
        get_profile(s.agent or cfg.default_agent, cfg.profiles)
    stem = _free_names(ws, name or slugify(task), len(steps))
    run = f"{slugify(chain_name, 16)}-{secrets.token_hex(3)}"
    created: list[Agent] = []
    # The admission lock keeps a running supervisor's tick from starting step 1 while
    # the later steps do not exist yet; the tick below (re-entrant) starts it.
    with admission(ws), _deferring(f"chain {chain_name}: being created"):
        prev: Agent | None = None
        for i, s in enumerate(steps, 1):
            extra: dict[str, Any] = {
                "chain": run,
                "chain_name": chain_name,
                "chain_step": i,
                "chain_steps": len(steps),
                "chain_task": task,
            }
            step_name = f"{stem}-{i}" if not s.name else f"{stem}-{i}-{slugify(s.name, 16)}"
            try:
                a = ws.spawn(
                    substitute(s.task, {"task": task}),
                    agent=s.agent or None,
                    name=step_name,
                    base=base if prev is None else None,
                    after=prev.id if prev else None,
                    host=host,
                    extra=extra,
                )
            except MulluiError:
                for c in created:  # no half chain: the steps made so far go away
                    ws._forget(c.id)
                raise
            created.append(a)
            prev = a
        tick(ws)
    return ws.store.get(created[0].id) or created[0]


# ---- backlogs -------------------------------------------------------------------------------
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


def spawn_backlog(ws: Workspace, path: str | Path) -> list[Agent]:
    """Queue every task of a backlog file (validated whole first: nothing is created from
    an invalid file), in dependency order; then start what the limits allow."""
    p = Path(path)
    if not p.is_absolute():
        p = ws.cwd / p
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MulluiError(f"no backlog file {p}: give the path of a tasks TOML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MulluiError(f"cannot read backlog file {p}: {e}") from e
    tasks = parse_backlog(text, p, ws.profile_names())
    taken = {a.name for a in ws.store.all() if not a.removed}
    for t in tasks:
        if t.name in taken:
            raise ConfigError(
                f"{p.name} line {t.line_of('name')}: name {t.name!r} is taken by an existing "
                f"agent: rename the task or `mullui rm {t.name}` ({p})"
            )
    if any(t.base for t in tasks):
        from mullui.runtime import worktrees

        repo = ws.repo()
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
    with admission(ws), _deferring(f"backlog {p.name}: being queued"):
        for t in _dependency_order(tasks):
            extra: dict[str, Any] = {"backlog": str(p)}
            if t.estimate_h is not None:
                extra["estimate_h"] = t.estimate_h
            try:
                a = ws.spawn(
                    t.task,
                    agent=t.agent,
                    name=t.name,
                    base=t.base,
                    after=ids[t.after] if t.after else None,
                    extra=extra,
                )
            except MulluiError:
                for c in created.values():  # all or nothing: nothing has started yet
                    ws._forget(c.id)
                raise
            created[id(t)] = a
            if t.name:
                ids[t.name] = a.id
        tick(ws)
    # In file order, so the printed ids line up with the file's tasks.
    return [ws.store.get(created[id(t)].id) or created[id(t)] for t in tasks]
