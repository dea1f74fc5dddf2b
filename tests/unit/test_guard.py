"""The collision guard's decision over its index: pure logic plus real files on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mullui import guard

REPO = "/src/repo"


def index(files: dict[str, list[str]], default: str = "warn", **kw: object) -> dict[str, object]:
    agents = {
        "a": {
            "name": "alpha",
            "branch": "mullui/alpha-a",
            "worktree": "/wt/a",
            "profile": "claude",
        },
        "b": {"name": "beta", "branch": "mullui/beta-b", "worktree": "/wt/b", "profile": "shell"},
        "c": {"name": "gamma", "branch": "mullui/gamma-c", "worktree": "/wt/c", "profile": "shell"},
    }
    return guard.build_index(REPO, agents, files, default, kw.get("profiles"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "cwd", "rel"),
    [
        ("/wt/a/src/app.py", None, "src/app.py"),
        ("src/app.py", "/wt/a", "src/app.py"),
        ("./src/app.py", "/wt/a", "src/app.py"),
        ("app.py", "/wt/a/src", "src/app.py"),
        ("/wt/a/src/../src/./app.py", None, "src/app.py"),
        ("/wt/b/src/app.py", None, None),  # another worktree: not this agent's repository copy
        ("/etc/passwd", None, None),
        ("/wt/a", None, None),
        ("/wt/a/.git/config", None, None),
        ("", None, None),
    ],
)
def test_paths_are_made_relative_to_the_worktree_root(
    path: str, cwd: str | None, rel: str | None
) -> None:
    assert guard.relative(path, cwd, "/wt/a") == rel


def test_a_symlinked_worktree_dir_is_the_same_place(tmp_path: Path) -> None:
    real = tmp_path / "real-wt"
    (real / "src").mkdir(parents=True)
    link = tmp_path / "link-wt"
    link.symlink_to(real)
    assert guard.relative(str(link / "src" / "app.py"), None, str(real)) == "src/app.py"
    assert guard.relative(str(real / "src" / "app.py"), None, str(link)) == "src/app.py"


def test_only_other_agents_changes_count() -> None:
    doc = index({"src/app.py": ["a", "b"], "own.py": ["a"]})
    d = guard.decide(doc, "a", "src/app.py", "block")
    assert d is not None and [o.id for o in d.others] == ["b"]
    assert "beta" in d.reason() and "mullui/beta-b" in d.reason()
    assert guard.decide(doc, "a", "own.py", "block") is None  # its own earlier change
    assert guard.decide(doc, "a", "nobody.py", "block") is None
    assert guard.decide(doc, "a", "src/app.py", "off") is None


def test_merged_or_removed_agents_do_not_count() -> None:
    doc = index({"src/app.py": ["b", "c"]})
    d = guard.decide(doc, "a", "src/app.py", "warn", gone=lambda other: other == "b")
    assert d is not None and [o.id for o in d.others] == ["c"]
    assert guard.decide(doc, "a", "src/app.py", "warn", gone=lambda other: True) is None


def test_mode_precedence_agent_then_profile_then_default() -> None:
    doc = index({}, default="warn", profiles={"claude": "ask"})
    assert guard.mode_for(doc, "claude", None) == "ask"
    assert guard.mode_for(doc, "shell", None) == "warn"
    assert guard.mode_for(doc, "claude", "block") == "block"
    assert guard.mode_for(doc, "claude", "bogus") == "ask"


def write_record(state: Path, aid: str, **fields: object) -> None:
    (state / "agents").mkdir(parents=True, exist_ok=True)
    rec = {"id": aid, "profile": "claude", "repo": REPO, "worktree": f"/wt/{aid}", **fields}
    (state / "agents" / f"{aid}.json").write_text(json.dumps(rec))
    (state / "secrets").mkdir(exist_ok=True)
    (state / "secrets" / aid).write_text(f"token-{aid}\n")


def guard_events(state: Path, aid: str) -> list[dict[str, object]]:
    """What the guard appended to the agent's raw spool, as the store folds it (the token
    checked, the ``guard`` line translated)."""
    from mullui.paths import Paths, get_paths
    from mullui.rawspool import translate_raw

    base = get_paths({"MULLUI_HOME": str(state.parent / "home")})
    batch = translate_raw(Paths(base.config_dir, state, base.data_dir), aid, 0, "claude")
    assert not (state / "hook-refused.log").exists()
    return batch.events


@pytest.fixture(autouse=True)
def _no_agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULLUI_AGENT_TOKEN", raising=False)


def payload(path: str, tool: str = "Write") -> bytes:
    key = "notebook_path" if tool == "NotebookEdit" else "file_path"
    return json.dumps({"tool_name": tool, "tool_input": {key: path}, "cwd": "/wt/a"}).encode()


def test_hook_answers_from_the_index_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_record(state, "a")
    write_record(state, "b", profile="shell")
    assert guard.write_index(state, index({"src/app.py": ["b"]}, default="block"))
    assert not guard.write_index(state, index({"src/app.py": ["b"]}, default="block"))  # same
    assert (state / "answer" / "PreToolUse").exists()

    out = guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/app.py"))
    assert out is not None
    hso = json.loads(out)["hookSpecificOutput"]
    assert hso["permissionDecision"] == "deny" and "beta" in hso["permissionDecisionReason"]
    spool = guard_events(state, "a")
    ev = spool[-1]
    assert (ev["kind"], ev["action"], ev["file"], ev["other"], ev["source"]) == (
        "guard",
        "block",
        "src/app.py",
        "b",
        "hook:guard",
    )
    # ONE line in the raw spool, in spool.sh's format
    (line,) = (state / "spool" / "a.hooks").read_text().splitlines()
    assert line.split("\t")[:3] == ["1", "guard", "s"] and line.endswith("\ttoken-a")

    # A file nobody else changed, a read-only tool, another event: no answer, nothing written.
    assert guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/free.py")) is None
    assert guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/app.py", "Read")) is None
    assert guard.hook_answer(state, "a", "PostToolUse", payload("/wt/a/src/app.py")) is None
    assert guard.hook_answer(state, "a", "PreToolUse", b"{not json") is None
    assert len(guard_events(state, "a")) == len(spool)

    # B's own edit of its own file: never.
    assert guard.hook_answer(state, "b", "PreToolUse", payload("/wt/b/src/app.py")) is None

    # B merged since the index was written, or moved to the history: does not count.
    write_record(state, "b", profile="shell", merged_into="main")
    assert guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/app.py")) is None
    (state / "agents" / "b.json").unlink()
    assert guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/app.py")) is None


def test_ask_blocks_the_agent_and_warn_adds_context(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_record(state, "a", extra={"guard": "ask"})
    write_record(state, "b", profile="shell")
    write_record(state, "c", extra={"guard": "warn"}, worktree="/wt/c")
    guard.write_index(state, index({"src/app.py": ["b"]}, default="off"))
    out = guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/src/app.py", "Edit"))
    assert out is not None and json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "ask"
    evs = guard_events(state, "a")
    assert [(e["kind"], e.get("cause")) for e in evs][-1] == ("state", "collision:src/app.py")

    out = guard.hook_answer(state, "c", "PreToolUse", payload("/wt/c/src/app.py", "MultiEdit"))
    assert out is not None
    answer = json.loads(out)
    assert "permissionDecision" not in answer["hookSpecificOutput"]
    assert "beta" in answer["hookSpecificOutput"]["additionalContext"]


def test_json_without_import_json_reads_and_writes_as_json_does() -> None:
    docs = [
        {"a": [1, 2.5, None, True, False, 'x\u00e9\\"\n', {"b": []}], "c": -3},
        "plain",
        [],
    ]
    for doc in docs:
        assert guard.loads(json.dumps(doc).encode()) == doc
        assert guard.loads(f"  {json.dumps(doc)}\n") == doc
        assert json.loads(guard.dumps(doc)) == doc
        assert guard.dumps(doc) == json.dumps(doc)
    for bad in (b"", b"{", b"{} x", b"[1,]", b"\xff", b"[" * 100000):
        with pytest.raises(ValueError):
            guard.loads(bad)


def test_a_guard_line_carries_only_guard_events(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_record(state, "a")
    forged = [
        {"kind": "state", "state": "done", "cause": "x"},
        {"kind": "cost", "usd": 5},
        {"kind": "guard", "action": "block", "file": "f.py", "other": "b", "evil": 1},
    ]
    guard.record(state, "a", forged)
    (ev,) = guard_events(state, "a")
    assert (ev["kind"], ev["action"], ev["file"], "evil" in ev) == ("guard", "block", "f.py", False)


def test_markers_follow_the_indexes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    guard.write_index(state, index({"x.py": ["b"]}, default="off"))
    assert not (state / "answer" / "PreToolUse").exists()  # guard off everywhere
    guard.write_index(state, index({"x.py": ["b"]}))
    assert (state / "answer" / "PreToolUse").exists()
    guard.write_index(state, index({}))
    assert not (state / "answer" / "PreToolUse").exists()  # nothing left to guard


def test_a_torn_or_foreign_index_is_no_answer(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_record(state, "a")
    path = guard.index_file(state, REPO)
    path.parent.mkdir(parents=True)
    for junk in (b"{", b"[]", b'{"v": 99, "agents": {}, "files": {}}', os.urandom(64)):
        path.write_bytes(junk)
        assert guard.hook_answer(state, "a", "PreToolUse", payload("/wt/a/x.py")) is None


def test_the_reducer_records_hits_and_raises_one_item_per_new_pair_and_file() -> None:
    from mullui.model import Agent, State
    from mullui.reducer import apply_event

    a: Agent | None = Agent(id="a", name="alpha", profile="claude", task="t", state=State.WORKING)

    def guard_ev(file: str, action: str = "warn") -> dict[str, object]:
        return {
            "kind": "guard", "action": action, "file": file, "other": "b",
            "other_name": "beta", "other_branch": "mullui/beta-b", "at": "2026-01-01T00:00:00Z",
        }  # fmt: skip

    a = apply_event(a, guard_ev("src/app.py"))
    assert a is not None and a.conflict is not None and a.conflict.kind == "guard"
    assert a.in_inbox() and "beta" in a.why()
    from mullui.tui import cells

    shown = cells.inbox_state_cell(a, {}).plain
    assert shown.endswith("collision") and "conflict" not in shown  # not a merge conflict
    first = a.conflict
    a = apply_event(a, guard_ev("src/app.py"))  # the same pair and file again
    assert a is not None and a.conflict == first and len(a.guarded) == 1
    a = apply_event(a, {"kind": "ack"})
    a = apply_event(a, guard_ev("src/app.py"))
    assert a is not None and a.conflict is None  # not new: no second item
    a = apply_event(a, guard_ev("src/other.py"))
    assert a is not None and a.conflict is not None and a.conflict.files == ("src/other.py",)
    # the radar's next pass (an overlap, no conflict) keeps the guard's item
    a = apply_event(
        a,
        {
            "kind": "collisions",
            "collisions": [{"agent": "b", "files": ["src/app.py"], "conflict": False}],
        },
    )
    assert a is not None and a.conflict is not None
    cols = a.to_ls_json()["collisions"]
    assert cols[0]["agent"] == "b" and [g["file"] for g in cols[0]["guard"]] == [
        "src/app.py",
        "src/other.py",
    ]


def test_the_permission_dialog_after_ask_keeps_the_collision_cause() -> None:
    from mullui.model import Agent, State
    from mullui.reducer import apply_event

    a: Agent | None = Agent(id="a", name="alpha", profile="claude", task="t", state=State.WORKING)
    a = apply_event(
        a,
        {
            "kind": "state",
            "state": "blocked",
            "cause": "collision:src/app.py",
            "question": "collision: edit src/app.py?",
        },
    )
    a = apply_event(
        a,
        {
            "kind": "state",
            "state": "blocked",
            "cause": "hook:PermissionRequest",
            "question": "Write: src/app.py",
        },
    )
    assert a is not None and (a.state, a.cause) == (State.BLOCKED, "collision:src/app.py")
    gemini = {"cause": "hook:Notification:ToolPermission", "question": "Edit: src/app.py"}
    a = apply_event(a, {"kind": "state", "state": "blocked", **gemini})
    assert a is not None and (a.state, a.cause) == (State.BLOCKED, "collision:src/app.py")
    a = apply_event(a, {"kind": "state", "state": "working", "cause": "hook:PostToolUse"})
    assert a is not None and a.state is State.WORKING


def test_a_denied_reply_to_the_collision_dialog_ends_the_collision_cause() -> None:
    """``mullui send A n`` closed the dialog the guard's ``ask`` opened: the agent waits at
    its prompt (``reply:denied``), no longer on the dialog (a next reply is typed as text)."""
    from mullui.model import Agent, State
    from mullui.operations.replies import DENIED_CAUSE
    from mullui.reducer import apply_event

    a: Agent | None = Agent(id="a", name="gem", profile="gemini", task="t", state=State.WORKING)
    for cause in ("collision:src/app.py", "hook:Notification:ToolPermission"):
        a = apply_event(a, {"kind": "state", "state": "blocked", "cause": cause, "question": "q"})
    denied = {"cause": DENIED_CAUSE, "question": "denied q: waiting for what to do instead"}
    a = apply_event(a, {"kind": "state", "state": "blocked", **denied})
    assert a is not None and (a.state, a.cause) == (State.BLOCKED, DENIED_CAUSE)
    assert a.question == denied["question"]


def test_the_fast_hook_path_answers_and_its_raw_event_does_not_undo_ask(tmp_path: Path) -> None:
    """spool.sh --answer -> fasthook/answer.py (python -S -I) -> guard.hook_answer, then the
    store folds the raw PreToolUse line: the agent stays blocked for the collision."""
    import subprocess

    from mullui.agents.base import answer_hook_argv, spool_hook_argv
    from mullui.model import Agent, State
    from mullui.paths import get_paths
    from mullui.store import Store

    st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
    wts = {}
    for aid, profile in (("a1", "claude"), ("b1", "shell")):
        wts[aid] = tmp_path / "wt" / aid
        (wts[aid] / "src").mkdir(parents=True)
        st.create(Agent(id=aid, name=f"n-{aid}", profile=profile, task="t", hooks=True))
        st.emit(aid, "start")
        fields = {"repo": REPO, "worktree": str(wts[aid]), "branch": f"br-{aid}", "base": "main"}
        st.emit(aid, "update", fields=fields)
        st.emit(aid, "state", state="working", cause="spawned")
    members = {
        aid: {"name": f"n-{aid}", "branch": f"br-{aid}", "worktree": str(wts[aid])} for aid in wts
    }
    state = st.paths.state_dir
    guard.write_index(state, guard.build_index(REPO, members, {"src/app.py": ["b1"]}, "ask"))
    assert (state / "answer" / "PreToolUse").exists()
    # the fast hook's pre-filter: only a payload naming a file another agent changed
    assert (state / "answer" / "PreToolUse.a1").read_text() == "src/app.py\n"
    assert (state / "answer" / "PreToolUse.b1").read_text() == ""

    def hook(event: str, body: dict[str, object], argv: tuple[str, ...]) -> bytes:
        env = {
            "PATH": os.environ["PATH"],
            "MULLUI_AGENT_ID": "a1",
            "MULLUI_AGENT_TOKEN": st.token("a1") or "",
            "MULLUI_STATE_DIR": str(state),
        }
        r = subprocess.run([*argv, event], input=json.dumps(body).encode(), env=env,
                           capture_output=True, timeout=60)  # fmt: skip
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
        return r.stdout

    write = {"tool_name": "Write", "cwd": str(wts["a1"]),
             "tool_input": {"file_path": str(wts["a1"] / "src" / "app.py")}}  # fmt: skip
    out = hook("PreToolUse", write, answer_hook_argv())
    assert json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "ask"
    a = st.load("a1")  # folds the guard's events and the raw PreToolUse line
    assert (a.state, a.cause) == (State.BLOCKED, "collision:src/app.py")
    assert hook("PermissionRequest", write, spool_hook_argv()) == b""
    assert st.load("a1").cause == "collision:src/app.py"
    hook("PostToolUse", write, spool_hook_argv())
    assert st.load("a1").state is State.WORKING
    # a file nobody else changed: no answer, nothing recorded
    other = {**write, "tool_input": {"file_path": str(wts["a1"] / "src" / "free.py")}}
    assert hook("PreToolUse", other, answer_hook_argv()) == b""
    assert [g.file for g in st.load("a1").guarded] == ["src/app.py"]


def test_opencode_plugin_payload_gets_a_decision_it_can_throw(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_record(state, "a")
    write_record(state, "b", profile="shell")
    guard.write_index(state, index({"src/app.py": ["b"]}, default="block"))
    assert (state / "answer" / "tool.execute.before").exists()

    def oc(path: str, tool: str = "write") -> bytes:
        body = {"tool": tool, "args": {"filePath": path}, "cwd": "/wt/a", "sessionID": "ses_1"}
        return json.dumps(body).encode()

    out = guard.hook_answer(state, "a", "tool.execute.before", oc("src/app.py"))
    assert out is not None
    said = json.loads(out)
    assert said["decision"] == "block" and "beta" in said["reason"]
    assert "mullui/beta-b" in said["reason"]
    assert guard.hook_answer(state, "a", "tool.execute.before", oc("/wt/a/src/app.py", "edit"))
    assert guard.hook_answer(state, "a", "tool.execute.before", oc("src/app.py", "read")) is None
    assert guard.hook_answer(state, "a", "tool.execute.before", oc("src/free.py")) is None


def test_an_ask_that_ran_unasked_means_working_and_tells_the_human_as_warn_would() -> None:
    """OpenCode with edits allowed ran the edit the guard's ``ask`` held: its plugin's
    ``guard.unasked`` moves the agent back to working, with one inbox item for the pair and
    file (as ``warn``); another unasked edit of that file adds none."""
    from mullui.agents.opencode import UNASKED_EVENT, OpenCodeProfile
    from mullui.model import Agent, State
    from mullui.reducer import GUARD_UNASKED_CAUSE, apply_event

    (ev,) = [
        e
        for e in OpenCodeProfile().translate(UNASKED_EVENT, {"sessionID": "ses_1"}, [])
        if e["kind"] == "state"
    ]
    assert (ev["state"], ev["cause"]) == ("working", GUARD_UNASKED_CAUSE)

    a: Agent | None = Agent(id="a", name="oc", profile="opencode", task="t", state=State.WORKING)
    hit = {"kind": "guard", "action": "ask", "file": "src/app.py", "other": "b",
           "other_name": "beta", "other_branch": "mullui/beta-b"}  # fmt: skip
    blocked = {"kind": "state", "state": "blocked", "cause": "collision:src/app.py"}
    told = None
    for _ in range(2):
        a = apply_event(apply_event(a, hit), blocked)
        assert a is not None and a.state is State.BLOCKED and a.conflict == told
        a = apply_event(a, ev)
        assert a is not None and (a.state, a.cause) == (State.WORKING, GUARD_UNASKED_CAUSE)
        assert a.conflict is not None and a.conflict.kind == "guard"
        assert (a.conflict.agent, a.conflict.name, a.conflict.files) == (
            "b",
            "beta",
            ("src/app.py",),
        )
        assert told is None or a.conflict == told  # the second: the same item, not a new one
        told = a.conflict
    # A plain "working" after the CLI's own dialog was answered raises no item.
    b: Agent | None = Agent(id="c", name="oc", profile="opencode", task="t", state=State.WORKING)
    b = apply_event(apply_event(b, hit), blocked)
    b = apply_event(b, {"kind": "state", "state": "working", "cause": "hook:permission.replied"})
    assert b is not None and b.state is State.WORKING and b.conflict is None


def test_a_held_edit_is_found_and_the_humans_reply_written_privately(tmp_path: Path) -> None:
    """The OpenCode plugin's ``ID.CALL.wait`` names a held edit; the human's reply becomes
    ``ID.CALL.answer`` (0600, whole): ``y`` allows, ``n`` refuses, other text refuses and
    is kept as what the human said.  Other agents' held edits are not this agent's."""
    d = Path(guard.decisions_dir(tmp_path))
    assert guard.held_calls(tmp_path, "a1") == []  # no directory yet
    d.mkdir(parents=True)
    (d / "a1.call_1.wait").write_text("{}")
    (d / "a10.call_9.wait").write_text("{}")
    (d / "a1.call_0.answer").write_text("{}")
    assert guard.held_calls(tmp_path, "a1") == ["call_1"]
    for text, allow, said in (
        (" y\n", True, None),
        ("YES", True, None),
        ("n", False, None),
        ("no, use src/other.py", False, "no, use src/other.py"),
    ):
        assert guard.decide_held(tmp_path, "a1", "call_1", text) is allow
        answer = d / "a1.call_1.answer"
        assert json.loads(answer.read_text()) == {"allow": allow, "said": said}
        assert answer.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["a1.call_1.wait", "a10.call_9.wait", "a1.call_0.answer", "a1.call_1.answer"]
    )
