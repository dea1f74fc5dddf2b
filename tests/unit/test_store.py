"""Records are written atomically, read tolerantly, and rebuilt from the spool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mullui.events import append_line, new_event, read_events
from mullui.model import Agent, State
from mullui.paths import get_paths
from mullui.store import Store, atomic_write

ROOT = Path(__file__).resolve().parents[2]


def make_store(tmp_path: Path) -> Store:
    return Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))


def test_create_and_catch_up(tmp_path: Path) -> None:
    st = make_store(tmp_path)
    a, token = st.create(Agent(id="ab12", name="x", profile="shell", task="t"))
    assert len(token) == 32 and st.token("ab12") == token
    assert oct(st.paths.secret_file("ab12").stat().st_mode & 0o777) == "0o600"
    st.emit("ab12", "start")
    b = st.emit("ab12", "state", state="working", cause="spawned")
    assert b.state is State.WORKING and b.seq == 3
    rec = json.loads(st.paths.record_file("ab12").read_text())
    assert rec["_offset"] == st.paths.spool_file("ab12").stat().st_size


def test_torn_record_is_rebuilt_from_spool(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    st = make_store(tmp_path)
    st.create(Agent(id="ab12", name="x", profile="shell", task="t"))
    st.emit("ab12", "start")
    good = st.emit("ab12", "state", state="blocked", cause="hook:PermissionRequest", question="q?")
    raw = st.paths.record_file("ab12").read_bytes()
    st.paths.record_file("ab12").write_bytes(raw[: len(raw) // 2])  # torn in half
    again = Store(st.paths).load("ab12")
    assert again.state is State.BLOCKED and again.question == "q?" and again.seq == good.seq
    assert "rebuilt from its event log" in capsys.readouterr().err
    json.loads(st.paths.record_file("ab12").read_text())  # rewritten whole


def test_lost_record_is_rebuilt_and_listed(tmp_path: Path) -> None:
    st = make_store(tmp_path)
    st.create(Agent(id="ab12", name="x", profile="shell", task="t"))
    st.paths.record_file("ab12").unlink()
    assert [a.id for a in Store(st.paths).all()] == ["ab12"]


def test_partial_spool_line_waits_for_its_end(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    append_line(p, b'{"kind":"a"}\n{"kind":')
    evs, off = read_events(p)
    assert [e["kind"] for e in evs] == ["a"] and off == len(b'{"kind":"a"}\n')
    append_line(p, b'"b"}\nnot json\n')
    evs, off2 = read_events(p, off)
    assert [e["kind"] for e in evs] == ["b"] and off2 == p.stat().st_size


def test_duplicate_event_line_applied_once(tmp_path: Path) -> None:
    st = make_store(tmp_path)
    st.create(Agent(id="ab12", name="x", profile="shell", task="t"))
    ev = new_event("start")
    st.append("ab12", dict(ev))
    st.append("ab12", dict(ev))
    a = st.load("ab12")
    assert a.state is State.STARTING and a.seq == 2


def test_kill_between_write_and_rename_leaves_old_record(tmp_path: Path) -> None:
    target = tmp_path / "rec.json"
    target.write_text('{"v": "old"}')
    # A real process dies (SIGKILL-like os._exit) after writing + fsyncing the temp file,
    # right before the rename.
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import mullui.store as s
        def die(*a, **k):
            os._exit(9)
        s.os.replace = die
        s.atomic_write(__import__("pathlib").Path({str(target)!r}), b'{{"v": "new"}}')
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 9
    assert json.loads(target.read_text()) == {"v": "old"}
    atomic_write(target, b'{"v": "new"}')
    assert json.loads(target.read_text()) == {"v": "new"}
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".rec.json.")]
    assert len(leftovers) == 1  # the dead writer's temp file; never read as a record
    assert os.stat(target).st_mode & 0o777 == 0o600


def test_concurrent_catch_up_applies_each_event_once(tmp_path: Path) -> None:
    st = make_store(tmp_path)
    st.create(Agent(id="ab12", name="x", profile="shell", task="t"))
    for i in range(50):
        st.append("ab12", new_event("usage", tokens_in=i))
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from mullui.store import Store
        from mullui.paths import get_paths
        Store(get_paths({{"MULLUI_HOME": {str(tmp_path / "home")!r}}})).load("ab12")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(6)]
    assert all(p.wait(30) == 0 for p in procs)
    lines = st.paths.changes_file.read_text().splitlines()
    # one journal line for "created" and exactly one for the 50-event catch-up
    assert len(lines) == 2, lines
    assert st.load("ab12").tokens_in == 49
