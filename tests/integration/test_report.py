"""``mullui report`` on a scripted agent in real tmux: the ledger's times are the recorded
state changes, its changes are git's, and JSON, CSV and text agree."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mullui.model import State, parse_iso
from tests.conftest import git
from tests.integration.test_queue import get, store
from tests.support.agents import spawn, wait_state

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _identity(git_repo: Path) -> None:
    git(git_repo, "config", "user.name", "mullui-test")
    git(git_repo, "config", "user.email", "test@mullui.invalid")


def test_report_json_times_add_up_with_the_recorded_state_changes(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    # The scripted agent: a real process in tmux that commits work, then waits until
    # the test (playing its hooks and its human) lets it exit: working 2 s, blocked 3 s,
    # done.
    gate = mullui_home / "gate"
    a = spawn(
        cli,
        git_repo,
        "printf 'a\\nb\\nc\\n' > work.txt; git add -A; git commit -qm work; "
        f"echo untracked > notes.txt; while [ ! -e {gate} ]; do sleep 0.02; done",
        "--name",
        "scripted",
    )
    wait_state(a, State.WORKING)
    time.sleep(2)
    # What a hook reports when the agent asks for permission.
    store().emit(
        a, "state", state="blocked", cause="hook:PermissionRequest", question="Bash: rm -rf build"
    )
    store().emit(a, "usage", tokens_in=1200, tokens_out=300, cost_usd=0.05)
    time.sleep(3)
    gate.touch()
    done = wait_state(a, State.DONE)
    time.sleep(0.5)
    assert cli("ack", a, cwd=git_repo).returncode == 0

    r = cli("report", "--json", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    led = json.loads(r.stdout)
    (row,) = led["agents"]
    hist = {t.state: t.at for t in get(a).history}
    working = (hist[State.BLOCKED] - hist[State.WORKING]).total_seconds()
    blocked = (hist[State.DONE] - hist[State.BLOCKED]).total_seconds()
    assert row["working_s"] == pytest.approx(working, abs=1e-3)
    assert row["blocked_s"] == pytest.approx(blocked, abs=1e-3)
    assert row["working_s"] == pytest.approx(2.0, abs=0.6)
    assert row["blocked_s"] == pytest.approx(3.0, abs=0.6)
    created = parse_iso(row["created_at"])
    assert created is not None
    assert row["wall_s"] == pytest.approx((hist[State.DONE] - created).total_seconds(), abs=1e-3)
    parts = ("queued_s", "starting_s", "working_s", "blocked_s", "idle_s", "unknown_s")
    assert sum(row[k] for k in parts) == pytest.approx(row["wall_s"], abs=1e-2)
    # Review wait: from done to the ack, read from the spool.
    assert 0.4 <= row["review_wait_s"] <= 5 and row["awaiting_review"] is False
    assert (row["tokens_in"], row["tokens_out"], row["cost_usd"]) == (1200, 300, 0.05)
    # work.txt committed (3 lines) + notes.txt untracked (1 line).
    assert (row["files_changed"], row["lines_added"], row["lines_deleted"]) == (2, 4, 0)
    assert row["merged"] is False and row["state"] == "done"
    assert led["totals"]["agents"] == 1 and led["totals"]["working_s"] == row["working_s"]
    assert done.exit_code == 0

    out = cli("report", "--csv", cwd=git_repo).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["kind"] == "agent" and float(rows[0]["blocked_s"]) == row["blocked_s"]
    text = cli("report", cwd=git_repo).stdout
    assert "scripted" in text and "$0.05" in text and "2 +4 -0" in text


def test_a_merged_chain_shows_as_one_line_with_its_merge(
    cli: Cli, git_repo: Path, autostart: Path
) -> None:
    # Step 2 is started by the supervisor that spawn starts, as for a user.
    mullui_home = autostart
    (mullui_home / "config.toml").write_text(
        '[[chains.two.steps]]\nagent = "shell"\n'
        'task = "echo one > one.txt; git add -A; git commit -qm one"\n'
        '[[chains.two.steps]]\nagent = "shell"\n'
        'task = "echo two > two.txt; git add -A; git commit -qm two"\n'
    )
    r = cli("spawn", "--chain", "two", "--no-attach", "both", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    steps = sorted((x for x in store().all() if x.chain), key=lambda x: x.chain_step or 0)
    wait_state(steps[1].id, State.DONE, timeout=30)
    assert cli("merge", steps[1].id, cwd=git_repo).returncode == 0
    led = json.loads(cli("report", "--json", cwd=git_repo).stdout)
    (chain,) = led["chains"]
    assert (chain["chain_name"], chain["steps"], chain["steps_done"]) == ("two", 2, 2)
    assert chain["merged"] is True and chain["merged_into"] == "main"
    # Each step counts its own change (step 2 starts from step 1's branch): no double count.
    assert chain["files_changed"] == 2 and chain["lines_added"] == 2
    by_id = {x["id"]: x for x in led["agents"]}
    assert by_id[steps[1].id]["merged"] is True and by_id[steps[1].id]["delivered_s"] > 0
    # Step 1's work landed with step 2's merge (into main, not into step 1's branch).
    assert by_id[steps[0].id]["merged_into"] == "main"
    assert git(git_repo, "show", "main:one.txt") == "one\n"
    assert chain["wall_s"] >= max(x["wall_s"] for x in led["agents"])


def test_finished_work_moves_to_the_history_and_report_reads_it_without_git(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    a = spawn(
        cli, git_repo, "printf 'x\\ny\\n' > w.txt; git add -A; git commit -qm w", "--name", "gone"
    )
    live = spawn(cli, git_repo, "sleep 60", "--name", "live")
    wait_state(a, State.DONE)
    before = json.loads(cli("report", "--json", cwd=git_repo).stdout)
    row = next(r for r in before["agents"] if r["id"] == a)
    assert (row["files_changed"], row["lines_added"]) == (1, 2)
    assert cli("rm", "--force", a, cwd=git_repo).returncode == 0  # its worktree is gone
    ls = json.loads(cli("ls", "--json", cwd=git_repo).stdout)  # folds it on the way
    assert [x["id"] for x in ls] == [live]
    assert json.loads(cli("inbox", "--json", cwd=git_repo).stdout) == []
    everything = json.loads(cli("ls", "--all", "--json", cwd=git_repo).stdout)
    assert [x["id"] for x in everything] == [live, a]
    assert everything[1]["state"] == "done" and everything[1]["name"] == "gone"
    assert "1 in the history" in cli("ls", "--all", cwd=git_repo).stdout
    # the report's row was computed once, before the worktree went: the same numbers
    after = json.loads(cli("report", "--json", cwd=git_repo).stdout)
    again = next(r for r in after["agents"] if r["id"] == a)
    assert (again["files_changed"], again["lines_added"]) == (1, 2)
    assert again["wall_s"] == row["wall_s"] and again["state"] == "done"
    # nothing lost: its events and its output log are kept
    hist = mullui_home / "state" / "history"
    assert (hist / f"{a}.jsonl").exists() and (hist / f"{a}.log").exists()
    assert not (mullui_home / "state" / "agents" / f"{a}.json").exists()
