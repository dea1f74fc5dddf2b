"""Events fold into records; stale and duplicate events never make the state lie."""

from __future__ import annotations

from mullui.model import NOTE_MAX, NOTES_KEEP, Agent, State
from mullui.reducer import apply_event


def ev(kind: str, t: int = 0, **kw: object) -> dict[str, object]:
    return {"kind": kind, "at": f"2026-01-01T12:00:{t:02d}Z", "eid": f"e{kind}{t}", **kw}


def created(state: str = "queued", hooks: bool = False) -> Agent:
    a = apply_event(
        None,
        ev(
            "created",
            record={
                "id": "a1",
                "name": "n",
                "profile": "shell",
                "task": "t",
                "state": state,
                "hooks": hooks,
            },
        ),
    )
    assert a is not None
    return a


def run(a: Agent, *events: dict[str, object]) -> Agent:
    for e in events:
        out = apply_event(a, e)
        assert out is not None
        a = out
    return a


def test_exit_zero_is_done_nonzero_is_failed() -> None:
    a = run(created(), ev("start", 1), ev("state", 2, state="working", cause="spawned"))
    done = run(a, ev("exit", 3, exit_code=0))
    assert done.state is State.DONE and done.exit_code == 0
    failed = run(a, ev("exit", 3, exit_code=3))
    assert failed.state is State.FAILED and failed.exit_code == 3 and failed.cause == "exit:3"


def test_late_hook_does_not_revive_a_stopped_agent() -> None:
    a = run(created(), ev("start", 1), ev("state", 2, state="working"), ev("stop", 3))
    a = run(a, ev("state", 4, state="working", cause="hook:PreToolUse"), ev("exit", 5, exit_code=0))
    assert a.state is State.STOPPED


def test_duplicate_blocked_keeps_first_cause() -> None:
    a = run(
        created(hooks=True),
        ev("start", 1),
        ev("state", 2, state="working"),
        ev("state", 3, state="blocked", cause="hook:PermissionRequest", question="Bash: ls"),
        ev("state", 9, state="blocked", cause="hook:Notification", question="Bash: ls"),
    )
    assert a.cause == "hook:PermissionRequest" and a.seq == 4


def test_silence_only_for_agents_without_hooks() -> None:
    shell = run(
        created(), ev("start", 1), ev("state", 2, state="working"), ev("silence", 3, seconds=30)
    )
    assert shell.state is State.BLOCKED and shell.cause == "silence:30s"
    back = run(shell, ev("activity", 4))
    assert back.state is State.WORKING
    hooked = run(
        created(hooks=True),
        ev("start", 1),
        ev("state", 2, state="working"),
        ev("silence", 3, seconds=30),
    )
    assert hooked.state is State.WORKING


def test_stall_fails_and_life_revives() -> None:
    a = run(created(), ev("start", 1), ev("state", 2, state="working"), ev("stall", 3))
    assert a.state is State.FAILED and a.cause == "stalled" and a.in_inbox()
    assert run(a, ev("activity", 4)).state is State.WORKING


def test_hostile_events_are_ignored() -> None:
    a = run(created(), ev("start", 1))
    for bad in (
        ev("state", 2, state="nonsense"),
        ev("state", 2),
        ev("exit", 2, exit_code="x;rm"),
        ev("bogus", 2),
        ev("usage", 2, tokens_in=5),
    ):
        a = run(a, bad)
    assert a.state in (State.STARTING, State.FAILED)


def test_notes_are_kept_once_each_bounded_and_survive_the_record() -> None:
    a = created()
    for i, text in enumerate(["base is a commit", "4 files left out", "base is a commit"]):
        b = apply_event(a, ev("note", i, text=text))
        assert b is not None
        a = b
    assert a.notes == ("base is a commit", "4 files left out")
    assert apply_event(a, ev("note", 9, text=["not", "text"])) == a
    assert Agent.from_record(a.to_record()).notes == a.notes
    for i in range(40):
        b = apply_event(a, ev("note", i, text=f"n{i}"))
        assert b is not None
        a = b
    assert len(a.notes) == NOTES_KEEP and a.notes[-1] == "n39"
    # a remote host's record: strings only, bounded
    rec = {**a.to_record(), "notes": ["x" * 10_000, 3, None, *["y"] * 50]}
    got = Agent.from_record(rec).notes
    assert len(got) == NOTES_KEEP and all(n == "y" for n in got)
    assert len(Agent.from_record({**rec, "notes": ["x" * 10_000]}).notes[0]) == NOTE_MAX
    assert Agent.from_record({**rec, "notes": "text"}).notes == ()
