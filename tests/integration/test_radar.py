"""The collision radar as users see it: real git repositories, real shell agents in tmux,
the real CLI (``ls --json``, ``inbox``, ``collisions``, ``merge``, ``rm``) and a real
``mullui watch`` for the notification; the supervisor in-process where its refresh
counters are the evidence (idle costs nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mullui.model import State
from tests.conftest import ROOT, git, ls_json, make_repo, wait_for
from tests.integration.test_queue import get
from tests.support.agents import spawn, wait_state

pytestmark = pytest.mark.timeout(120)

Cli = Callable[..., subprocess.CompletedProcess[str]]
N = 40  # lines in shared.py: line 2 vs line 30 merge cleanly, the same line conflicts


@pytest.fixture
def repo(tmp_path: Path, mullui_home: Path) -> Path:
    r = make_repo(
        tmp_path / "repo",
        {"shared.py": "".join(f"line {i}\n" for i in range(1, N + 1)), "other.py": "other\n"},
    )
    # Agents commit inside tmux, whose environment may lack the test's git identity.
    git(r, "config", "user.name", "mullui-test")
    git(r, "config", "user.email", "test@mullui.invalid")
    # Fast periodic refresh for the supervisor tests (the default is 5 s).
    (mullui_home / "config.toml").write_text("[collisions]\ninterval_s = 1\n")
    return r


def edit(line: int, text: str, *, commit: bool = False, then: str = "sleep 60") -> str:
    """A shell agent's task: replace one line of shared.py (and maybe commit), then ``then``."""
    task = f"sed -i 's/^line {line}$/{text}/' shared.py"
    if commit:
        task += " && git add -A && git commit -qm work"
    return f"{task}; {then}"


def collisions_of(cli: Cli, repo: Path) -> dict[str, list[dict[str, Any]]]:
    return {a["id"]: a["collisions"] for a in ls_json(cli, repo)}


def wait_edited(agent_id: str, text: str) -> None:
    """Until the agent's worktree holds its edit (the shell runs asynchronously in tmux)."""
    wt = Path(get(agent_id).worktree or "")
    wait_for(lambda: text in (wt / "shared.py").read_text(), timeout=15)


def wait_committed(agent_id: str) -> None:
    wait_state(agent_id, State.DONE)


# ---- the markers in `ls --json` ----------------------------------------------------------
def test_same_lines_in_one_file_mark_both_agents_with_a_conflict(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five", commit=True, then="true"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five", commit=True, then="true"), "--name", "b")
    wait_committed(a)
    wait_committed(b)

    cols = collisions_of(cli, repo)

    assert cols[a] == [{"agent": b, "files": ["shared.py"], "conflict": True}]
    assert cols[b] == [{"agent": a, "files": ["shared.py"], "conflict": True}]


def test_different_parts_of_one_file_are_an_overlap_and_other_files_are_not_marked(
    cli: Cli, repo: Path
) -> None:
    a = spawn(cli, repo, edit(2, "A two", commit=True, then="true"), "--name", "a")
    b = spawn(cli, repo, edit(30, "B thirty", commit=True, then="true"), "--name", "b")
    c = spawn(cli, repo, "echo mine > other.py && git commit -qam c; true", "--name", "c")
    for x in (a, b, c):
        wait_committed(x)

    cols = collisions_of(cli, repo)

    assert cols[a] == [{"agent": b, "files": ["shared.py"], "conflict": False}]
    assert cols[b] == [{"agent": a, "files": ["shared.py"], "conflict": False}]
    assert cols[c] == []


def test_an_uncommitted_change_of_a_working_agent_counts(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five", commit=True, then="true"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")  # edits, never commits, works on
    wait_committed(a)
    wait_edited(b, "B five")
    assert get(b).state is State.WORKING
    assert git(Path(get(b).worktree or ""), "log", "--oneline", "main..HEAD") == ""

    cols = collisions_of(cli, repo)

    assert cols[b] == [{"agent": a, "files": ["shared.py"], "conflict": True}]
    assert cols[a] == [{"agent": b, "files": ["shared.py"], "conflict": True}]


