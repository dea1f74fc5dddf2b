"""The agent record, its states, the transitions allowed, and the reducer.

Everything that ever happens to an agent is an event in its append-only spool
(``events.py``); the record is the fold of those events through :func:`apply_event`.
That makes the record a cache: a torn record file is rebuilt by replaying the spool.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mullui.errors import IllegalTransition


class State(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    WORKING = "working"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    UNKNOWN = "unknown"


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

# The groupings of states, one name each (every module uses these, not its own tuple).
#: States whose process is at work: each holds a ``max_running`` slot, ``rm`` refuses
#: them without ``--force``, tmux is asked whether their window still exists.  (``done``
#: is not one: an idle agent at its prompt costs nothing.)
RUNNING: frozenset[State] = frozenset({ST, W, B})
#: States in which an agent (or its host) is expected to be alive.
LIVE: frozenset[State] = frozenset({Q, ST, W, B, D})
#: States that put an agent in the inbox, and the ones a notification is sent for.
INBOX_STATES: frozenset[State] = frozenset({B, D, F})
#: States after which nothing happens unless the human acts (the ledger's end of a run;
#: only an agent in one is folded into the history).
SETTLED: frozenset[State] = frozenset({D, F, X})
#: Inbox order: blocked before failed before done (a queued agent that cannot start by
#: itself - its predecessor failed - ranks with the failures).
INBOX_RANK: dict[State, int] = {B: 0, F: 1, Q: 1, D: 2}
#: Prefix of the cause of a follow-up whose predecessor will never be done by itself.
STUCK_PREFIX = "predecessor "
#: Prefix of the cause of a queued agent whose start failed before it launched.
CANNOT_START = "cannot start: "
#: Causes of a queued agent that waits for the human, not for time (operations.admission).
STUCK_CAUSES = (STUCK_PREFIX, CANNOT_START)
#: Causes of a failure that was no fault of the agent's work: its tmux server or window
#: went away (a reboot, ``tmux kill-server``), the mullui starting it died, or its CLI
#: was killed by a signal (exit 128+N).  Such an agent is *interrupted*: ``resume --all``
#: (and ``[limits] auto_resume``) start it again.
INTERRUPTED_CAUSES = ("tmux:server-gone", "tmux:window-gone", "spawn interrupted")
#: Prefix of the cause of an agent the budget stopped (``max_cost_usd``).
OVER_BUDGET = "over budget: "
#: Causes of the start of a resumed agent (its history says why it runs again).
RESUME_MANUAL = "resume:manual"
RESUME_AFTER_RESTART = "resume:after-restart"

# The contract (SPEC): queued -> starting -> working <-> blocked; working <-> done;
# any -> failed | stopped; any live state <-> unknown.  Three additions, each because
# the alternative would be a lie: starting -> done/blocked (a command can finish or ask
# before the runtime's own "working" lands), blocked -> done (a turn can end on a denied
# permission, or the process exits 0 while asking), failed -> working (a stalled agent
# that shows life again is working, not failed).  Resume (SPEC): failed | stopped ->
# starting, or -> queued when ``max_running`` has no free slot (``resume --all``).
ALLOWED: dict[State, frozenset[State]] = {
    Q: frozenset({ST, F, X, U}),
    ST: frozenset({W, B, D, F, X, U}),
    W: frozenset({B, D, F, X, U}),
    B: frozenset({W, D, F, X, U}),
    D: frozenset({W, F, X, U}),
    F: frozenset({W, X, ST, Q}),
    X: frozenset({F, ST, Q}),
    U: frozenset({Q, ST, W, B, D, F, X}),
}


#: State changes a record keeps (its ``history`` is the last ones; ``seq`` counts them
#: all).  Each event's fold rewrites the record, so its size must not grow with the
#: agent's age; the whole history stays in the agent's append-only spool
#: (``Store.full_history`` replays it for the report and the ledger).
HISTORY_KEEP = 32


#: Notes a record keeps (``Agent.notes``), each at most ``NOTE_MAX`` characters.
NOTES_KEEP = 20
NOTE_MAX = 4000


def can_transition(old: State, new: State) -> bool:
    """True when ``old -> new`` is a legal state change (same state is no change)."""
    return new in ALLOWED[old]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, or None."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(s: str | None) -> datetime | None:
    if not s or not isinstance(s, str):  # events are JSON: any type may arrive
        return None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Transition:
    """One recorded state change: the ledger and the notifier are built on these."""

    seq: int
    state: State
    cause: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "state": self.state.value, "cause": self.cause, "at": iso(self.at)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Transition:
        return cls(
            int(d["seq"]), State(d["state"]), str(d["cause"]), parse_iso(d["at"]) or utcnow()
        )


@dataclass(frozen=True)
class Collision:
    """Another agent whose unmerged change set shares files with this one's."""

    agent: str  # the other agent's id
    files: tuple[str, ...]  # files both changed
    conflict: bool  # merging both would conflict (False: same files, different hunks)
    # The files that would conflict, as the collision engine found them; not recorded
    # (a record's collisions say which files are shared and whether they conflict).
    conflict_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The shape ``ls --json`` and ``collisions --json`` print."""
        return {"agent": self.agent, "files": list(self.files), "conflict": self.conflict}


@dataclass(frozen=True)
class ConflictItem:
    """An inbox item about another agent's work: ``kind`` "conflict", this agent's work now
    conflicts with it (collision radar; held by the newer agent of the pair only, so one
    conflict is one item); ``kind`` "guard", this agent edited a file the other has changed
    too (the collision guard's ``warn``: one item per new pair and file)."""

    agent: str  # the other agent's id
    name: str  # the other agent's name when the conflict appeared
    files: tuple[str, ...]
    since: datetime
    kind: str = "conflict"  # "conflict" | "guard"

    def to_json(self) -> dict[str, Any]:
        d = {
            "agent": self.agent,
            "name": self.name,
            "files": list(self.files),
            "since": iso(self.since),
        }
        if self.kind != "conflict":
            d["kind"] = self.kind
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ConflictItem:
        files = tuple(str(f) for f in d.get("files") or ())
        since = parse_iso(d.get("since")) or utcnow()
        kind = "guard" if d.get("kind") == "guard" else "conflict"
        return cls(str(d["agent"]), str(d.get("name") or d["agent"]), files, since, kind)


@dataclass(frozen=True)
class GuardHit:
    """A collision the guard acted on: this agent was about to edit ``file``, which
    ``agent`` (name, branch) had changed; ``action`` is the mode it answered with."""

    agent: str
    name: str
    branch: str
    file: str
    action: str  # warn | ask | block
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "name": self.name,
            "branch": self.branch,
            "file": self.file,
            "action": self.action,
            "at": iso(self.at),
        }

    def brief(self) -> dict[str, Any]:
        """``file``, ``action``, ``at``: what ``ls --json`` says under a collision."""
        return {"file": self.file, "action": self.action, "at": iso(self.at)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GuardHit:
        return cls(
            str(d["agent"]),
            str(d.get("name") or d["agent"]),
            str(d.get("branch") or ""),
            str(d.get("file") or ""),
            str(d.get("action") or ""),
            parse_iso(d.get("at")) or utcnow(),
        )


@dataclass(frozen=True)
class Agent:
    """One agent: its identity, where it runs, its state, and what it cost."""

    id: str
    name: str
    profile: str
    task: str
    state: State = Q
    cause: str = "created"
    branch: str | None = None
    worktree: str | None = None
    tmux_target: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    state_since: datetime = field(default_factory=utcnow)
    exit_code: int | None = None
    snoozed_until: datetime | None = None
    snooze_until_change: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    collisions: tuple[Collision, ...] = ()
    host: str | None = None
    # -- beyond the SPEC's ls fields --
    repo: str | None = None
    base: str | None = None
    tmux_session: str | None = None
    question: str | None = None  # what a blocked agent asks (tool call, prompt)
    last_message: str | None = None  # the agent's last words when it finished its turn
    session_id: str | None = None  # the agent CLI's own conversation id (resume)
    transcript_path: str | None = None
    hooks: bool = False  # the profile reports status through hooks
    after: str | None = None  # predecessor agent id (--after, chains)
    chain: str | None = None  # chain run id
    chain_name: str | None = None
    chain_step: int | None = None
    estimate_h: float | None = None
    acked_seq: int | None = None
    seq: int = 0  # number of state changes so far
    history: tuple[Transition, ...] = ()  # the last HISTORY_KEEP of them
    last_activity: datetime | None = None
    merged_into: str | None = None
    merged_sha: str | None = None
    removed: bool = False
    revived_at: datetime | None = None  # brought back from the history (mullui.ledger)
    conflict: ConflictItem | None = None  # a new conflict with another agent, until acked
    guarded: tuple[GuardHit, ...] = ()  # collisions the guard acted on (mullui.guard)
    extra: dict[str, Any] = field(default_factory=dict)  # spawn options for queued agents
    # What the user should know about how it started (its base is a commit, uncommitted
    # files it will not see, submodules left empty): kept on the agent, so the notes of
    # one that the supervisor starts later from the queue are not told to nobody.
    notes: tuple[str, ...] = ()

    # ---- derived -------------------------------------------------------------------
    def is_snoozed(self, now: datetime | None = None) -> bool:
        if self.snooze_until_change:
            return True
        if self.snoozed_until is None:
            return False
        return (now or utcnow()) < self.snoozed_until

    def is_interrupted(self) -> bool:
        """Failed by an interruption (a dead tmux server or window, a reboot, a killed
        CLI), not by its own work; still there to be resumed."""
        if self.state is not F or self.removed:
            return False
        if self.cause.startswith(INTERRUPTED_CAUSES):
            return True
        return self.cause.startswith("exit:") and (self.exit_code or 0) > 128

    def has_open_work(self) -> bool:
        """A local agent with a branch whose work is neither merged nor removed: what the
        collision radar compares (it also checks that the repository is still there)."""
        return (
            self.host is None
            and bool(self.branch and self.repo and self.base)
            and not self.removed
            and self.merged_into is None
        )

    def is_over_budget(self) -> bool:
        """Stopped by its budget (``max_cost_usd``): paused until the human raises it."""
        return self.state is F and self.cause.startswith(OVER_BUDGET) and not self.removed

    def history_whole(self) -> bool:
        """True when ``history`` is what the record should keep: consecutive state changes
        ending at ``seq``, as many as :data:`HISTORY_KEEP` allows (a torn or foreign
        record is not)."""
        n = len(self.history)
        first = self.seq - n + 1
        return n == min(self.seq, HISTORY_KEEP) and all(
            t.seq == first + i for i, t in enumerate(self.history)
        )

    def is_acked(self) -> bool:
        return self.acked_seq is not None and self.acked_seq == self.seq

    def needs_human(self) -> bool:
        """In the inbox (before snoozing): blocked, done or failed, not yet handled; or
        queued behind a predecessor that will never be done; or its work newly conflicts
        with another agent's."""
        if self.has_conflict_item():
            return True
        if self.is_acked():
            return False
        if self.state is Q:
            return self.cause.startswith(STUCK_CAUSES)
        if self.state not in INBOX_STATES:
            return False
        return not (self.state is D and self.merged_into is not None)

    def has_conflict_item(self) -> bool:
        return self.conflict is not None and not self.removed and self.merged_into is None

    def inbox_rank(self) -> tuple[int, datetime]:
        """Where the item sorts in the inbox: its state's rank, a conflict next to the
        failures; and since when it needs the human."""
        acked = self.is_acked() or (self.state is D and self.merged_into is not None)
        if (
            self.state in INBOX_RANK
            and not acked
            and (self.state is not Q or self.cause.startswith(STUCK_CAUSES))
        ):
            rank, since = INBOX_RANK[self.state], self.state_since
            if self.conflict is not None and rank > 1:
                return 1, self.conflict.since
            return rank, since
        if self.conflict is not None:
            return 1, self.conflict.since
        return 3, self.state_since

    def in_inbox(self, now: datetime | None = None) -> bool:
        return self.needs_human() and not self.is_snoozed(now)

    def why(self) -> str:
        """One line saying why the agent needs the human (or what it is doing)."""
        if self.state is B and self.question:
            return self.question
        if self.has_conflict_item():
            assert self.conflict is not None
            if self.conflict.kind == "guard":
                return (
                    f"edits {', '.join(self.conflict.files)}, also changed by "
                    f"{self.conflict.name} (collision guard)"
                )
            shown = ", ".join(self.conflict.files[:5])
            more = len(self.conflict.files) - 5
            return f"conflicts with {self.conflict.name} on {shown}" + (
                f" and {more} more" if more > 0 else ""
            )
        if self.state is D and self.last_message:
            return self.last_message
        if self.is_over_budget():
            return f"{self.cause}: resume it with a raised budget (R, resume --budget USD)"
        if self.state is F and self.exit_code is not None and self.cause.startswith("exit"):
            return f"exit code {self.exit_code}" + (
                " (killed: R resumes it)" if self.is_interrupted() else ""
            )
        if self.is_interrupted():
            return f"{self.cause} (interrupted: R resumes it)"
        if self.state is D and self.exit_code == 0 and self.cause.startswith("exit"):
            return "finished (exit 0)"
        return self.cause

    def to_ls_json(self) -> dict[str, Any]:
        """Exactly the fields SPEC lists for ``mullui ls --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "profile": self.profile,
            "state": self.state.value,
            "cause": self.cause,
            "task": self.task,
            "branch": self.branch,
            "worktree": self.worktree,
            "tmux_target": self.tmux_target,
            "created_at": iso(self.created_at),
            "state_since": iso(self.state_since),
            "exit_code": self.exit_code,
            "snoozed_until": iso(self.snoozed_until)
            if self.snoozed_until
            else ("until-change" if self.snooze_until_change else None),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "collisions": self.collisions_json(),
            "host": self.host,
            "repo": self.repo,
        }

    def beyond_spec_json(self) -> dict[str, Any]:
        """What ``ls --json`` and ``inbox --json`` add to SPEC's fields: ``interrupted``
        (``resume`` continues it) and ``notes``."""
        return {"interrupted": self.is_interrupted(), "notes": list(self.notes)}

    def collisions_json(self) -> list[dict[str, Any]]:
        """The collisions for ``ls --json``; where the collision guard acted on one, its
        ``guard`` lists what it did (``file`` this agent was about to edit, ``action``,
        ``at``).  A guarded collision the radar has not seen (yet) - an edit refused by
        ``block`` leaves nothing to compare - is listed with the file and ``guard``."""
        out: list[dict[str, Any]] = []
        for c in self.collisions:
            d = c.to_json()
            hits = [g for g in self.guarded if g.agent == c.agent]
            if hits:
                d["guard"] = [g.brief() for g in hits]
            out.append(d)
        seen = {c.agent for c in self.collisions}
        for other in dict.fromkeys(g.agent for g in self.guarded if g.agent not in seen):
            hits = [g for g in self.guarded if g.agent == other]
            out.append(
                {
                    "agent": other,
                    "files": sorted({g.file for g in hits}),
                    "conflict": False,
                    "guard": [{"file": g.file, "action": g.action, "at": iso(g.at)} for g in hits],
                }
            )
        return out

    # ---- persistence ---------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, datetime):
                v = iso(v)
            elif isinstance(v, State):
                v = v.value
            elif f.name == "history":
                v = [t.to_json() for t in v]
            elif f.name == "collisions":
                v = [c.to_json() for c in v]
            elif f.name == "conflict":
                v = v.to_json() if v is not None else None
            elif f.name == "guarded":
                v = [g.to_json() for g in v]
            elif f.name == "notes":
                v = list(v)
            d[f.name] = v
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Agent:
        kw: dict[str, Any] = {}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                continue
            if k in ("created_at", "state_since", "snoozed_until", "last_activity", "revived_at"):
                v = parse_iso(v)
                if v is None and k in ("created_at", "state_since"):
                    v = utcnow()
            elif k == "state":
                v = State(v)
            elif k == "history":  # an older record kept them all: its tail
                v = tuple(Transition.from_json(t) for t in v[-HISTORY_KEEP:])
            elif k == "collisions":
                v = tuple(
                    Collision(str(c["agent"]), tuple(c["files"]), bool(c["conflict"])) for c in v
                )
            elif k == "conflict":
                v = ConflictItem.from_json(v) if v else None
            elif k == "guarded":
                v = tuple(GuardHit.from_json(g) for g in v if isinstance(g, dict) and "agent" in g)
            elif k == "notes":  # a remote host's too: bounded, strings only
                v = (
                    tuple(n[:NOTE_MAX] for n in v if isinstance(n, str))[-NOTES_KEEP:]
                    if isinstance(v, list)
                    else ()
                )
            kw[k] = v
        return cls(**kw)


def transition(agent: Agent, new: State, cause: str, at: datetime, **changes: Any) -> Agent:
    """Move ``agent`` to ``new``; raises :class:`IllegalTransition` when the model forbids it.

    A move into the same state only updates the cause and details (no new history entry).
    """
    if new is agent.state:
        return dataclasses.replace(agent, cause=cause, **changes)
    if not can_transition(agent.state, new):
        raise IllegalTransition(f"{agent.id}: {agent.state.value} -> {new.value} ({cause})")
    seq = agent.seq + 1
    snoozed_until = agent.snoozed_until
    if new is F:  # a failure wakes a snoozed item early
        snoozed_until = None
    if snoozed_until is not None and snoozed_until <= at:
        snoozed_until = None
    out = dataclasses.replace(
        agent,
        state=new,
        cause=cause,
        state_since=at,
        seq=seq,
        history=(*agent.history[1 - HISTORY_KEEP :], Transition(seq, new, cause, at)),
        snooze_until_change=False,
        snoozed_until=snoozed_until,
        **changes,
    )
    return out


def inbox(agents: Iterable[Agent], now: datetime | None = None) -> list[Agent]:
    """The agents that need the human, snoozed ones left out: blocked, then failed, then
    done; the oldest need first inside each group."""
    items = [a for a in agents if a.in_inbox(now)]
    return sorted(items, key=lambda a: (*a.inbox_rank(), a.id))


def snoozed(agents: Iterable[Agent], now: datetime | None = None) -> list[Agent]:
    """Inbox items hidden by a snooze, soonest wake first."""
    far = datetime.max.replace(tzinfo=UTC)
    items = [a for a in agents if a.needs_human() and a.is_snoozed(now)]
    return sorted(items, key=lambda a: (a.snoozed_until or far, a.id))
