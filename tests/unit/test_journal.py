"""The change journal stays small (bounded lines, compaction) and readers stream it from
logical cursors that survive compaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mullui import journal
from mullui.model import HISTORY_KEEP, Agent
from mullui.paths import get_paths
from mullui.store import Store

ROOT = Path(__file__).resolve().parents[2]


def make_store(tmp_path: Path) -> Store:
    return Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))


def entries(path: Path, cursor: int = 0) -> list[tuple[dict, int]]:  # type: ignore[type-arg]
    return list(journal.read(path, cursor))


def test_2000_events_of_one_agent_keep_the_journal_under_5_mb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "COMPACT_AT", 2 * 1024 * 1024)
    st = make_store(tmp_path)
    st.create(Agent(id="ab12", name="x", profile="demo", task="t" * 3000))
    st.emit("ab12", "start")
    t0 = time.monotonic()
    question = "Bash: " + "pytest -x tests/ && ruff check . " * 9  # ~300 chars, as shown
    for _ in range(1000):  # 1,000 permission prompts, each answered: 2,000 state changes
        st.emit("ab12", "state", state="blocked", cause="hook:PermissionRequest", question=question)
        st.emit("ab12", "state", state="working", cause="hook:PostToolUse")
    took = time.monotonic() - t0
    size = st.paths.changes_file.stat().st_size
    a = st.load("ab12")
    assert a.seq == 2002 and len(a.history) == HISTORY_KEEP  # the record keeps a tail
    assert len(st.full_history(a)) == 2002  # the spool keeps them all
    print(f"\n2000 events: journal {size / 1e6:.2f} MB, {took / 2000 * 1000:.1f} ms per event")
    assert size < 5 * 1024 * 1024
    # every line is bounded: no line carries the whole history
    for e, _ in entries(st.paths.changes_file):
        assert len(json.dumps(e)) < 20_000
    # a reader from the start gets the agent's latest state
    last = entries(st.paths.changes_file)[-1][0]
    assert last["seq"] == 2002 and last["record"]["state"] == "working"


def test_cursors_survive_compaction(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"

    def line(aid: str, seq: int, state: str) -> bytes:
        t = {"seq": seq, "state": state, "cause": "c", "at": "2026-01-01T00:00:00.000Z"}
        rec = {"id": aid, "seq": seq, "state": state, "history": [t]}
        return journal.encode({"agent": aid, "seq": seq, "transitions": [t], "record": rec})

    for i in range(1, 6):
        journal.append(path, line("a", i, "working"))
    journal.append(path, line("b", 1, "done"))
    caught_up = journal.end_cursor(path)
    behind = entries(path)[1][1]  # a reader that read two lines of the old file
    journal.append(path, line("a", 6, "blocked"), compact_at=1)  # compacts after this line
    assert path.read_bytes().startswith(b'{"journal": 1, "start": ')
    # the caught-up reader: only what came after it (here: the compacted lines, once)
    got = [(e["agent"], e["seq"]) for e, _ in entries(path, caught_up)]
    assert got == [("b", 1), ("a", 6)]
    # the reader that was behind: every agent's latest state
    got = [(e["agent"], e["seq"]) for e, _ in entries(path, behind)]
    assert got == [("b", 1), ("a", 6)]
    # cursors only grow, and a reader at the end reads nothing
    end = journal.end_cursor(path)
    assert end > caught_up and entries(path, end) == []
    journal.append(path, line("b", 2, "working"))
    assert [(e["agent"], e["seq"]) for e, _ in entries(path, end)] == [("b", 2)]
    # the compacted line carries the current state's transition (a notifier behind it
    # still says "done" once)
    snap = next(e for e, _ in entries(path, 0) if e["agent"] == "b")
    assert snap["transitions"][-1]["state"] == "done"


def test_compaction_drops_agents_without_a_record(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    for aid in ("keep", "gone"):
        journal.append(path, journal.encode({"agent": aid, "seq": 1, "transitions": []}))
    journal.compact(path, keep=lambda aid: aid == "keep")
    assert [e["agent"] for e, _ in entries(path)] == ["keep"]


def test_a_kill_9_during_compaction_leaves_a_whole_journal(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    big = b"".join(
        journal.encode({"agent": f"a{i % 500}", "seq": i, "transitions": [], "pad": "x" * 900})
        for i in range(40_000)
    )
    script = (
        "import sys; from pathlib import Path; from mullui import journal; "
        "journal.compact(Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in (0.05, 0.15, 0.3, 0.6):
        path.write_bytes(big)
        p = subprocess.Popen([sys.executable, "-c", script, str(path)], env=env)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        got = entries(path)
        assert len(got) in (40_000, 500), (delay, len(got))  # the old file or the new one
        leftovers = [x for x in tmp_path.iterdir() if x.name != path.name]
        for x in leftovers:  # at most a temp file, never a half journal in place
            assert x.name.startswith(".changes.jsonl.")
            x.unlink()


def test_events_since_0_streams_with_bounded_memory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    st = Store(get_paths({"MULLUI_HOME": str(home)}))
    # A journal of 120 MB left by an older mullui (whole records with whole histories).
    hist = [
        {"seq": i, "state": "working", "cause": "c", "at": "2026-01-01T00:00:00.000Z"}
        for i in range(1, 301)
    ]
    rec = {"id": "old1", "seq": 300, "state": "working", "history": hist}
    one = journal.encode({"agent": "old1", "seq": 300, "transitions": hist[-1:], "record": rec})
    n = (120 << 20) // len(one)
    with st.paths.changes_file.open("wb") as f:
        for _ in range(n):
            f.write(one)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MULLUI_HOME": str(home)}
    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'mullui', 'events', '--since', '0'],"
        " stdout=subprocess.PIPE, cwd=sys.argv[1])\n"
        "lines = p.stdout.count(b'\\n')\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
        "print(p.returncode, lines, rss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rc, lines, rss_mb = (int(x) for x in out.stdout.split())
    print(f"\nevents --since 0 over {n * len(one) / 1e6:.0f} MB: {lines} lines, {rss_mb} MB RSS")
    assert rc == 0 and lines == n, out.stderr
    assert rss_mb < 100  # the whole file would be 120 MB + its parse
