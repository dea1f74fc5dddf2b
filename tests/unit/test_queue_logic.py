"""The queue's decisions from records alone: who starts, who waits and why."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mullui.config import Config, Host, Limits
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent, State
from mullui.queue import (
    chain_runs,
    expand_prev,
    is_stuck,
    last_log_line,
    over_budget,
    parse_backlog,
    plan,
    prev_values,
    substitute,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PROFILES = ["claude", "shell", "codex"]


def ag(i: int, state: State = State.QUEUED, **kw: object) -> Agent:
    kw.setdefault("created_at", T0 + timedelta(seconds=i))
    return Agent(id=f"a{i}", name=f"n{i}", profile="shell", task="t", state=state, **kw)  # type: ignore[arg-type]


def cfg(**limits: object) -> Config:
    return Config(limits=Limits(**limits))  # type: ignore[arg-type]


def decisions(agents: list[Agent], c: Config) -> dict[str, str | None]:
    return {a.id: r for a, r in plan(agents, c)}


# ---- max_running ------------------------------------------------------------------------
def test_free_slots_go_to_the_oldest_queued_agents() -> None:
    agents = [ag(5), ag(1, State.WORKING), ag(3), ag(4), ag(2)]
    d = decisions(agents, cfg(max_running=3))
    assert d["a2"] is None and d["a3"] is None
    assert d["a4"] == d["a5"] == "waiting for a free slot (max_running 3)"


def test_blocked_and_starting_hold_slots_but_done_does_not() -> None:
    agents = [ag(1, State.BLOCKED), ag(2, State.STARTING), ag(3, State.DONE), ag(4)]
    assert decisions(agents, cfg(max_running=2))["a4"] == "waiting for a free slot (max_running 2)"
    assert decisions(agents, cfg(max_running=3))["a4"] is None


def test_remote_agents_count_against_their_host_only() -> None:
    c = Config(
        limits=Limits(max_running=1),
        hosts={"box": Host(name="box", ssh="x", repo="/r", max_running=2)},
    )
    agents = [
        ag(1, State.WORKING),
        ag(2, State.UNKNOWN, host="box"),
        ag(3, host="box"),
        ag(4, host="box"),
        ag(5),
    ]
    d = decisions(agents, c)
    assert d["a3"] is None
    assert d["a4"] == "waiting for a free slot on box (max_running 2)"
    assert d["a5"] == "waiting for a free slot (max_running 1)"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(list(State)), min_size=0, max_size=12),
    st.integers(min_value=1, max_value=5),
)
def test_plan_never_exceeds_max_running(states: list[State], limit: int) -> None:
    agents = [ag(i, s) for i, s in enumerate(states)]
    running = sum(a.state in (State.STARTING, State.WORKING, State.BLOCKED) for a in agents)
    starts = sum(r is None for _, r in plan(agents, cfg(max_running=limit)))
    assert running + starts <= max(limit, running)
    queued = sum(a.state is State.QUEUED for a in agents)
    assert starts == min(queued, max(0, limit - running))


# ---- --after -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prev_state", "cause", "expected"),
    [
        (State.WORKING, "spawned", "waiting for n1 (a1) to be done"),
        (State.QUEUED, "spawn", "waiting for n1 (a1) to be done"),
        (State.BLOCKED, "hook:PermissionRequest", "waiting for n1 (a1) to be done"),
        (State.FAILED, "exit:3", "predecessor n1 failed: exit:3"),
        (State.STOPPED, "stopped by user", "predecessor n1 was stopped (stopped by user)"),
        (State.DONE, "exit:0", None),
    ],
)
def test_a_follow_up_waits_for_its_predecessor_to_be_done(
    prev_state: State, cause: str, expected: str | None
) -> None:
    agents = [ag(1, prev_state, cause=cause), ag(2, after="a1")]
    assert decisions(agents, cfg())["a2"] == expected


def test_a_follow_up_of_a_failed_agent_is_stuck() -> None:
    agents = [ag(1, State.FAILED, cause="exit:3"), ag(2, after="a1")]
    ((_, reason),) = [(a, r) for a, r in plan(agents, cfg()) if a.id == "a2"]
    assert reason is not None
    assert is_stuck(dataclasses.replace(agents[1], cause=reason))
    assert not is_stuck(dataclasses.replace(agents[1], cause="waiting for n1 (a1) to be done"))


def test_a_follow_up_whose_predecessor_vanished_says_so() -> None:
    r = decisions([ag(2, after="zz")], cfg())["a2"]
    assert r is not None and r.startswith("predecessor zz no longer exists")


# ---- max_unreviewed ---------------------------------------------------------------------------
def test_new_agents_wait_while_too_many_done_agents_are_unreviewed() -> None:
    done = [ag(i, State.DONE) for i in range(1, 4)]
    agents = [*done, ag(10)]
    r = decisions(agents, cfg(max_unreviewed=3))["a10"]
    assert r == "waiting for review: 3 done agents unreviewed (max_unreviewed 3)"
    # An ack (acked_seq == seq) or a merge takes one off the pile.
    done[0] = dataclasses.replace(done[0], seq=2, acked_seq=2)
    assert decisions([*done, ag(10)], cfg(max_unreviewed=3))["a10"] is None
    done[1] = dataclasses.replace(done[1], merged_into="main")
    assert decisions([*done, ag(10)], cfg(max_unreviewed=2))["a10"] is None


def test_max_unreviewed_zero_means_no_limit() -> None:
    agents = [*(ag(i, State.DONE) for i in range(1, 30)), ag(40)]
    assert decisions(agents, cfg(max_unreviewed=0))["a40"] is None


def test_the_predecessor_does_not_count_as_unreviewed_for_its_follow_up() -> None:
    agents = [ag(1, State.DONE), ag(2, after="a1"), ag(3)]
    d = decisions(agents, cfg(max_unreviewed=1))
    assert d["a2"] is None  # the chain goes on
    assert d["a3"] == "waiting for review: 1 done agents unreviewed (max_unreviewed 1)"


# ---- placeholders ---------------------------------------------------------------------------
PREV = Agent(
    id="abcd1234",
    name="plan",
    profile="claude",
    task="x",
    state=State.DONE,
    worktree="/wt/plan-abcd1234",
    branch="mullui/plan-abcd1234",
    last_message="Wrote PLAN.md; it's 3 steps",
)


def test_prev_placeholders_are_expanded_and_other_braces_stay() -> None:
    t = "Critique {prev.worktree}/PLAN.md on {prev.branch} ({prev.id}): {prev.last_message} {x} {"
    out = substitute(t, prev_values(PREV))
    assert out == (
        "Critique /wt/plan-abcd1234/PLAN.md on mullui/plan-abcd1234 (abcd1234): "
        "Wrote PLAN.md; it's 3 steps {x} {"
    )


def test_in_a_shell_task_prev_values_are_variable_references_never_the_text() -> None:
    evil = dataclasses.replace(PREV, last_message="$(rm -rf ~); `id` 'q'")
    t = "echo {prev.last_message} > f; cat {prev.worktree}/x"
    out = expand_prev(t, prev_values(evil), in_shell=True)
    assert out == 'echo "$MULLUI_PREV_LAST_MESSAGE" > f; cat "$MULLUI_PREV_WORKTREE"/x'
    assert expand_prev(t, prev_values(evil), in_shell=False).startswith("echo $(rm -rf ~);")
    with pytest.raises(MulluiError, match=r"inside quotes.*MULLUI_PREV_LAST_MESSAGE"):
        expand_prev('echo "got {prev.last_message}"', prev_values(evil), in_shell=True)


def test_last_message_falls_back_to_the_last_line_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"$ make\r\n\x1b[32mbuilding\x1b[0m\r\n\x1b[1mall 12 tests pass\x1b[0m\r\n\r\n")
    assert last_log_line(log) == "all 12 tests pass"
    assert last_log_line(tmp_path / "missing.log") is None
    nomsg = dataclasses.replace(PREV, last_message=None)
    assert prev_values(nomsg, last_message="fallback")["prev.last_message"] == "fallback"


# ---- budgets ------------------------------------------------------------------------------------
def test_over_budget_only_past_the_limit_and_zero_means_none() -> None:
    a = dataclasses.replace(PREV, cost_usd=10.0)
    assert not over_budget(a, 10.0)
    assert over_budget(dataclasses.replace(a, cost_usd=10.01), 10.0)
    assert not over_budget(dataclasses.replace(a, cost_usd=1e6), 0)
    assert not over_budget(dataclasses.replace(a, cost_usd=None), 1.0)


# ---- chains as one unit -------------------------------------------------------------------------
def test_a_chain_run_shows_its_steps_and_where_it_stands() -> None:
    ex = {"chain_steps": 3}
    s1 = ag(1, State.DONE, chain="r1", chain_name="pc", chain_step=1, extra=ex)
    s2 = ag(2, State.WORKING, chain="r1", chain_name="pc", chain_step=2, after="a1", extra=ex)
    s3 = ag(3, chain="r1", chain_name="pc", chain_step=3, after="a2", extra=ex)
    (run,) = chain_runs([s3, ag(9), s1, s2])
    assert [s.id for s in run.steps] == ["a1", "a2", "a3"]
    assert run.current is not None and run.current.id == "a2"
    assert run.state == "working"
    assert run.summary().startswith("pc: step 2/3 n2: working")
    done = [dataclasses.replace(s, state=State.DONE) for s in (s1, s2, s3)]
    assert chain_runs(done)[0].state == "done"


# ---- backlog files -----------------------------------------------------------------------------
GOOD = """\
[[tasks]]
name = "api"
agent = "claude"
task = "Add /health"
estimate_h = 2