def test_the_marker_clears_when_one_of_them_is_removed(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")
    wait_edited(a, "A five")
    wait_edited(b, "B five")
    assert collisions_of(cli, repo)[b] != []

    branch = get(a).branch
    r = cli("rm", "--force", a, cwd=repo)
    assert r.returncode == 0, r.stderr

    cols = collisions_of(cli, repo)
    assert a not in cols  # removed: in the history now (`ls --all`), not a live agent
    assert cols[b] == []
    assert branch and git(repo, "rev-parse", branch)  # its branch stays


def test_the_marker_clears_when_one_is_merged_and_the_base_conflict_shows(
    cli: Cli, repo: Path
) -> None:
    a = spawn(cli, repo, edit(5, "A five", commit=True, then="true"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five", commit=True, then="true"), "--name", "b")
    c = spawn(cli, repo, edit(30, "C thirty", commit=True, then="true"), "--name", "c")
    for x in (a, b, c):
        wait_committed(x)
    r = cli("collisions", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "CONFLICT  a <-> b: shared.py",
        "overlap   a <-> c: shared.py",
        "overlap   b <-> c: shared.py",
        "no clean merge order into main: a conflicts with b on shared.py",
    ]

    r = cli("merge", a, cwd=repo)
    assert r.returncode == 0, r.stderr

    cols = collisions_of(cli, repo)
    assert cols.get(a, []) == []  # merged: it collides with nobody (its worktree stays until rm)
    assert cols[b] == [{"agent": c, "files": ["shared.py"], "conflict": False}]  # a is gone
    assert cols[c] == [{"agent": b, "files": ["shared.py"], "conflict": False}]
    # b now conflicts with the base a moved: said against main, with the clean order.
    r = cli("collisions", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[1:] == [
        {
            "agents": [b],
            "names": ["b"],
            "files": ["shared.py"],
            "conflict": True,
            "base": "main",
            "behind": 2,  # a's commit and its merge
        }
    ]
    assert cli("collisions", cwd=repo).stdout.splitlines() == [
        "overlap   b <-> c: shared.py",
        "CONFLICT  b <-> main (2 commits ahead): shared.py",
        "no clean merge order into main: b conflicts with main on shared.py",
    ]


def test_collisions_json_lists_pairs_with_names(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")
    c = spawn(cli, repo, edit(30, "C thirty"), "--name", "c")
    for x, t in ((a, "A five"), (b, "B five"), (c, "C thirty")):
        wait_edited(x, t)

    r = cli("collisions", "--json", cwd=repo)

    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"agents": [a, b], "names": ["a", "b"], "files": ["shared.py"], "conflict": True,
         "base": None},
        {"agents": [a, c], "names": ["a", "c"], "files": ["shared.py"], "conflict": False,
         "base": None},
        {"agents": [b, c], "names": ["b", "c"], "files": ["shared.py"], "conflict": False,
         "base": None},
    ]  # fmt: skip


def test_no_collisions_says_so(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    wait_edited(a, "A five")
    r = cli("collisions", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "no collisions: no two agents touch the same files\n"
    assert json.loads(cli("collisions", "--json", cwd=repo).stdout) == []


# ---- the inbox item ------------------------------------------------------------------------
def inbox(cli: Cli, repo: Path) -> list[dict[str, Any]]:
    r = cli("inbox", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_a_new_conflict_is_one_inbox_item_on_the_newer_agent_until_acked(
    cli: Cli, repo: Path
) -> None:
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")
    wait_edited(a, "A five")
    wait_edited(b, "B five")

    items = inbox(cli, repo)

    assert [(i["id"], i["state"], i["why"]) for i in items] == [
        (b, "working", "conflicts with a on shared.py")
    ]
    r = cli("ack", b, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert inbox(cli, repo) == []
    # Still a conflict (the marker stays), but not a new one: no second item.
    assert collisions_of(cli, repo)[b][0]["conflict"] is True
    assert inbox(cli, repo) == []


def test_an_overlap_is_no_inbox_item(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(2, "A two"), "--name", "a")
    b = spawn(cli, repo, edit(30, "B thirty"), "--name", "b")
    wait_edited(a, "A two")
    wait_edited(b, "B thirty")
    assert collisions_of(cli, repo)[b] == [{"agent": a, "files": ["shared.py"], "conflict": False}]
    assert inbox(cli, repo) == []


def test_the_conflict_item_goes_when_the_other_agent_is_removed(cli: Cli, repo: Path) -> None:
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")
    wait_edited(a, "A five")
    wait_edited(b, "B five")
    assert [i["id"] for i in inbox(cli, repo)] == [b]

    assert cli("rm", "--force", a, cwd=repo).returncode == 0

    assert inbox(cli, repo) == []
    assert get(b).conflict is None


# ---- merge advice ---------------------------------------------------------------------------
def test_a_refused_merge_proposes_the_order_that_stays_clean(cli: Cli, repo: Path) -> None:
    # a forks, then main moves under it (someone merged first); b forks from the new main and
    # lands on the same text as a.  a into main now conflicts; b first, then a, is clean.
    a = spawn(cli, repo, edit(5, "X", commit=True, then="true"), "--name", "a")
    wait_committed(a)
    (repo / "shared.py").write_text((repo / "shared.py").read_text().replace("line 5\n", "M\n"))
    git(repo, "commit", "-qam", "human edits line 5")
    b = spawn(cli, repo, "sed -i 's/^M$/X/' shared.py && git commit -qam b; true", "--name", "b")
    wait_committed(b)

    r = cli("merge", a, cwd=repo)

    assert r.returncode == 1
    assert r.stderr.count("\n") == 1, r.stderr
    assert "would conflict in shared.py" in r.stderr
    assert r.stderr.rstrip().endswith("; merge order into main that stays clean: b, a")
    assert cli("merge", b, cwd=repo).returncode == 0
    r = cli("merge", a, cwd=repo)
    assert r.returncode == 0, r.stderr


# ---- the supervisor: one notification, no work while idle ------------------------------------
class Watch:
    """A real ``mullui watch`` writing terminal notifications (OSC 777) to a file."""

    def __init__(self, repo: Path, out: Path, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["MULLUI_NOTIFY"] = "terminal"
        self.out = out
        self.err = out.with_suffix(".err")
        with out.open("wb") as o, self.err.open("wb") as e:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mullui", "watch"], cwd=repo, env=env,
                stdout=o, stderr=e, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for(lambda: "notifications:" in self.err.read_text(), timeout=15)

    def titles(self) -> list[str]:
        text = self.out.read_text(errors="replace")
        return [chunk.split(";")[0] for chunk in text.split("\x1b]777;notify;")[1:]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        assert "Traceback" not in self.err.read_text(), self.err.read_text()


@pytest.fixture
def watches(tmp_path: Path, repo: Path) -> Iterator[Callable[[], Watch]]:
    started: list[Watch] = []

    def start() -> Watch:
        w = Watch(repo, tmp_path / f"watch-{len(started)}.out")
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def test_a_new_conflict_is_notified_once_by_the_watch(
    cli: Cli, repo: Path, watches: Callable[[], Watch]
) -> None:
    w = watches()
    # Both edit after a second, while working, and say so on their pane: only that output
    # (no hook, no state change) tells the radar to look again.
    talk = "echo edited; sleep 60"
    a = spawn(cli, repo, "sleep 1; " + edit(5, "A five", then=talk), "--name", "a")
    b = spawn(cli, repo, "sleep 1; " + edit(5, "B five", then=talk), "--name", "b")
    wait_for(lambda: "b conflicts with a" in w.titles(), timeout=20)
    assert get(b).conflict is not None and get(b).conflict.name == "a"  # type: ignore[union-attr]
    assert get(a).conflict is None
    assert "\x1b]777;notify;b conflicts with a;shared.py\x07" in w.out.read_text()

    time.sleep(2.5)  # two more periodic refreshes, and an `ls` refreshing too
    ls_json(cli, repo)
    time.sleep(1.2)
    assert w.titles() == ["b conflicts with a"]

    # A restarted watch replays the journal but does not tell the same conflict again.
    w.stop()
    w2 = watches()
    time.sleep(2.5)
    assert w2.titles() == []


def test_ls_and_inbox_read_the_watchs_markers_without_loading_the_radar(
    cli: Cli, repo: Path, watches: Callable[[], Watch]
) -> None:
    w = watches()
    a = spawn(cli, repo, edit(5, "A five"), "--name", "a")
    b = spawn(cli, repo, edit(5, "B five"), "--name", "b")
    wait_for(lambda: "b conflicts with a" in w.titles(), timeout=20)
    imports = {"PYTHONPROFILEIMPORTTIME": "1"}  # python -X importtime, on stderr
    for args in (("ls",), ("ls", "--json"), ("inbox",)):
        r = cli(*args, cwd=repo, env=imports)
        assert r.returncode == 0, r.stderr
        assert "mullui.radar" not in r.stderr and "mullui.collisions" not in r.stderr, args
    # What the watch wrote into the records is what they show.
    shown = {x["id"]: x["collisions"] for x in json.loads(cli("ls", "--json", cwd=repo).stdout)}
    assert [c["agent"] for c in shown[a]] == [b] and shown[a][0]["conflict"] is True
    assert [c["agent"] for c in shown[b]] == [a]
    assert "conflicts with a" in cli("inbox", cwd=repo).stdout
    # With no supervisor, `ls` recomputes itself: then, and only then, it loads the radar.
    w.stop()
    r = cli("ls", cwd=repo, env=imports)
    assert r.returncode == 0 and "mullui.radar" in r.stderr, r.stderr


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def _until(pred: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_no_refresh_and_no_cpu_while_every_agent_is_idle(cli: Cli, repo: Path) -> None:
    from mullui.supervisor import Supervisor
    from mullui.workspace import Workspace

    a = spawn(cli, repo, edit(5, "A five", commit=True, then="true"), "--name", "a")
    b = spawn(cli, repo, edit(30, "B thirty", commit=True, then="true"), "--name", "b")
    wait_committed(a)
    wait_committed(b)
    sup = Supervisor(Workspace(cwd=repo), notifier=None, run_queue=False)
    task = asyncio.create_task(sup.run())
    try:
        await _until(lambda: sup._radar is not None and sup._radar.runs >= 1, 10)
        radar = sup._radar
        assert radar is not None
        await _until(lambda: get(b).collisions != (), 5)
        await asyncio.sleep(0.5)  # the journal lines of its own collisions events come back
        runs, calls, cpu = radar.runs, radar.cache.stats.git_calls, _cpu_s()

        await asyncio.sleep(5)

        spent = _cpu_s() - cpu
        assert (radar.runs, radar.cache.stats.git_calls) == (runs, calls)
        assert sup._next_timeout() is None and radar.timeout() is None  # no timer at all
        assert spent < 0.1, f"{spent:.3f} s of CPU in 5 s idle"

        # A working agent that shows no sign of life: looked at (a stat), not refreshed.
        c = spawn(cli, repo, "sleep 60", "--name", "c")
        await _until(lambda: radar.runs > runs, 5)  # its start is a state change
        await asyncio.sleep(0.5)
        runs = radar.runs
        assert radar.timeout() is not None
        await asyncio.sleep(2.5)
        assert radar.runs == runs
        # One that keeps printing is refreshed about every interval (the test can fail).
        d = spawn(cli, repo, "while :; do echo working; sleep 0.2; done", "--name", "d")
        await _until(lambda: radar.runs >= runs + 3, 10)
        assert get(c).state is State.WORKING and get(d).state is State.WORKING
    finally:
        await sup.stop()
        await asyncio.wait_for(task, 10)


# ---- the pure parts: the reducer's item, the notification's shape ---------------------------
def _collisions_event(*cols: tuple[str, bool], conflict: str | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "collisions",
        "at": "2025-01-01T00:00:00Z",
        "collisions": [{"agent": o, "files": ["f.py"], "conflict": c} for o, c in cols],
    }
    if conflict:
        ev["conflict"] = {"agent": conflict, "name": f"name-{conflict}", "files": ["f.py"]}
    return ev


def test_the_reducer_raises_a_conflict_item_once_and_drops_it_when_the_conflict_goes() -> None:
    from mullui.model import Agent
    from mullui.reducer import apply_event

    a: Agent | None = Agent(id="b", name="b", profile="shell", task="t", state=State.WORKING)
    a = apply_event(a, _collisions_event(("o", True), conflict="o"))
    assert a is not None and a.conflict is not None
    assert (a.conflict.agent, a.conflict.name, a.needs_human()) == ("o", "name-o", True)
    assert a.why() == "conflicts with name-o on f.py"

    a = apply_event(a, {"kind": "ack"})
    assert a is not None and a.conflict is None and not a.needs_human()
    # A stale second refresh that still calls it new: the record knew it, no new item.
    a = apply_event(a, _collisions_event(("o", True), conflict="o"))
    assert a is not None and a.conflict is None

    a = apply_event(a, _collisions_event(("o", False)))  # resolved to an overlap
    a = apply_event(a, _collisions_event(("o", True), conflict="o"))  # and back: new again
    assert a is not None and a.conflict is not None
    a = apply_event(a, _collisions_event())  # the other agent was merged
    assert a is not None and a.conflict is None


def test_a_conflict_ranks_next_to_failures_in_the_inbox() -> None:
    from datetime import UTC, datetime

    from mullui.model import Agent, ConflictItem, inbox

    t = datetime(2025, 1, 1, tzinfo=UTC)
    item = ConflictItem("x", "x", ("f.py",), t)
    blocked = Agent(id="1", name="1", profile="p", task="t", state=State.BLOCKED, state_since=t)
    done = Agent(id="2", name="2", profile="p", task="t", state=State.DONE, state_since=t)
    working = Agent(id="3", name="3", profile="p", task="t", state=State.WORKING, conflict=item)
    quiet = Agent(id="4", name="4", profile="p", task="t", state=State.WORKING)
    assert [a.id for a in inbox([done, working, quiet, blocked])] == ["1", "3", "2"]


def test_a_conflict_notice_is_critical_titled_and_outside_the_state_filter() -> None:
    from datetime import UTC, datetime

    from mullui.notify.policy import Notice, NotifyConfig, NotifyPolicy

    p = NotifyPolicy(NotifyConfig(states=frozenset({"blocked"}), coalesce_ms=0))
    at = datetime(2025, 1, 1, tzinfo=UTC)
    n = Notice("b", "b", "conflict", "f.py", "k1", at, title="b conflicts with a")
    [d] = p.submit(n)
    assert (d.title, d.body, d.critical, d.popup) == ("b conflicts with a", "f.py", True, True)
    assert p.submit(n) == []  # the same key once
