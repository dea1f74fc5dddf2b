"""Fold one event into an agent record.

Events are requests, not commands: a late hook (``PreToolUse`` after the user stopped the
agent) or a duplicate (Claude's ``Notification`` arriving ~6 s after ``PermissionRequest``)
must not move an agent into a state that would lie.  The reducer decides; the model
enforces the transition table.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from mullui.model import (
    NOTES_KEEP,
    Agent,
    Collision,
    ConflictItem,
    GuardHit,
    State,
    Transition,
    can_transition,
    parse_iso,
    transition,
    utcnow,
)

B, D, F, W, X, ST, Q, U = (
    State.BLOCKED,
    State.DONE,
    State.FAILED,
    State.WORKING,
    State.STOPPED,
    State.STARTING,
    State.QUEUED,
    State.UNKNOWN,
)

#: The cause of ``working`` when an agent CLI ran an edit the collision guard answered
#: ``ask`` without asking the human (OpenCode whose config says ``permission.edit: ask``,
#: so its plugin did not hold the edit, but whose session allows it: "Allow always";
#: mullui/agents/opencode.py); the human then gets the inbox item ``warn`` would give.
GUARD_UNASKED_CAUSE = "hook:guard.unasked"

MAX_TEXT = 4000  # question / message kept in the record (the full text stays in the spool)

# Fields an "update" event may set (runtime facts learned after creation).
UPDATABLE = {
    "branch",
    "worktree",
    "tmux_target",
    "tmux_session",
    "base",
    "repo",
    "session_id",
    "transcript_path",
    "host",
    "extra",
    "after",
    "task",
}


def _clip(s: Any) -> str | None:
    if s is None:
        return None
    text = str(s)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


# Events are JSON from many writers: a field of the wrong type is dropped, never stored
# (a string exit code in a record would break every reader of `ls --json`).
def _int(v: Any, default: int | None = None) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _num(v: Any, default: float | None = None) -> float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else default


def _plus(v: Any, base: Any, default: Any) -> Any:
    """``v`` + ``base`` (either may be None); ``default`` when ``v`` is None."""
    if v is None:
        return default
    return v + base if base is not None else v


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _move(a: Agent, new: State, cause: str, at: Any, **changes: Any) -> Agent:
    """Transition when legal; otherwise keep the record (a stale or duplicate event)."""
    if new is not a.state and not can_transition(a.state, new):
        return a
    return transition(a, new, cause, at, **changes)


def create_agent(ev: dict[str, Any]) -> Agent:
    rec = dict(ev.get("record") or {})
    at = parse_iso(ev.get("at")) or utcnow()
    rec.setdefault("created_at", ev.get("at"))
    rec.setdefault("state_since", ev.get("at"))
    a = Agent.from_record(rec)
    return dataclasses.replace(
        a, seq=1, history=(Transition(1, a.state, a.cause, at),), last_activity=at
    )


def apply_event(a: Agent | None, ev: dict[str, Any]) -> Agent | None:
    """Return the record after ``ev``. ``a`` is None before the ``created`` event."""
    kind = ev.get("kind")
    if kind == "created":
        return create_agent(ev) if a is None else a
    if a is None:
        return None
    at = parse_iso(ev.get("at")) or utcnow()
    cause = str(ev.get("cause") or kind)

    if kind == "state":
        try:
            new = State(ev["state"])
        except (KeyError, ValueError):
            return a
        if a.state is X and new is not F:
            return a  # stopped by the user: late hooks don't revive it
        if a.state is Q and new in (W, B, D):
            return a  # hooks can't start a queued agent
        changes: dict[str, Any] = {"last_activity": at}
        if new is B:
            changes["question"] = _clip(ev.get("question")) or a.question
        elif new is D:
            if ev.get("message") is not None:
                changes["last_message"] = _clip(ev.get("message"))
            changes["question"] = None
        elif new is W:
            changes["question"] = None
            if a.state is D:
                changes["exit_code"] = None
        if "exit_code" in ev:
            changes["exit_code"] = _int(ev["exit_code"])
        if new is W and a.state is B and a.cause.startswith("collision:"):
            if cause == GUARD_UNASKED_CAUSE:
                # The CLI ran the edit the guard's ``ask`` held without asking anybody
                # (OpenCode's session allowing what its config asks): the human is told as
                # for ``warn``, one item per new pair and file.
                changes.update(_unasked_item(a, a.cause.removeprefix("collision:"), at))
        if new is B and a.state is B and a.cause.startswith("collision:"):
            # The confirmation the collision guard asked for (``ask``) opens right after
            # it (Claude's PermissionRequest, Gemini's ToolPermission notification,
            # OpenCode's permission.asked): the same block, and the guard's cause says why.
            # A ``reply:`` cause is not that dialog but the human's answer to it (``n``
            # closed it): the agent now waits at its prompt, and must say so.
            if not cause.startswith("reply:"):
                return dataclasses.replace(a, last_activity=at)
        if new is B and a.state is B and changes.get("question") == a.question:
            # The same question again (Claude's late Notification): keep the earlier,
            # more precise cause.
            return dataclasses.replace(a, last_activity=at)
        return _move(a, new, cause, at, **changes)

    if kind == "exit":
        code = ev.get("exit_code")
        code = (
            int(code)
            if isinstance(code, int) or (isinstance(code, str) and code.isdigit())
            else None
        )
        if a.state in (X, Q):
            return dataclasses.replace(a, exit_code=code)
        if a.state is F:
            return dataclasses.replace(a, exit_code=code if code is not None else a.exit_code)
        if code == 0:
            if a.state is D:
                return dataclasses.replace(a, exit_code=0, cause=f"{a.cause}; exit:0")
            return _move(a, D, cause if cause != "exit" else "exit:0", at, exit_code=0)
        label = cause if cause != "exit" else (f"exit:{code}" if code is not None else "exit:?")
        return _move(a, F, label, at, exit_code=code)

    if kind == "activity":
        if a.state is B and a.cause.startswith("silence"):
            return _move(a, W, cause, at, last_activity=at, question=None)
        if a.state is F and a.cause == "stalled":
            return _move(a, W, cause, at, last_activity=at)
        return dataclasses.replace(a, last_activity=at)

    if kind == "silence":
        # Heuristic (no hooks): quiet output may mean the agent waits for input.
        if a.state is W and not a.hooks:
            secs = ev.get("seconds")
            return _move(
                a,
                B,
                f"silence:{secs}s" if secs else "silence",
                at,
                question=_clip(ev.get("question")) or "no output (waiting for input?)",
            )
        return a

    if kind == "stall":
        if a.state in (W, ST, B) and a.cause != "stalled":
            return _move(a, F, "stalled", at)
        return a

    if kind == "stop":
        return _move(a, X, cause if cause != "stop" else "stopped by user", at)

    if kind == "fail":
        return _move(a, F, cause, at)

    if kind == "start":  # queued -> starting
        return _move(a, ST, cause, at)

    if kind == "resume":  # failed | stopped -> starting (or queued: no free slot)
        if a.state not in (F, X) or a.removed:
            return a
        new = Q if ev.get("state") == "queued" else ST
        return _move(
            a, new, cause, at, exit_code=None, question=None, tmux_target=None, last_activity=at
        )

    if kind == "unknown":
        if a.state in (X, F, U):
            return a
        return _move(a, U, f"{cause} (was {a.state.value} since {a.state_since.isoformat()})", at)

    if kind == "reachable":
        if a.state is not U:
            return a
        prev = a.history[-2].state if len(a.history) > 1 else W
        try:
            back = State(ev["state"]) if ev.get("state") else prev
        except ValueError:
            back = prev
        return _move(a, back, cause, at)

    if kind == "meta":
        ch = {k: ev[k] for k in ("session_id", "transcript_path") if isinstance(ev.get(k), str)}
        return dataclasses.replace(a, **ch) if ch else a

    if kind == "usage":
        # Totals of the current conversation, plus those of the runs before it when a
        # resume started a new one (``--fresh``: ``extra["usage_base"]``).
        base = _dict(a.extra.get("usage_base"))
        return dataclasses.replace(
            a,
            tokens_in=_plus(_int(ev.get("tokens_in")), _int(base.get("tokens_in")), a.tokens_in),
            tokens_out=_plus(
                _int(ev.get("tokens_out")), _int(base.get("tokens_out")), a.tokens_out
            ),
            cost_usd=_plus(_num(ev.get("cost_usd")), _num(base.get("cost_usd")), a.cost_usd),
        )

    if kind == "snooze":
        until = parse_iso(ev.get("until"))
        if ev.get("until_change"):
            return dataclasses.replace(a, snooze_until_change=True, snoozed_until=None)
        return dataclasses.replace(a, snoozed_until=until, snooze_until_change=False)

    if kind == "wake":
        return dataclasses.replace(a, snoozed_until=None, snooze_until_change=False)

    if kind == "ack":
        return dataclasses.replace(a, acked_seq=a.seq, conflict=None)

    # A removal ends the operation that brought an agent back from the history (and so
    # does a merge of one already removed): it may be folded again at once.
    if kind == "merged":
        return dataclasses.replace(
            a,
            merged_into=ev.get("into"),
            merged_sha=ev.get("sha"),
            acked_seq=a.seq,
            revived_at=None if a.removed else a.revived_at,
        )

    if kind == "removed":
        return dataclasses.replace(a, removed=True, tmux_target=None, revived_at=None)

    if kind == "revived":  # back from the history (mullui.ledger.revive)
        return dataclasses.replace(a, revived_at=at)

    if kind == "guard":
        return _guard(a, ev, at)

    if kind == "note":  # something the user should know about the agent's start
        text = _clip(ev.get("text")) if isinstance(ev.get("text"), str) else None
        if not text or text in a.notes:
            return a
        return dataclasses.replace(a, notes=(*a.notes, text)[-NOTES_KEEP:])

    if kind == "collisions":
        cols = tuple(
            Collision(str(c["agent"]), tuple(c.get("files") or ()), bool(c.get("conflict")))
            for c in _list(ev.get("collisions"))
            if isinstance(c, dict) and "agent" in c
        )
        item = a.conflict
        conflicting = {c.agent: c for c in cols if c.conflict}
        if item is not None and item.kind == "conflict" and item.agent not in conflicting:
            item = None  # the conflict is gone (resolved, merged, removed): so is its item
        raised = ev.get("conflict")
        if isinstance(raised, dict) and (item is None or item.kind != "conflict"):
            other = str(raised.get("agent"))
            # Only a conflict the record did not know yet: a second process refreshing
            # from the same stale view must not raise the same item again.
            known = any(c.agent == other and c.conflict for c in a.collisions)
            if other in conflicting and not known:
                item = ConflictItem(
                    other,
                    str(raised.get("name") or other),
                    tuple(str(f) for f in raised.get("files") or conflicting[other].files),
                    at,
                )
        return dataclasses.replace(a, collisions=cols, conflict=item)

    if kind == "mirror":
        # A remote agent's record, as its own host's mullui applied it (remote hosts).
        rec = dict(_dict(ev.get("record")))
        rec["id"] = a.id
        rec["host"] = a.host
        try:
            b = Agent.from_record({**a.to_record(), **rec})
        except (KeyError, ValueError, TypeError, AttributeError):
            return a
        return b if b.history_whole() else a  # a torn or foreign record: keep ours

    if kind == "update":
        fields = ev.get("fields")
        ch = {
            k: v
            for k, v in _dict(fields).items()
            if k in UPDATABLE
            and (isinstance(v, dict) if k == "extra" else v is None or isinstance(v, str))
        }
        return dataclasses.replace(a, **ch) if ch else a

    print(f"mullui: ignoring unknown event kind {kind!r} for agent {a.id}", file=sys.stderr)
    return a


def _unasked_item(a: Agent, path: str, at: Any) -> dict[str, Any]:
    """The inbox item for an ``ask`` that ran unasked (see :data:`GUARD_UNASKED_CAUSE`):
    the agent it was about, from the guard's hit for ``path``."""
    hit = next((g for g in reversed(a.guarded) if g.file == path and g.action == "ask"), None)
    if hit is None or not (a.conflict is None or a.conflict.kind == "guard"):
        return {}
    if a.conflict is not None and (a.conflict.agent, a.conflict.files) == (hit.agent, (path,)):
        return {}  # told already
    return {"conflict": ConflictItem(hit.agent, hit.name, (path,), at, kind="guard")}


def _guard(a: Agent, ev: dict[str, Any], at: Any) -> Agent:
    """The collision guard acted on an edit (``mullui.guard``): remember it once per other
    agent, file and action; ``warn`` raises an inbox item once per new pair and file."""
    other, path, action = ev.get("other"), ev.get("file"), ev.get("action")
    if not (isinstance(other, str) and isinstance(path, str) and isinstance(action, str)):
        return a
    if action not in ("warn", "ask", "block"):
        return a
    if any(g.agent == other and g.file == path and g.action == action for g in a.guarded):
        return dataclasses.replace(a, last_activity=at)
    name = str(ev.get("other_name") or other)
    hit = GuardHit(other, name, str(ev.get("other_branch") or ""), path, action, at)
    guarded = (*a.guarded, hit)[-200:]
    item = a.conflict
    new_pair = not any(g.agent == other and g.file == path for g in a.guarded)
    if action == "warn" and new_pair and (item is None or item.kind == "guard"):
        item = ConflictItem(other, name, (path,), at, kind="guard")
    return dataclasses.replace(a, guarded=guarded, conflict=item, last_activity=at)