[[tasks]]
name = "docs"
agent = "shell"
task = "echo docs"
after = "api"
estimate_h = 0.5

[[tasks]]
task = "echo lone"
"""


def test_a_valid_backlog_parses_in_file_order() -> None:
    ts = parse_backlog(GOOD, Path("tasks.toml"), PROFILES)
    assert [(t.name, t.agent, t.after, t.estimate_h) for t in ts] == [
        ("api", "claude", None, 2.0),
        ("docs", "shell", "api", 0.5),
        (None, None, None, None),
    ]
    assert ts[1].line == 7 and ts[1].line_of("after") == 11


def test_the_table_form_names_tasks_by_their_key() -> None:
    ts = parse_backlog(
        '[tasks.a]\ntask = "x"\n[tasks.b]\ntask = "y"\nafter = "a"\n', Path("t.toml"), PROFILES
    )
    assert [(t.name, t.after) for t in ts] == [("a", None), ("b", "a")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[tasks]]\ntask = "x"\n\n[[tasks]]\ntask = "y"\nestimte_h = 1\n',
            "tasks.toml line 6: task 2: unknown key 'estimte_h'",
        ),
        ('[[tasks]]\nname = "a"\n', "tasks.toml line 1: task 1: task is required"),
        (
            '[[tasks]]\ntask = "x"\nagent = "gpt9"\n',
            "tasks.toml line 3: task 1: unknown agent 'gpt9'",
        ),
        (
            '[[tasks]]\ntask = "x"\nafter = "nope"\n',
            "tasks.toml line 3: after = 'nope' names no task in this file",
        ),
        (
            '[[tasks]]\nname = "a"\ntask = "x"\n[[tasks]]\nname = "a"\ntask = "y"\n',
            "tasks.toml line 5: task name 'a' is used twice (first at line 2)",
        ),
        (
            '[[tasks]]\ntask = "x"\nestimate_h = "two"\n',
            "tasks.toml line 3: task 1: estimate_h must be a number of hours >= 0",
        ),
        (
            '[[tasks]]\ntask = "x"\nestimate_h = -1\n',
            "tasks.toml line 3: task 1: estimate_h must be a number of hours >= 0",
        ),
        ('[[tasks]]\ntask = "x\n', "tasks.toml line 2: TOML syntax error"),
        ("", "tasks.toml: no tasks"),
        ('task = "x"\n', "tasks.toml: unknown top-level key 'task'"),
        ('[[tasks]]\ntask = ""\n', "tasks.toml line 2: task 1: task must be a non-empty string"),
    ],
)
def test_an_invalid_backlog_is_rejected_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_backlog(text, Path("/x/tasks.toml"), PROFILES)
    assert str(e.value).startswith(message), str(e.value)


def test_a_cycle_of_after_is_rejected() -> None:
    text = (
        '[[tasks]]\nname = "a"\ntask = "x"\nafter = "c"\n'
        '[[tasks]]\nname = "b"\ntask = "y"\nafter = "a"\n'
        '[[tasks]]\nname = "c"\ntask = "z"\nafter = "b"\n'
    )
    with pytest.raises(
        ConfigError, match=r"tasks.toml line 4: after makes a cycle: a -> c -> b -> a"
    ):
        parse_backlog(text, Path("tasks.toml"), PROFILES)
    with pytest.raises(ConfigError, match="cycle: a -> a"):
        parse_backlog(
            '[[tasks]]\nname = "a"\ntask = "x"\nafter = "a"\n', Path("tasks.toml"), PROFILES
        )


def test_an_agent_whose_start_keeps_failing_does_not_hold_a_slot() -> None:
    agents = [ag(1, cause="cannot start: unknown agent profile 'x'"), ag(2)]
    d = decisions(agents, cfg(max_running=1))
    assert d == {"a1": None, "a2": None}  # a1 is retried; a2 is not kept waiting by it
    assert is_stuck(agents[0])
