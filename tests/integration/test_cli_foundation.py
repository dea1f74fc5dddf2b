"""The CLI contract on stored agents: ls/inbox JSON, snooze/wake/ack, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from mullui.model import Agent
from mullui.paths import get_paths
from mullui.store import Store

SPEC_FIELDS = [
    "id",
    "name",
    "profile",
    "state",
    "cause",
    "task",
    "branch",
    "worktree",
    "tmux_target",
    "created_at",
    "state_since",
    "exit_code",
    "snoozed_until",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "collisions",
    "host",
    "repo",
]
#: Fields beyond SPEC's ("at least" those): issue 14's resumable mark, the start's notes.
EXTRA_FIELDS = ["interrupted", "notes"]


def seed(home: Path) -> Store:
    st = Store(get_paths({"MULLUI_HOME": str(home)}))
    for i, (aid, state) in enumerate([("aa01", "blocked"), ("aa02", "done"), ("aa03", "working")]):
        st.create(Agent(id=aid, name=f"agent-{i}", profile="shell", task=f"task {i}"))
        st.emit(aid, "start")
        st.emit(aid, "state", state="working", cause="spawned")
        if state != "working":
            st.emit(
                aid,
                "state",
                state=state,
                cause=f"hook:{state}",
                question="Bash: make",
                message="all tests pass",
            )
    return st


def test_empty_home_prints_empty_arrays(cli) -> None:  # type: ignore[no-untyped-def]
    for cmd in ("ls", "inbox"):
        r = cli(cmd, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr


def test_ls_json_fields_match_spec(cli, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    seed(mullui_home)
    rows = json.loads(cli("ls", "--json").stdout)
    assert [list(r) for r in rows] == [SPEC_FIELDS + EXTRA_FIELDS] * 3
    blocked = next(r for r in rows if r["id"] == "aa01")
    assert blocked["interrupted"] is False and blocked["notes"] == []
    assert blocked["state"] == "blocked" and blocked["branch"] is None
    assert blocked["created_at"].endswith("Z") and blocked["host"] is None


def test_inbox_snooze_wake_ack(cli, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    seed(mullui_home)
    ids = lambda: [r["id"] for r in json.loads(cli("inbox", "--json").stdout)]  # noqa: E731
    assert ids() == ["aa01", "aa02"]
    r = cli("snooze", "aa01", "--for", "30m")
    assert r.returncode == 0, r.stderr
    assert ids() == ["aa02"]
    row = next(x for x in json.loads(cli("ls", "--json").stdout) if x["id"] == "aa01")
    assert row["snoozed_until"] is not None
    assert cli("wake", "agent-0").returncode == 0  # by name
    assert ids() == ["aa01", "aa02"]
    assert cli("ack", "aa02").returncode == 0
    assert ids() == ["aa01"]
    assert cli("snooze", "aa01", "--until-change").returncode == 0
    assert ids() == []


def test_errors_are_one_line_with_exit_codes(cli, mullui_home: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("ack", "nope")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no agent 'nope'" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("snooze", "x", "--for", "soon")
    assert r.returncode == 2 and "bad duration" in r.stderr
    r = cli("frobnicate")
    assert r.returncode == 2
    (mullui_home / "config.toml").write_text("[limits]\nmax_running = 0\n")
    seed(mullui_home)
    r = cli("ls")
    assert r.returncode == 1 and "config.toml line 2: [limits] max_running" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_lists_every_command(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("--help").stdout
    for c in (
        "spawn ls inbox send attach snooze wake ack merge collisions report hosts logs "
        "stop rm hook watch demo"
    ).split():
        assert c in out
