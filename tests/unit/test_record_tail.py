"""A record keeps the tail of its history (each event's fold rewrites it: its size must not
grow with the agent's age); the whole history stays in the append-only spool, where the
report, the ledger's fold and the change journal's delta find every state change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mullui import journal, ledger, report
from mullui.context import Context
from mullui.events import encode, new_event
from mullui.model import HISTORY_KEEP, Agent, State, iso
from mullui.paths import get_paths
from mullui.store import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def make_ctx(tmp_path: Path) -> Context:
    return Context(get_paths({"MULLUI_HOME": str(tmp_path / "home")}), cwd=tmp_path)


def write_spool(st: Store, aid: str, events: list[dict[str, Any]]) -> None:
    """Append events to the agent's spool in one write (2,000 emits would be slow)."""
    with st.paths.spool_file(aid).open("ab") as f:
        f.write(b"".join(encode({**e, "agent": aid}) for e in events))


def long_agent(st: Store, aid: str, pairs: int) -> None:
    """Created at T0, started at +1 s, working at +2 s, then ``pairs`` permission prompts
    (blocked 1 s, working 2 s each): 3 + 2 * ``pairs`` state changes."""
    st.create(Agent(id=aid, name=aid, profile="shell", task="t", created_at=T0))
    t = T0 + timedelta(seconds=2)
    evs = [
        {**new_event("start"), "at": iso(T0 + timedelta(seconds=1))},
        {**new_event("state", state="working", cause="spawned"), "at": iso(t)},
    ]
    for i in range(pairs):
        t += timedelta(seconds=2)
        ev = new_event("state", state="blocked", cause="hook:PermissionRequest", question=f"q{i}")
        evs.append({**ev, "at": iso(t)})
        t += timedelta(seconds=1)
        evs.append({**new_event("state", state="working", cause="hook:PostToolUse"), "at": iso(t)})
    write_spool(st, aid, evs)


def test_the_record_keeps_a_tail_and_its_size_does_not_grow(tmp_path: Path) -> None:
    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    long_agent(st, "ab12", 1000)
    a = st.load("ab12")
    assert a.seq == 2003 and a.state is State.WORKING
    assert len(a.history) == HISTORY_KEEP and a.history_whole()
    assert [t.seq for t in a.history] == list(range(2003 - HISTORY_KEEP + 1, 2004))
    size = st.paths.record_file("ab12").stat().st_size
    assert size < 16_000  # the old record held all 2,003 transitions: ~190 KB
    for i in range(200):
        st.emit("ab12", "state", state="blocked" if i % 2 == 0 else "working", cause="c")
    assert st.load("ab12").seq == 2203
    assert st.paths.record_file("ab12").stat().st_size <= size + 500
    # the whole history is in the spool, in order
    full = st.full_history(st.load("ab12"))
    assert [t.seq for t in full] == list(range(1, 2204))
    assert [t.state for t in full[:4]] == [
        State.QUEUED,
        State.STARTING,
        State.WORKING,
        State.BLOCKED,
    ]
    assert full[-HISTORY_KEEP:] == st.load("ab12").history


def test_report_and_fold_count_every_transition_not_only_the_tail(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    long_agent(ctx.store, "ab12", 1000)
    end = T0 + timedelta(seconds=2 + 3 * 1000 + 5)
    write_spool(ctx.store, "ab12", [{**new_event("stop", cause="stopped by user"), "at": iso(end)}])
    a = ctx.store.load("ab12")
    assert len(a.history) == HISTORY_KEEP
    row = next(r for r in report.ledger(ctx, now=end)["agents"] if r["id"] == "ab12")
    want = {"queued_s": 1.0, "starting_s": 1.0, "working_s": 2.0 * 1000 + 5, "blocked_s": 1000.0}
    assert {k: row[k] for k in want} == want
    assert row["wall_s"] == 2 + 3 * 1000 + 5 and row["runs"] == 1
    # the ledger's fold computes its row once, from every transition as well
    ctx.store.emit("ab12", "removed")
    assert ledger.fold(ctx, now=end + timedelta(seconds=1)) == 1
    folded = next(r for r in ledger.rows(ctx.paths) if r["id"] == "ab12")["report"]
    assert {k: folded[k] for k in want} == want and folded["wall_s"] == row["wall_s"]


def test_an_old_record_with_its_whole_history_loads_and_is_written_small(tmp_path: Path) -> None:
    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    long_agent(st, "ab12", 150)
    a = st.load("ab12")
    rec = json.loads(st.paths.record_file("ab12").read_text())
    rec["history"] = [t.to_json() for t in st.full_history(a)]  # as older mullui wrote it
    assert len(rec["history"]) == rec["seq"] == 303
    st.paths.record_file("ab12").write_text(json.dumps(rec))
    old = Store(st.paths).load("ab12")  # a fresh process: no cached record
    assert old.seq == 303 and len(old.history) == HISTORY_KEEP and old.history_whole()
    assert old.state is State.WORKING
    b = Store(st.paths).emit("ab12", "state", state="done", cause="hook:Stop")
    assert (
        b.seq == 304
        and len(json.loads(st.paths.record_file("ab12").read_text())["history"]) == HISTORY_KEEP
    )
    assert len(Store(st.paths).full_history(b)) == 304


def test_a_torn_long_record_is_rebuilt_from_its_spool(tmp_path: Path, capsys: Any) -> None:
    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    long_agent(st, "ab12", 150)
    good = st.load("ab12")
    raw = st.paths.record_file("ab12").read_bytes()
    st.paths.record_file("ab12").write_bytes(raw[: len(raw) // 2])
    again = Store(st.paths).load("ab12")
    assert "rebuilt from its event log" in capsys.readouterr().err
    assert again.seq == good.seq == 303 and again.history == good.history


def test_a_catch_up_past_the_tail_journals_every_new_transition(tmp_path: Path) -> None:
    """A reader away for 100 state changes applies them at once: the record keeps the
    last ones, the journal line (the notifier's and remote mirrors' feed) has all 100."""
    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    long_agent(st, "ab12", 10)
    before = st.load("ab12").seq
    cursor = journal.end_cursor(st.paths.changes_file)
    evs = [
        new_event("state", state="blocked" if i % 2 == 0 else "working", cause=f"c{i}")
        for i in range(100)
    ]
    write_spool(st, "ab12", evs)
    a = Store(st.paths).load("ab12")
    assert a.seq == before + 100
    lines = [e for e, _ in journal.read(st.paths.changes_file, cursor)]
    assert len(lines) == 1
    got = [t["seq"] for t in lines[0]["transitions"]]
    assert got == list(range(before + 1, before + 101))
    assert [t["cause"] for t in lines[0]["transitions"]] == [f"c{i}" for i in range(100)]
    # the line's record carries them too (a remote host's mirror reads its history)
    assert [t["seq"] for t in lines[0]["record"]["history"]] == got
