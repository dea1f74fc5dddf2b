"""The collision guard's answer without Python: ``fasthook/spool.sh`` answers an edit from
the tables :func:`mullui.guard.write_answers` precomputes, and must say exactly what
:func:`mullui.guard.hook_answer` (the Python path, the reference) says, byte for byte:
the answer on stdout and the guard event written to the agent's raw spool.  Every case
runs the real ``sh`` twice, once with the tables and once without them (Python decides),
and the plain cases must not start Python at all."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mullui import guard
from mullui.agents.base import SPOOL_SH
from mullui.model import Agent
from mullui.paths import get_paths
from mullui.store import Store

REPO = "/srv/repo"
EVENTS = ("PreToolUse", "BeforeTool", guard.OPENCODE_EVENT)


class Fleet:
    """Agents a1 (asking), b1 and c1 (shell) in one repository, with real records."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.st = Store(get_paths({"MULLUI_HOME": str(tmp_path / "home")}))
        self.state = self.st.paths.state_dir
        self.tmp = tmp_path
        self.wts: dict[str, Path] = {}
        for aid in ("a1", "b1", "c1"):
            wt = tmp_path / "wt" / aid
            (wt / "src").mkdir(parents=True)
            self.wts[aid] = wt
            self.st.create(Agent(id=aid, name=f"n-{aid}", profile="shell", task="t", hooks=True))
            self.st.emit(aid, "start")
            fields = {"repo": REPO, "worktree": str(wt), "branch": f"br/{aid}", "base": "main"}
            self.st.emit(aid, "update", fields=fields)
        (tmp_path / "link").symlink_to(self.wts["a1"])
        members = {
            aid: {
                "name": f"n-{aid}",
                "branch": f"br/{aid}",
                "worktree": str(wt),
                "profile": "shell",
                "guard": None,
            }
            for aid, wt in self.wts.items()
        }
        files = {
            "src/app.py": ["b1"],
            "src/both.py": ["a1", "b1", "c1"],
            "src/mine.py": ["a1"],
            "src/three.py": ["b1", "c1"],
            'src/q"uote.py': ["b1"],
            "src/naïve.py": ["b1"],
            "src/sp ace.py": ["c1"],
            "b1": ["c1"],  # a file named like an agent id
            "README": ["b1"],
        }
        self.doc = guard.build_index(REPO, members, files, mode)
        guard.write_index(self.state, self.doc)
        # a python that leaves a mark: the plain cases must not start it
        self.marker = tmp_path / "python-ran"
        self.python = tmp_path / "python"
        self.python.write_text(f'#!/bin/sh\necho x >> "{self.marker}"\nexec python3 "$@"\n')
        self.python.chmod(0o755)

    def hook(self, event: str, payload: bytes) -> tuple[bytes, bytes | None, bool]:
        """(stdout, the guard event's payload or None, whether Python ran)."""
        for d in (self.st.paths.hookdata_dir, self.st.paths.spool_dir):
            for f in d.glob("a1.*"):
                f.unlink()
        self.marker.unlink(missing_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "MULLUI_AGENT_ID": "a1",
            "MULLUI_AGENT_TOKEN": self.st.token("a1") or "",
            "MULLUI_STATE_DIR": str(self.state),
        }
        r = subprocess.run(
            ["sh", str(SPOOL_SH), "--answer", str(self.python), event],
            input=payload,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 0 and r.stderr == b"", r.stderr
        spool = self.st.paths.spool_dir / "a1.hooks"
        lines = spool.read_text().splitlines() if spool.exists() else []
        assert lines and lines[0].split("\t")[1] == event  # the edit's own line comes first
        rec = None
        for line in lines[1:]:
            _, ev, _, name, token = line.split("\t")
            assert ev == "guard" and token == (self.st.token("a1") or "")
            rec = (self.st.paths.hookdata_dir / name).read_bytes()
        return r.stdout, rec, self.marker.exists()

    def without_tables(self) -> dict[Path, bytes]:
        saved = {}
        for f in (self.state / "answer").glob("*.tab"):
            saved[f] = f.read_bytes()
            f.unlink()
        return saved


def payload(
    event: str,
    path: str,
    cwd: str | None,
    *,
    tool: str | None = None,
    compact: bool = True,
    key: str | None = None,
) -> bytes:
    if event == guard.OPENCODE_EVENT:
        doc: dict[str, Any] = {
            "sessionID": "s",
            "tool": tool or "edit",
            "callID": "c",
            "args": {key or "filePath": path},
        }
    else:
        name = tool or ("Write" if event == "PreToolUse" else "write_file")
        # Claude Code 2.1.197's PreToolUse as it sends it (keys and order; Gemini's alike)
        doc = {
            "session_id": "s",
            "transcript_path": "/t.jsonl",
            "prompt_id": "p",
            "permission_mode": "acceptEdits",
            "effort": {"level": "high"},
            "hook_event_name": event,
            "tool_name": name,
            "tool_input": {key or "file_path": path, "content": "x"},
            "tool_use_id": "t",
        }
    if cwd is not None:
        doc["cwd"] = cwd
    if compact:  # as the agent CLIs (JSON.stringify) send it
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return json.dumps(doc).encode()


def cases(f: Fleet) -> list[tuple[str, bytes, bool]]:
    """(label, payload, plain: the fast path must answer it without Python)."""
    wt = str(f.wts["a1"])
    out: list[tuple[str, bytes, bool]] = []
    for event in EVENTS:
        for rel in (
            "src/app.py",
            "src/both.py",
            "src/mine.py",
            "src/three.py",
            "src/naïve.py",
            "src/sp ace.py",
            "b1",
            "README",
            "src/free.py",
        ):
            out.append((f"{event} abs {rel}", payload(event, f"{wt}/{rel}", wt), True))
            out.append((f"{event} rel {rel}", payload(event, rel, wt), True))
        out += [
            (f"{event} ./rel", payload(event, "./src/app.py", wt), True),
            (f"{event} ././rel", payload(event, "././src/app.py", wt), True),
            (f"{event} rel from a subdir", payload(event, "app.py", f"{wt}/src"), True),
            (f"{event} no cwd", payload(event, "src/app.py", None), True),
            (f"{event} spaced JSON", payload(event, f"{wt}/src/app.py", wt, compact=False), True),
            (f"{event} outside", payload(event, "/elsewhere/src/app.py", wt), False),
            (f"{event} .//rel", payload(event, ".//src/app.py", wt), False),
            (f"{event} /./", payload(event, f"{wt}/./src/app.py", wt), False),
            (f"{event} /../", payload(event, f"{wt}/src/../src/app.py", wt), False),
            (f"{event} //", payload(event, f"{wt}//src/app.py", wt), False),
            (f"{event} symlinked worktree", payload(event, f"{f.tmp}/link/src/app.py", wt), False),
            (f"{event} quote", payload(event, f'{wt}/src/q"uote.py', wt), False),
            (f"{event} the worktree", payload(event, wt, wt), False),
            (f"{event} .git", payload(event, f"{wt}/.git/config", wt), True),
            (
                f"{event} escaped",
                payload(event, f"{wt}/src/app.py", wt).replace(b"src/app", b"\\u0073rc/app"),
                False,
            ),
            (
                f"{event} ascii-escaped",
                payload(event, f"{wt}/src/naïve.py", wt, compact=False),
                False,
            ),
            (
                f"{event} not an edit tool",
                payload(event, f"{wt}/src/app.py", wt, tool="Read"),
                True,
            ),
            (
                f"{event} escaped tool",
                payload(event, f"{wt}/src/app.py", wt)
                .replace(b'"Write"', b'"Wr\\u0069te"')
                .replace(b'"write_file"', b'"wr\\u0069te_file"')
                .replace(b'"edit"', b'"\\u0065dit"'),
                False,
            ),
        ]
    out.append(
        (
            "NotebookEdit",
            payload("PreToolUse", f"{wt}/src/app.py", wt, tool="NotebookEdit", key="notebook_path"),
            True,
        )
    )
    out.append(
        (
            "NotebookEdit's path in file_path",
            payload("PreToolUse", f"{wt}/src/app.py", wt, tool="NotebookEdit"),
            False,
        )
    )
    two = payload("PreToolUse", f"{wt}/src/free.py", wt).replace(
        b'"content":"x"', b'"content":"x","file_path":"' + wt.encode() + b'/src/app.py"'
    )
    out.append(("two file_path keys", two, False))
    return out


@pytest.mark.parametrize("mode", ["warn", "ask", "block", "off"])
def test_the_sh_answer_is_the_python_answer(tmp_path: Path, mode: str) -> None:
    f = Fleet(tmp_path, mode)
    fast = {
        label: (
            f.hook(label.split()[0] if label.split()[0] in EVENTS else "PreToolUse", body),
            plain,
        )
        for label, body, plain in cases(f)
    }
    f.without_tables()
    answered = 0
    for label, body, _plain in cases(f):
        event = label.split()[0] if label.split()[0] in EVENTS else "PreToolUse"
        (out, rec, ran), plain = fast[label]
        ref_out, ref_rec, _ = f.hook(event, body)
        assert (out, rec) == (ref_out, ref_rec), label
        answered += bool(out)
        if plain and mode != "off":
            assert not ran, f"{label}: Python started"
    if mode == "off":
        assert answered == 0
    else:
        assert answered > 30  # the corpus exercises answers, not only silence


def test_an_agent_merged_or_removed_since_the_index_hands_over_to_python(tmp_path: Path) -> None:
    f = Fleet(tmp_path, "block")
    wt = str(f.wts["a1"])
    body = payload("PreToolUse", f"{wt}/src/three.py", wt)  # b1 and c1 changed it
    out, rec, ran = f.hook("PreToolUse", body)
    assert not ran and b"n-b1 (branch br/b1), n-c1 (branch br/c1)" in out
    f.st.emit("b1", "removed", saved=None)  # the record says so: guard/gone/b1 first
    assert (f.state / "guard" / "gone" / "b1").exists()
    out, rec, ran = f.hook("PreToolUse", body)
    assert ran and b"n-b1" not in out and b"n-c1 (branch br/c1)" in out
    f.st.emit("c1", "merged", into="main", sha="0" * 40)
    out, rec, ran = f.hook("PreToolUse", body)
    assert ran and out == b"" and rec is None  # nobody left: the edit goes ahead silently
    # src/app.py: only b1, now gone; the answer needs Python, which lets it go
    out, _, ran = f.hook("PreToolUse", payload("PreToolUse", f"{wt}/src/app.py", wt))
    assert ran and out == b""


def test_the_tables_follow_the_index(tmp_path: Path) -> None:
    f = Fleet(tmp_path, "warn")
    adir = f.state / "answer"
    key = guard.repo_key(REPO)
    assert (adir / f"PreToolUse.warn.{key}.tab").exists()
    # mode changed to block: the warn tables go, block ones come
    doc = guard.build_index(REPO, f.doc["agents"], f.doc["files"], "block")
    assert guard.write_index(f.state, doc)
    assert not (adir / f"PreToolUse.warn.{key}.tab").exists()
    assert (adir / f"PreToolUse.block.{key}.tab").exists()
    # an agent leaves the index: its info and tables go
    agents = {k: v for k, v in doc["agents"].items() if k != "c1"}
    files = {p: [i for i in ids if i != "c1"] for p, ids in doc["files"].items()}
    assert guard.write_index(f.state, guard.build_index(REPO, agents, files, "block"))
    assert not (adir / "c1.info").exists() and not (adir / "PreToolUse.c1.tab").exists()
    # a lost info file is made again by the next pass, even with the index unchanged
    (adir / "a1.info").unlink()
    assert guard.write_index(f.state, guard.build_index(REPO, agents, files, "block"))
    assert (adir / "a1.info").exists()
    # a torn table: Python answers (the same answer)
    wt = str(f.wts["a1"])
    body = payload("PreToolUse", f"{wt}/src/app.py", wt)
    good, _, ran = f.hook("PreToolUse", body)
    assert not ran and b"deny" in good
    (adir / f"PreToolUse.block.{key}.tab").write_text('\tsrc/app.py\t"b1\n')
    out, _, ran = f.hook("PreToolUse", body)
    assert ran and out == good


def test_an_agent_folded_into_the_history_gets_no_answer_from_the_tables(tmp_path: Path) -> None:
    # Folded (its record gone) while its CLI still runs in its window: until the radar's
    # next pass removes its tables, an edit there must get what Python says - nothing
    # (the guard reads no record for it) - not the tables' answer.
    from datetime import timedelta

    from mullui import ledger
    from mullui.context import Context
    from mullui.model import utcnow

    f = Fleet(tmp_path, "block")
    wt = str(f.wts["a1"])
    body = payload("PreToolUse", f"{wt}/src/app.py", wt)
    f.st.emit("a1", "stop")  # (live, the tables answer it: see the identity test)
    ctx = Context(f.st.paths, cwd=tmp_path)
    assert ledger.fold_one(ctx, "a1", now=utcnow() + timedelta(seconds=5), keep_s=0)
    assert (f.state / "answer" / "a1.info").exists()  # the radar has not run since
    fast = f.hook("PreToolUse", body)
    f.without_tables()
    ref = f.hook("PreToolUse", body)
    assert ref[:2] == (b"", None)
    assert fast[:2] == ref[:2]
