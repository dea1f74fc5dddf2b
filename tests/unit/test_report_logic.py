"""The ledger's arithmetic: times come from recorded state changes and add up."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mullui.model import Agent, State, Transition
from mullui.report import (
    AGENT_FIELDS,
    agent_row,
    agent_times,
    chain_rows,
    duration,
    to_csv,
    to_text,
    totals,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
Q, ST, W, B, D, F, X = (
    State.QUEUED,
    State.STARTING,
    State.WORKING,
    State.BLOCKED,
    State.DONE,
    State.FAILED,
    State.STOPPED,
)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def agent(steps: list[tuple[State, float]], **kw: object) -> Agent:
    hist = tuple(Transition(i + 1, s, "x", at(t)) for i, (s, t) in enumerate(steps))
    last = hist[-1]
    return Agent(
        id=str(kw.pop("id", "a1")),
        name=str(kw.pop("name", "fix")),
        profile="shell",
        task="t",
        state=last.state,
        created_at=at(steps[0][1]),
        state_since=last.at,
        history=hist,
        seq=len(hist),
        **kw,
    )  # type: ignore[arg-type]


SCRIPTED = [(Q, 0), (ST, 1), (W, 1.5), (B, 3.5), (W, 6.5), (D, 10)]


def test_buckets_come_from_the_transitions_and_add_up_to_wall_time() -> None:
    t = agent_times(agent(SCRIPTED), [], now=at(100))
    assert (t["queued_s"], t["starting_s"], t["working_s"], t["blocked_s"]) == (1, 0.5, 5.5, 3)
    assert t["wall_s"] == 10  # created -> done, not -> now
    assert t["ended_at"] == "2025-03-01T09:00:10.000Z"
    assert t["review_wait_s"] == 90 and t["awaiting_review"] is True


def test_a_live_agent_runs_its_clock_to_now() -> None:
    t = agent_times(agent([(Q, 0), (ST, 1), (W, 2)]), [], now=at(62))
    assert t["wall_s"] == 62 and t["working_s"] == 60 and t["ended_at"] is None


def test_review_wait_ends_at_the_ack_or_at_the_next_instruction() -> None:
    a = agent([(Q, 0), (ST, 0), (W, 0), (D, 10), (W, 70), (D, 100)])
    t = agent_times(a, [at(130)], now=at(1000))
    # First done: handled by a new instruction after 60 s; second: acked after 30 s.
    assert t["review_wait_s"] == 90 and t["awaiting_review"] is False
    # The time done-then-resumed is idle time, so the buckets still add up.
    assert t["idle_s"] == 60 and t["wall_s"] == 100
    # An ack from an earlier done does not close a later one.
    t = agent_times(a, [at(20)], now=at(160))
    assert t["review_wait_s"] == 10 + 60 and t["awaiting_review"] is True


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([ST, W, B, D, F, X, State.UNKNOWN]),
            st.floats(min_value=0, max_value=1e5),
        ),
        min_size=0,
        max_size=10,
    ),
    st.floats(min_value=0, max_value=1e5),
)
def test_buckets_always_sum_to_wall_time(steps: list[tuple[State, float]], extra: float) -> None:
    times = [0.0]
    for _, dt in steps:
        times.append(times[-1] + dt)
    a = agent([(Q, 0.0), *((s, times[i + 1]) for i, (s, _) in enumerate(steps))])
    t = agent_times(a, [], now=at(times[-1] + extra))
    parts = ("queued_s", "starting_s", "working_s", "blocked_s", "idle_s", "unknown_s")
    assert abs(sum(t[k] for k in parts) - t["wall_s"]) < 1e-2


def row(a: Agent, **kw: object) -> dict[str, object]:
    merged_at = kw.pop("merged_at", None)
    stats = kw.pop("stats", (2, 10, 3))
    return agent_row(a, [], merged_at, stats, at(1000))  # type: ignore[arg-type]


def test_an_agent_row_has_every_ledger_field_and_the_estimate_next_to_the_actual() -> None:
    a = agent(
        SCRIPTED, estimate_h=2.0, tokens_in=1000, tokens_out=50, cost_usd=0.42, merged_into="main"
    )
    r = row(a, merged_at=at(3600))
    assert list(r) == list(AGENT_FIELDS)
    assert r["estimate_h"] == 2.0 and r["actual_h"] == round(10 / 3600, 4)
    assert r["delivered_s"] == 3600 and r["merged"] is True
    assert (r["files_changed"], r["lines_added"], r["lines_deleted"]) == (2, 10, 3)


def test_chain_rows_sum_their_steps_and_span_first_spawn_to_last_end() -> None:
    s1 = agent(
        [(Q, 0), (ST, 0), (W, 0), (D, 10)],
        id="s1",
        chain="r",
        chain_name="pc",
        chain_step=1,
        cost_usd=1.0,
    )
    s2 = agent(
        [(Q, 0), (ST, 10), (W, 10), (B, 15), (W, 20), (D, 30)],
        id="s2",
        chain="r",
        chain_name="pc",
        chain_step=2,
        cost_usd=2.5,
        merged_into="main",
    )
    (c,) = chain_rows([row(s2), row(s1), row(agent(SCRIPTED, id="lone"))])
    assert (c["chain_name"], c["steps"], c["steps_done"], c["state"]) == ("pc", 2, 2, "done")
    assert c["wall_s"] == 30 and c["working_s"] == 10 + 15 and c["blocked_s"] == 5
    assert c["cost_usd"] == 3.5 and c["merged"] is True and c["files_changed"] == 4


def test_totals_give_throughput_and_review_latency() -> None:
    done = agent(SCRIPTED, id="d", estimate_h=1.0)
    merged = agent(SCRIPTED, id="m", merged_into="main", estimate_h=3.0)
    failed = agent([(Q, 0), (ST, 0), (W, 0), (F, 5)], id="f")
    rows = [row(done), row(merged, merged_at=at(40)), row(failed)]
    t = totals(rows, at(86400))
    assert t["agents"] == 3 and t["by_state"] == {"done": 2, "failed": 1}
    assert t["delivered"] == 2 and t["merged"] == 1 and t["delivered_per_day"] == 2.0
    assert t["estimate_h"] == 4.0 and t["mean_delivered_s"] == 40.0
    assert t["wall_s"] == 10 + 10 + 5


def test_csv_and_text_carry_the_same_rows() -> None:
    a = agent(SCRIPTED, estimate_h=2.0, cost_usd=1.25, chain="r", chain_name="pc", chain_step=1)
    rows = [row(a), row(dataclasses.replace(a, id="b", name="other", chain=None))]
    led = {"agents": rows, "chains": chain_rows(rows), "totals": totals(rows, at(1000))}
    parsed = list(csv.DictReader(io.StringIO(to_csv(led))))
    assert [p["kind"] for p in parsed] == ["agent", "agent", "chain", "total"]
    assert parsed[0]["working_s"] == "5.5" and parsed[0]["name"] == "fix"
    text = to_text(led)
    assert "fix" in text and "$1.25" in text and "2h/0.0h" in text and "pc (1/1)" in text
    assert "total: 2 agents (2 done)" in text


def test_durations_read_like_a_human_wrote_them() -> None:
    assert [duration(x) for x in (None, 4.4, 65, 3725, 2 * 86400 + 4 * 3600)] == [
        "-",
        "4s",
        "1m05s",
        "1h02m",
        "2d04h",
    ]
