"""Resume's pure parts: the transitions, the reducer's ``resume`` event, interrupted
agents, the usage of runs added up, the ledger's run counts, and each profile's resume
argv (the real CLIs run in tests/integration/test_resume_clis.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mullui.agents import get_profile
from mullui.agents.base import LaunchContext
from mullui.model import Agent, State, can_transition
from mullui.reducer import apply_event
from mullui.report import run_counts

T0 = "2026-01-01T12:00:00.000Z"


def agent(state: State = State.WORKING, **kw: object) -> Agent:
    a = apply_event(
        None,
        {
            "kind": "created",
            "at": T0,
            "record": {"id": "a1", "name": "n", "profile": "shell", "task": "t", **kw},
        },
    )
    assert a is not None
    for ev in (
        {"kind": "start", "cause": "spawn"},
        {"kind": "state", "state": "working", "cause": "spawned"},
    ):
        a = apply_event(a, {**ev, "at": T0})
        assert a is not None
    return a


def test_failed_and_stopped_may_start_again_or_queue() -> None:
    for old in (State.FAILED, State.STOPPED):
        assert can_transition(old, State.STARTING)
        assert can_transition(old, State.QUEUED)
    assert not can_transition(State.DONE, State.STARTING)


def test_the_resume_event_starts_a_failed_agent_and_clears_the_old_run() -> None:
    a = apply_event(agent(), {"kind": "exit", "exit_code": 137, "at": T0})
    assert a is not None and a.state is State.FAILED and a.is_interrupted()
    b = apply_event(a, {"kind": "resume", "cause": "resume:manual", "at": T0})
    assert b is not None
    assert (b.state, b.cause, b.exit_code, b.tmux_target) == (
        State.STARTING,
        "resume:manual",
        None,
        None,
    )
    assert [t.state for t in b.history][-2:] == [State.FAILED, State.STARTING]
    q = apply_event(a, {"kind": "resume", "state": "queued", "cause": "resume:manual"})
    assert q is not None and q.state is State.QUEUED


def test_the_resume_event_does_not_move_a_live_or_removed_agent() -> None:
    a = agent()
    assert apply_event(a, {"kind": "resume", "cause": "resume:manual"}) == a
    gone = apply_event(apply_event(a, {"kind": "stop"}), {"kind": "removed"})
    assert gone is not None
    assert apply_event(gone, {"kind": "resume", "cause": "resume:manual"}) == gone


@pytest.mark.parametrize(
    ("cause", "code", "interrupted"),
    [
        ("tmux:server-gone (no tmux server on socket s)", None, True),
        ("tmux:window-gone", None, True),
        ("spawn interrupted (mullui process 4 is gone)", None, True),
        ("exit:137", 137, True),
        ("exit:1", 1, False),
        ("stalled", None, False),
        ("over budget: $12.00 > $10.00", None, False),
    ],
)
def test_interrupted_is_a_cause_not_a_failure_of_the_work(
    cause: str, code: int | None, interrupted: bool
) -> None:
    a = apply_event(agent(), {"kind": "fail", "cause": cause, "at": T0})
    assert a is not None
    if code is not None:
        a = apply_event(a, {"kind": "exit", "exit_code": code})
        assert a is not None
    assert a.is_interrupted() is interrupted
    assert ("R resumes it" in a.why()) is interrupted


def test_a_fresh_run_adds_its_usage_to_the_runs_before() -> None:
    a = apply_event(agent(), {"kind": "usage", "tokens_in": 100, "tokens_out": 10, "cost_usd": 1.5})
    assert a is not None
    base = {"usage_base": {"tokens_in": 100, "tokens_out": 10, "cost_usd": 1.5}}
    b = apply_event(a, {"kind": "update", "fields": {"extra": base}})
    c = apply_event(b, {"kind": "usage", "tokens_in": 7, "tokens_out": 3, "cost_usd": 0.25})
    assert c is not None
    assert (c.tokens_in, c.tokens_out, c.cost_usd) == (107, 13, 1.75)


def test_the_ledger_counts_runs_and_resumes() -> None:
    a = apply_event(agent(), {"kind": "stop", "at": T0})
    assert a is not None
    assert run_counts(a) == {"runs": 1, "resumes": 0}
    for ev in (
        {"kind": "resume", "cause": "resume:manual"},
        {"kind": "fail", "cause": "tmux:server-gone"},
        {"kind": "resume", "state": "queued", "cause": "resume:after-restart"},
        {"kind": "start", "cause": "resume:after-restart"},
    ):
        a = apply_event(a, {**ev, "at": T0})
        assert a is not None
    assert run_counts(a) == {"runs": 3, "resumes": 2}


# ---- each profile's resume argv ---------------------------------------------------------------
def launch(tmp_path: Path, session_id: str = "sess-1", **kw: object) -> LaunchContext:
    return LaunchContext(
        agent_id="a1",
        name="n",
        task="the task",
        worktree=tmp_path,
        branch="b",
        repo=tmp_path,
        profile_dir=tmp_path / "p",
        hook_argv=("hook",),
        session_id=session_id,
        **kw,  # type: ignore[arg-type]
    )


def test_claude_resumes_a_saved_conversation_only(tmp_path: Path) -> None:
    claude = get_profile("claude")
    missing = launch(tmp_path, transcript_path=str(tmp_path / "none.jsonl"))
    assert claude.resume_command(missing, "go on") is None
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("{}\n")
    argv = claude.resume_command(launch(tmp_path, transcript_path=str(transcript)), "go on")
    assert argv is not None
    assert argv[:3] == ["claude", "--resume", "sess-1"] and argv[-2:] == ["--", "go on"]
    # Found where Claude Code keeps it when no hook reported the path.
    home = tmp_path / "cfg"
    (home / "projects" / "-x").mkdir(parents=True)
    (home / "projects" / "-x" / "sess-2.jsonl").write_text("{}\n")
    ctx = launch(tmp_path, "sess-2", env={"CLAUDE_CONFIG_DIR": str(home)})
    assert claude.resume_command(ctx, None) is not None


def test_codex_resumes_a_thread_with_a_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    codex = get_profile("codex")
    assert codex.resume_command(launch(tmp_path, ""), "go on") is None
    thread = "019a0000-0000-7000-8000-000000000001"
    assert codex.resume_command(launch(tmp_path, thread), "go on") is None
    day = tmp_path / "codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True)
    (day / f"rollout-2026-01-01T00-00-00-{thread}.jsonl").write_text(json.dumps({}) + "\n")
    argv = codex.resume_command(launch(tmp_path, thread), "go on")
    assert argv is not None
    assert argv[:2] == ["codex", "resume"] and argv[-3:] == ["--", thread, "go on"]


def test_other_profiles_give_the_prompt_or_run_again(tmp_path: Path) -> None:
    ctx = launch(tmp_path, "ses_abc")
    assert get_profile("gemini").resume_command(ctx, "go")[-1] == "--prompt-interactive=go"  # type: ignore[index]
    opencode = get_profile("opencode")
    assert opencode.resume_command(ctx, "go")[-2:] == ["--session", "ses_abc"]  # type: ignore[index]
    assert not opencode.resume_takes_prompt
    assert get_profile("aider").resume_command(ctx, "go")[-1] == "--message=go"  # type: ignore[index]
    assert get_profile("shell").resume_command(ctx, "go") == ["/bin/sh", "-c", "the task"]
    custom = get_profile("mine", {"mine": {"command": ["tool", "{task}"]}})
    assert custom.resume_command(ctx, "go") == ["tool", "the task"]
    own = get_profile(
        "mine", {"mine": {"command": ["tool", "{task}"], "resume": ["tool", "--again", "{id}"]}}
    )
    assert own.resume_command(ctx, "go") == ["tool", "--again", "a1"]


# ---- config ------------------------------------------------------------------------------------
def test_resume_config_keys_and_what_an_untrusted_repository_may_set() -> None:
    from mullui.config import build, untrusted_part

    cfg = build(
        {
            "resume_prompt": "go on",
            "limits": {"auto_resume": True},
            "profiles": {"claude": {"resume_prompt": "carry on"}},
        }
    )
    assert cfg.resume_prompt == "go on" and cfg.limits.auto_resume is True
    assert build({}).limits.auto_resume is False and build({}).resume_prompt is None
    repo = {"resume_prompt": "x", "limits": {"auto_resume": True}}
    kept, ignored = untrusted_part({}, repo)
    assert "resume_prompt" not in kept and "auto_resume" not in kept.get("limits", {})
    assert {"resume_prompt", "limits.auto_resume"} <= set(ignored)
    kept, _ = untrusted_part({"limits": {"auto_resume": True}}, repo)
    assert kept["limits"]["auto_resume"] is True  # the user turned it on: no loosening
