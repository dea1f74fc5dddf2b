"""The agent model: transitions, inbox order, snooze."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from mullui.errors import IllegalTransition
from mullui.model import ALLOWED, Agent, State, can_transition, inbox, snoozed, transition

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# The contract: queued -> starting -> working <-> blocked; working <-> done;
# any -> failed | stopped; any live state <-> unknown.
SPEC_EDGES = {
    (State.QUEUED, State.STARTING),
    (State.STARTING, State.WORKING),
    (State.WORKING, State.BLOCKED),
    (State.BLOCKED, State.WORKING),
    (State.WORKING, State.DONE),
    (State.DONE, State.WORKING),
}
for s in State:
    if s is not State.FAILED:
        SPEC_EDGES.add((s, State.STOPPED)) if s is not State.STOPPED else None
    if s not in (State.FAILED, State.STOPPED):
        SPEC_EDGES.add((s, State.FAILED))
SPEC_EDGES.add((State.STOPPED, State.FAILED))
SPEC_EDGES.add((State.FAILED, State.STOPPED))
LIVE = (State.QUEUED, State.STARTING, State.WORKING, State.BLOCKED, State.DONE)
for s in LIVE:
    SPEC_EDGES.add((s, State.UNKNOWN))
    SPEC_EDGES.add((State.UNKNOWN, s))


def agent(state: State = State.WORKING, **kw: object) -> Agent:
    return Agent(
        id="a1",
        name="a",
        profile="shell",
        task="t",
        state=state,
        state_since=T0,
        created_at=T0,
        **kw,
    )  # type: ignore[arg-type]


def test_every_spec_edge_is_allowed() -> None:
    for old, new in SPEC_EDGES:
        assert can_transition(old, new), f"{old} -> {new} must be legal"


@pytest.mark.parametrize("old,new", list(itertools.product(State, State)))
def test_each_pair_is_legal_or_raises(old: State, new: State) -> None:
    a = agent(old)
    if old is new:
        out = transition(a, new, "same", T0)
        assert out.seq == a.seq and out.cause == "same"
    elif new in ALLOWED[old]:
        out = transition(a, new, "why", T0 + timedelta(seconds=1))
        assert out.state is new and out.seq == a.seq + 1
        assert out.history[-1].state is new and out.history[-1].cause == "why"
    else:
        with pytest.raises(IllegalTransition):
            transition(a, new, "nope", T0)


def test_illegal_examples_raise() -> None:
    for old, new in [
        (State.QUEUED, State.WORKING),
        (State.QUEUED, State.DONE),
        (State.STOPPED, State.WORKING),
        (State.DONE, State.BLOCKED),
        (State.FAILED, State.DONE),
        (State.STOPPED, State.DONE),
    ]:
        with pytest.raises(IllegalTransition):
            transition(agent(old), new, "x", T0)


def test_inbox_order_blocked_failed_done_oldest_first() -> None:
    def mk(i: str, s: State, m: int) -> Agent:
        return Agent(
            id=i,
            name=i,
            profile="shell",
            task="t",
            state=s,
            state_since=T0 + timedelta(minutes=m),
            created_at=T0,
        )

    agents = [
        mk("d-new", State.DONE, 9),
        mk("b-new", State.BLOCKED, 8),
        mk("f-old", State.FAILED, 1),
        mk("w", State.WORKING, 0),
        mk("d-old", State.DONE, 2),
        mk("b-old", State.BLOCKED, 3),
        mk("q", State.QUEUED, 0),
        mk("x", State.STOPPED, 0),
        mk("f-new", State.FAILED, 7),
    ]
    assert [a.id for a in inbox(agents, now=T0)] == [
        "b-old",
        "b-new",
        "f-old",
        "f-new",
        "d-old",
        "d-new",
    ]


def test_ack_hides_until_state_changes() -> None:
    a = agent(State.DONE)
    a = Agent(**{**a.__dict__, "acked_seq": a.seq})
    assert not a.in_inbox(T0)
    b = transition(transition(a, State.WORKING, "again", T0), State.DONE, "fin", T0)
    assert b.in_inbox(T0)


def test_snooze_expires() -> None:
    a = Agent(**{**agent(State.BLOCKED).__dict__, "snoozed_until": T0 + timedelta(minutes=30)})
    assert not a.in_inbox(T0 + timedelta(minutes=29))
    assert [x.id for x in snoozed([a], T0)] == ["a1"]
    assert a.in_inbox(T0 + timedelta(minutes=30))


def test_failure_wakes_a_snoozed_item_early() -> None:
    a = Agent(**{**agent(State.DONE).__dict__, "snoozed_until": T0 + timedelta(hours=2)})
    w = transition(a, State.WORKING, "more", T0)
    assert w.snoozed_until is not None  # a time snooze survives ordinary changes
    f = transition(w, State.FAILED, "exit:1", T0 + timedelta(minutes=1))
    assert f.snoozed_until is None and f.in_inbox(T0 + timedelta(minutes=1))


def test_snooze_until_change_ends_on_any_change() -> None:
    a = Agent(**{**agent(State.BLOCKED).__dict__, "snooze_until_change": True})
    assert not a.in_inbox(T0)
    b = transition(a, State.WORKING, "answered", T0)
    c = transition(b, State.DONE, "fin", T0)
    assert c.in_inbox(T0)


def test_ls_fields_exactly_as_spec() -> None:
    fields = (
        "id, name, profile, state, cause, task, branch, worktree, tmux_target, created_at, "
        "state_since, exit_code, snoozed_until, tokens_in, tokens_out, cost_usd, "
        "collisions, host, repo"
    ).split(", ")
    d = agent().to_ls_json()
    assert list(d) == fields
    assert d["branch"] is None and d["exit_code"] is None and d["collisions"] == []
    assert d["created_at"] == "2026-01-01T12:00:00.000Z"


def test_record_round_trip() -> None:
    a = transition(
        agent(State.WORKING),
        State.BLOCKED,
        "hook:PermissionRequest",
        T0,
        question="Bash: rm -rf build",
    )
    assert Agent.from_record(a.to_record()) == a
