"""History that costs nothing: finished agents fold into the ledger, atomically, and the
live store keeps only live and recent agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mullui import ledger
from mullui.context import Context
from mullui.model import Agent, State, utcnow
from mullui.paths import get_paths

ROOT = Path(__file__).resolve().parents[2]


def make_ctx(tmp_path: Path) -> Context:
    return Context(get_paths({"MULLUI_HOME": str(tmp_path / "home")}), cwd=tmp_path)


def add(ctx: Context, aid: str, *events: tuple[str, dict[str, object]], **kw: object) -> Agent:
    ctx.store.create(Agent(id=aid, name=aid, profile="shell", task=f"task {aid}", **kw))  # type: ignore[arg-type]
    ctx.store.emit(aid, "start")
    ctx.store.emit(aid, "state", state="working", cause="spawned")
    for kind, data in events:
        ctx.store.emit(aid, kind, **data)
    ctx.paths.log_file(aid).parent.mkdir(parents=True, exist_ok=True)
    ctx.paths.log_file(aid).write_text(f"output of {aid}\n")
    return ctx.store.load(aid)


DONE = ("state", {"state": "done", "cause": "hook:Stop", "message": "fin"})


def kill_midway(tmp_path: Path, body: str, far_enough: Callable[[], bool]) -> None:
    """Run ``body`` (with ``ledger`` and ``ctx`` at hand) in another process on the same
    MULLUI_HOME; kill -9 it once ``far_enough()``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MULLUI_HOME": str(tmp_path / "home")}
    code = (
        "from mullui import ledger\n"
        "from mullui.context import Context\n"
        "import sys, pathlib\n"
        "ctx = Context(cwd=pathlib.Path(sys.argv[1]))\n" + body
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not far_enough():
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait(10)


def test_merged_removed_and_old_agents_fold_live_and_recent_stay(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    add(ctx, "merged1", DONE, ("usage", {"tokens_in": 10, "tokens_out": 5, "cost_usd": 0.5}),
        ("merged", {"into": "main", "sha": "abc"}))  # fmt: skip
    add(ctx, "removed1", ("stop", {}), ("removed", {}))
    add(ctx, "recent1", DONE)
    add(ctx, "live1")
    add(ctx, "old1", DONE)
    add(ctx, "pred1", DONE, ("merged", {"into": "main", "sha": "def"}))
    ctx.store.create(Agent(id="next1", name="next1", profile="shell", task="t", after="pred1"))
    later = utcnow() + timedelta(days=15)
    assert ledger.fold(ctx, now=utcnow()) == 2  # merged1, removed1 (pred1 is needed)
    ids = {a.id for a in ctx.store.all()}
    assert ids == {"recent1", "live1", "old1", "pred1", "next1"}
    assert ledger.fold(ctx, now=later) == 2  # recent1, old1 are 15 days old by then
    ids = {a.id for a in ctx.store.all()}
    assert ids == {"live1", "pred1", "next1"}
    rows = {r["id"]: r for r in ledger.rows(ctx.paths)}
    assert set(rows) == {"merged1", "removed1", "recent1", "old1"}
    m = rows["merged1"]
    assert m["ls"]["state"] == "done" and m["ls"]["cost_usd"] == 0.5
    assert m["report"]["merged"] is True and m["report"]["tokens_in"] == 10
    assert m["report"]["wall_s"] >= 0
    # nothing lost: the spool and the log moved to history/; caches are gone
    hist = ledger.history_dir(ctx.paths)
    assert (hist / "merged1.jsonl").read_text().count("\n") >= 5
    assert (hist / "merged1.log").read_text() == "output of merged1\n"
    for f in (
        ctx.paths.record_file("merged1"),
        ctx.paths.spool_file("merged1"),
        ctx.paths.secret_file("merged1"),
        ctx.paths.agents_dir / "merged1.lock",
    ):
        assert not f.exists(), f


def test_a_kill_9_midway_through_a_fold_loses_nothing(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    n = 300
    for i in range(n):
        add(ctx, f"a{i:03d}", DONE, ("merged", {"into": "main", "sha": "x"}))
    add(ctx, "live1")
    # kill it once it has folded some, not all
    kill_midway(
        tmp_path,
        "print(ledger.fold(ctx), flush=True)\n",
        lambda: (
            ledger.ledger_file(ctx.paths).exists() and sum(1 for _ in ledger.rows(ctx.paths)) >= 20
        ),
    )
    live = {a.id for a in ctx.store.all()}
    folded_ids = ledger.folded_ids(ctx.paths)
    assert 0 < len(folded_ids) < n, "the kill came too late or too early: nothing tested"
    every = {f"a{i:03d}" for i in range(n)}
    assert every <= live | folded_ids  # each agent is live, folded, or (mid-fold) both
    assert "live1" in live and "live1" not in folded_ids
    # a line in the ledger is whole JSON, never half (appends are whole, fsynced lines)
    for raw in ledger.ledger_file(ctx.paths).read_bytes().splitlines():
        if raw.strip():
            json.loads(raw)
    # the next fold finishes the job; each agent is in the ledger once
    assert ledger.fold(ctx) == len(every & live)
    assert {a.id for a in ctx.store.all()} == {"live1"}
    rows = list(ledger.rows(ctx.paths))
    assert sorted(r["id"] for r in rows) == sorted(every)
    for aid in every:
        assert (ledger.history_dir(ctx.paths) / f"{aid}.jsonl").exists()


def test_the_fold_never_takes_a_live_agent_or_one_in_conflict(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    add(ctx, "w")
    add(ctx, "b", ("state", {"state": "blocked", "cause": "hook:Ask", "question": "q"}))
    later = utcnow() + timedelta(days=400)
    assert ledger.fold(ctx, now=later) == 0
    assert {a.state for a in ctx.store.all()} == {State.WORKING, State.BLOCKED}


# ---- back from the history ------------------------------------------------------------------
def folded_one(tmp_path: Path, aid: str = "old1") -> tuple[Context, dict[str, object]]:
    ctx = make_ctx(tmp_path)
    add(ctx, aid, DONE)
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == 1
    row = ledger.find(ctx.paths, aid)
    assert row is not None
    return ctx, row


def test_a_revived_agent_is_live_then_folds_again_with_a_new_line(tmp_path: Path) -> None:
    ctx, row = folded_one(tmp_path)
    hist = ledger.history_dir(ctx.paths)
    a = ledger.revive(ctx, row)
    assert a.state is State.DONE and a.revived_at is not None
    assert ledger.find(ctx.paths, "old1") is None and ledger.folded_ids(ctx.paths) == set()
    assert ctx.paths.log_file("old1").read_text() == "output of old1\n"
    assert not (hist / "old1.jsonl").exists() and not (hist / "old1.log").exists()
    assert ctx.store.token("old1")  # its hooks can report again
    # Not folded again while the operation that brought it back runs (old as it is)...
    soon = utcnow() + timedelta(minutes=1)
    assert not ledger.fold_one(ctx, "old1", now=soon, keep_s=0)
    ctx.store.emit("old1", "ack")
    assert not ledger.fold_one(ctx, "old1", now=soon, keep_s=0)
    # ...then by the usual rules, with the line of now: one line per agent, acked.
    later = utcnow() + ledger.REVIVE_GRACE + timedelta(seconds=5)
    assert ledger.fold_one(ctx, "old1", now=later, keep_s=0, done=ledger.folded_ids(ctx.paths))
    rows = list(ledger.rows(ctx.paths))
    assert [r["id"] for r in rows] == ["old1"]
    assert rows[0]["report"]["awaiting_review"] is False
    assert (hist / "old1.log").read_text() == "output of old1\n"


def test_a_revive_killed_after_linking_back_folds_cleanly(tmp_path: Path) -> None:
    # What a kill -9 between a revive's link-back and its ledger line leaves: the spool in
    # both places (one file), the old ledger line.  The agent is live; the next fold puts
    # it back whole - the live spool gone (rename(2) onto its own link does nothing).
    ctx, _row = folded_one(tmp_path)
    hist = ledger.history_dir(ctx.paths)
    os.link(hist / "old1.jsonl", ctx.paths.spool_file("old1"))
    assert [a.id for a in ctx.store.all()] == ["old1"]
    ctx.store.emit("old1", "ack")
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == 1
    assert ctx.store.all() == []
    assert not ctx.paths.spool_file("old1").exists()
    assert (hist / "old1.jsonl").read_text().count('"kind":"ack"') == 1
    rows = list(ledger.rows(ctx.paths))
    assert len(rows) == 1 and rows[0]["report"]["awaiting_review"] is False  # the new line


def test_a_revive_keeps_what_a_late_hook_wrote_after_the_fold(tmp_path: Path) -> None:
    ctx, row = folded_one(tmp_path)
    # A window still open when the agent was folded closes: its pane-died lands in a new
    # spool file of the folded id.
    from mullui.events import append_event, new_event

    append_event(ctx.paths, "old1", new_event("exit", exit_code=0))
    a = ledger.revive(ctx, row)
    kinds = [json.loads(x)["kind"] for x in ctx.paths.spool_file("old1").read_text().splitlines()]
    assert kinds[-2:] == ["exit", "revived"]
    assert a.exit_code == 0


def test_a_second_revive_of_the_same_line_changes_nothing(tmp_path: Path) -> None:
    # Two commands naming the same folded agent at once: the second finds it live.
    ctx, row = folded_one(tmp_path)
    a = ledger.revive(ctx, row)
    ctx.store.emit("old1", "ack")
    spool = ctx.paths.spool_file("old1").read_bytes()
    b = ledger.revive(ctx, row)
    assert ctx.paths.spool_file("old1").read_bytes() == spool  # no event lost or added
    assert b.seq == a.seq and b.is_acked()
    assert ledger.folded_ids(ctx.paths) == set()


def test_a_folded_remote_agent_is_refused_naming_its_host(tmp_path: Path) -> None:
    from mullui.errors import MulluiError
    from mullui.workspace import Workspace

    ctx = make_ctx(tmp_path)
    add(ctx, "far1", DONE, host="devbox")
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == 1
    ws = Workspace(ctx.paths, cwd=tmp_path)
    with pytest.raises(MulluiError) as e:
        ws.get("far1")
    assert "in the history" in e.value.message and "host devbox" in e.value.message
    assert "\n" not in e.value.message
    assert ctx.store.all() == [] and ledger.folded_ids(ctx.paths) == {"far1"}
    a, row = ws.find("far1")  # read only: still there to read
    assert row is not None and a.host == "devbox" and a.state is State.DONE


def test_a_kill_9_midway_through_revives_loses_nothing(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    n = 200
    for i in range(n):
        add(ctx, f"r{i:03d}", DONE)
    assert ledger.fold(ctx, now=utcnow() + timedelta(days=15)) == n
    hist = ledger.history_dir(ctx.paths)
    events = {f"r{i:03d}": (hist / f"r{i:03d}.jsonl").read_text() for i in range(n)}
    kill_midway(
        tmp_path,
        "for row in list(ledger.rows(ctx.paths)):\n    ledger.revive(ctx, row)\n",
        lambda: sum(1 for _ in ctx.paths.spool_dir.glob("r*.jsonl")) >= 20,
    )
    live = {a.id for a in ctx.store.all()}
    folded = ledger.folded_ids(ctx.paths)
    assert 0 < len(live) < n, "the kill came too late or too early: nothing tested"
    assert set(events) <= live | folded  # live, folded, or (mid-revive) both
    # The next fold (past the grace) takes every one back whole: one ledger line each,
    # every event it had, plus at most its `revived`.
    later = utcnow() + ledger.REVIVE_GRACE + timedelta(days=15)
    ledger.fold(ctx, now=later)
    assert ctx.store.all() == []
    assert sorted(r["id"] for r in ledger.rows(ctx.paths)) == sorted(events)
    for aid, before in events.items():
        after = (hist / f"{aid}.jsonl").read_text()
        assert after.startswith(before), aid
        extra = [json.loads(x)["kind"] for x in after[len(before) :].splitlines()]
        assert extra in ([], ["revived"]), (aid, extra)
        assert not ctx.paths.spool_file(aid).exists()


def test_a_folded_agent_whose_events_are_gone_is_read_from_its_line(tmp_path: Path) -> None:
    from mullui.errors import MulluiError
    from mullui.workspace import Workspace

    ctx, row = folded_one(tmp_path)
    (ledger.history_dir(ctx.paths) / "old1.jsonl").unlink()
    a = ledger.folded_agent(ctx.paths, row)
    assert (a.id, a.name, a.state, a.task) == ("old1", "old1", State.DONE, "task old1")
    with pytest.raises(MulluiError) as e:
        ledger.revive(ctx, row)
    assert "events were not kept" in e.value.message and "\n" not in e.value.message
    assert ctx.store.all() == [] and ledger.folded_ids(ctx.paths) == {"old1"}
    # the workspace says the same (here: no repository, so nothing left on disk either)
    with pytest.raises(MulluiError) as e:
        Workspace(ctx.paths, cwd=tmp_path).get("old1")
    assert "in the history" in e.value.message


def test_a_revived_removed_agent_stays_live_until_its_operation_ends(tmp_path: Path) -> None:
    # `mullui merge` of a removed agent whose branch is still there: brought back, then
    # the merge runs (seconds of git).  A fold meanwhile (the supervisor's pass, a `mullui
    # ls`) would take it away, and the merge's `merged` event would land in a new spool of
    # its own, never in the agent's history (its ledger line: not merged).
    ctx = make_ctx(tmp_path)
    add(ctx, "rm1", ("stop", {}), ("removed", {}))
    assert ledger.fold(ctx) == 1  # removed: folded at once
    ledger.revive(ctx, ledger.find(ctx.paths, "rm1") or {})
    assert ledger.fold(ctx) == 0, "folded while the operation that brought it back runs"
    ctx.store.emit("rm1", "merged", into="main", sha="abc")
    assert ledger.fold(ctx) == 1  # its operation is over: removed, folded at once again
    rows = list(ledger.rows(ctx.paths))
    assert [r["id"] for r in rows] == ["rm1"] and rows[0]["report"]["merged"] is True
    assert not ctx.paths.spool_file("rm1").exists()


def test_a_revived_agent_removed_is_folded_at_once(tmp_path: Path) -> None:
    # `mullui rm` of a folded agent: it comes back, its work is saved, it is removed; the
    # removal ends the operation, so the fold takes it back at once (not after the grace).
    ctx, row = folded_one(tmp_path)
    ledger.revive(ctx, row)
    assert ledger.fold(ctx) == 0
    ctx.store.emit("old1", "removed")
    assert ledger.fold(ctx) == 1
    assert [r["id"] for r in ledger.rows(ctx.paths)] == ["old1"]
    kept = (ledger.history_dir(ctx.paths) / "old1.jsonl").read_text()
    assert '"kind":"removed"' in kept
    assert not ctx.paths.spool_file("old1").exists()


def test_a_folded_agent_with_no_events_kept_and_a_late_spool_is_refused_not_hung(
    tmp_path: Path,
) -> None:
    # Its kept events are gone, and an event came for it after its fold (a spool of its
    # own, with no agent in it): bringing it back is refused in one line - before, the
    # revive took the agent's lock a second time in the same process and hung for good.
    from mullui.events import append_event, new_event

    ctx, _row = folded_one(tmp_path)
    (ledger.history_dir(ctx.paths) / "old1.jsonl").unlink()
    append_event(ctx.paths, "old1", new_event("exit", exit_code=0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MULLUI_HOME": str(tmp_path / "home")}
    code = (
        "import pathlib, sys\n"
        "from mullui import ledger\n"
        "from mullui.context import Context\n"
        "from mullui.errors import MulluiError\n"
        "ctx = Context(cwd=pathlib.Path(sys.argv[1]))\n"
        "try:\n"
        "    ledger.revive(ctx, ledger.find(ctx.paths, 'old1'))\n"
        "except MulluiError as e:\n"
        "    print(e.message)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert "in the history" in r.stdout and len(r.stdout.strip().splitlines()) == 1, r.stdout
