"""Queued agents with real tmux, real git and the real CLI: ``--after``, chains, backlogs,
``max_running``, ``max_unreviewed``, budgets, and a queue that outlives tmux.

Queued agents are started by the real supervisor (``mullui watch``, which ``spawn`` starts
in a hidden tmux window when something is queued), never by the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from mullui.model import Agent, State
from mullui.paths import get_paths
from mullui.store import Store
from tests.conftest import git, wait_for
from tests.integration.test_real_repos import FILE_OK, _submodule_repo
from tests.support.agents import agent_row, diagnose, spawn, wait_state

Cli = Callable[..., subprocess.CompletedProcess[str]]
RUNNING = (State.STARTING, State.WORKING, State.BLOCKED)


def store() -> Store:
    return Store(get_paths())


def get(agent_id: str) -> Agent:
    return store().load(agent_id)


def wait_cause(agent_id: str, prefix: str, timeout: float = 20.0) -> Agent:
    def check() -> Agent | None:
        a = get(agent_id)
        return a if a.cause.startswith(prefix) else None

    try:
        a: Agent = wait_for(check, timeout=timeout)
    except AssertionError:
        a = get(agent_id)
        raise AssertionError(f"{agent_id}: cause is {a.cause!r}, not {prefix!r}…") from None
    return a


def entered(a: Agent, state: State) -> datetime:
    return next(t.at for t in a.history if t.state is state)


def config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


COMMIT = "git add -A && git commit -qm {msg}"


# ---- --after --------------------------------------------------------------------------------
def test_after_waits_for_done_then_starts_from_its_branch_with_placeholders(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    gate = mullui_home / "gate"  # a finishes only when the test says so
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    a = spawn(cli, git_repo, f"{wait}; echo one > one.txt; {COMMIT.format(msg=one)}; echo ready")
    b = spawn(
        cli,
        git_repo,
        "printf '%s\\n' {prev.id} {prev.branch} {prev.worktree} {prev.last_message} > got.txt",
        "--after",
        a,
    )
    queued = get(b)
    assert queued.state is State.QUEUED
    assert queued.cause == f"waiting for {get(a).name} ({a}) to be done"
    assert "{prev.id}" in queued.task  # expanded at start, not at creation
    gate.touch()

    done_a = wait_state(a, State.DONE)
    done_b = wait_state(b, State.DONE)
    assert entered(done_b, State.STARTING) >= entered(done_a, State.DONE)
    assert done_b.base == done_a.branch
    wt = Path(done_b.worktree or "")
    assert (wt / "one.txt").read_text() == "one\n"  # started from the predecessor's branch
    assert (wt / "got.txt").read_text().splitlines() == [
        a,
        done_a.branch,
        done_a.worktree,
        "ready",
    ]
    assert done_b.extra["task_template"].startswith("printf '%s\\n' {prev.id}")


one = "one"


def test_a_follow_up_of_a_failed_agent_stays_queued_with_its_reason(
    cli: Cli, git_repo: Path
) -> None:
    a = spawn(cli, git_repo, "sleep 0.5; exit 3")
    b = spawn(cli, git_repo, "touch never", "--after", a)
    wait_state(a, State.FAILED)
    got = wait_cause(b, "predecessor ")
    assert got.state is State.QUEUED
    assert got.cause == f"predecessor {get(a).name} failed: exit:3"
    assert got.worktree is None and got.tmux_target is None


def test_after_an_agent_that_is_already_done_starts_at_once(cli: Cli, git_repo: Path) -> None:
    a = spawn(cli, git_repo, "sleep 0.2; echo quick")
    wait_state(a, State.DONE)
    b = spawn(cli, git_repo, "echo {prev.id} > id.txt", "--after", a)
    assert get(b).state is not State.QUEUED
    done_b = wait_state(b, State.DONE)
    assert (Path(done_b.worktree or "") / "id.txt").read_text() == f"{a}\n"


def test_a_follow_up_that_cannot_start_says_why_and_others_go_on(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(mullui_home, '[profiles.mine]\ncommand = ["sh", "-c", "true"]\n')
    gate = mullui_home / "gate"
    a = spawn(cli, git_repo, f"while [ ! -e {gate} ]; do sleep 0.05; done")
    r = cli("spawn", "--agent", "mine", "--no-attach", "--after", a, "x", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    b = r.stdout.strip()
    config(mullui_home, "")  # the profile is gone by the time b may start
    gate.touch()
    got = wait_cause(b, "cannot start: ")
    assert got.state is State.QUEUED and "unknown agent profile 'mine'" in got.cause
    c = spawn(cli, git_repo, "echo still-works")  # the supervisor goes on
    wait_state(c, State.DONE)


# ---- chains ---------------------------------------------------------------------------------
def test_a_two_step_chain_runs_one_step_after_the_other(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(
        mullui_home,
        """
[[chains.plan-critique.steps]]
agent = "shell"
task = "sleep 0.5; echo 'plan for {task}' > PLAN.md; git add -A; git commit -qm plan"

[[chains.plan-critique.steps]]
agent = "shell"
task = "cat {prev.worktree}/PLAN.md > CRITIQUE.md; echo critique >> CRITIQUE.md"
""",
    )
    r = cli("spawn", "--chain", "plan-critique", "--no-attach", "the login bug", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    first = r.stdout.strip()
    steps = sorted((a for a in store().all() if a.chain), key=lambda a: a.chain_step or 0)
    assert [s.chain_step for s in steps] == [1, 2]
    assert steps[0].id == first and steps[1].after == first
    assert steps[1].state is State.QUEUED
    assert {s.chain for s in steps} == {steps[0].chain}
    assert {s.chain_name for s in steps} == {"plan-critique"}
    assert "plan for the login bug" in steps[0].task  # {task} filled at creation

    s2 = wait_state(steps[1].id, State.DONE)
    s1 = get(first)
    assert entered(s2, State.STARTING) >= entered(s1, State.DONE)
    out = (Path(s2.worktree or "") / "CRITIQUE.md").read_text()
    assert out == "plan for the login bug\ncritique\n"

    from mullui.queue import chain_runs

    (run,) = chain_runs(store().all())
    assert run.state == "done" and run.total == 2


def test_an_unknown_chain_is_refused_naming_the_known_ones(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(mullui_home, '[chains.pc]\nsteps = [{ agent = "shell", task = "true" }]\n')
    r = cli("spawn", "--chain", "nope", "--no-attach", "x", cwd=git_repo)
    assert r.returncode == 1 and "no chain 'nope' (known: pc)" in r.stderr
    assert store().all() == []


# ---- max_running ---------------------------------------------------------------------------
def test_max_running_2_is_never_exceeded_while_five_agents_run(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(mullui_home, "[limits]\nmax_running = 2\n")
    # Agents hold their slot until the test opens the gate: all five exist before any
    # finishes, however slow the machine.
    gate = mullui_home / "gate"
    task = f"while [ ! -e {gate} ]; do sleep 0.05; done; sleep 0.3"
    ids = [spawn(cli, git_repo, task, "--name", f"w{i}") for i in range(5)]
    assert [get(i).state for i in ids[2:]] == [State.QUEUED] * 3
    assert {get(i).cause for i in ids[2:]} == {"waiting for a free slot (max_running 2)"}
    gate.touch()
    peak = 0

    def all_done() -> bool:
        nonlocal peak
        agents = [get(i) for i in ids]
        peak = max(peak, sum(a.state in RUNNING for a in agents))
        return all(a.state is State.DONE for a in agents)

    wait_for(all_done, timeout=40)
    assert peak == 2
    # The recorded state changes agree: at no instant were three agents running.
    spans = []
    for i in ids:
        a = get(i)
        spans.append((entered(a, State.STARTING), entered(a, State.DONE)))
    for start, _ in spans:
        assert sum(s <= start < e for s, e in spans) <= 2
    # Oldest first: the queued ones started in the order they were spawned.
    starts = [s for s, _ in spans]
    assert starts[2] <= starts[3] <= starts[4]


def test_a_queued_agent_starts_with_every_note_it_was_given(
    cli: Cli, tmp_path: Path, mullui_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_running 1: the second agent waits queued with the note its spawn gave
    (uncommitted files it will not see); when the first is done the supervisor starts it
    and its worktree adds one (a submodule git refuses to clone).  Both are on the agent,
    in ls --json and inbox --json, not told to nobody in the supervisor's log."""
    app = _submodule_repo(tmp_path, monkeypatch)
    for k in FILE_OK:
        monkeypatch.delenv(k)  # git now refuses the file:// transport: submodules stay empty
    git(app, "config", "protocol.file.allow", "never")
    config(mullui_home, "[limits]\nmax_running = 1\n")
    gate = mullui_home / "gate"
    first = spawn(cli, app, f"while [ ! -e {gate} ]; do sleep 0.05; done", "--name", "first")
    (app / "a.txt").write_text("changed here, not committed\n")
    r = cli("spawn", "--agent", "shell", "--no-attach", "--name", "second", "true", cwd=app)
    assert r.returncode == 0, r.stderr
    second = r.stdout.strip()
    dirty = next(line for line in r.stderr.splitlines() if "will not see" in line)
    assert "a.txt" in dirty
    queued = agent_row(cli, app, second)
    assert queued["state"] == "queued" and queued["worktree"] is None
    assert queued["notes"] == [dirty.removeprefix("mullui: ")]
    gate.touch()
    wait_state(first, State.DONE)
    row = wait_state(second, State.DONE, cli=cli, repo=app)
    empty = "submodule vendor/lib is left empty in the agent's worktree:"
    assert row["notes"][0] == queued["notes"][0]
    assert len(row["notes"]) == 2 and row["notes"][1].startswith(empty), row["notes"]
    r = cli("inbox", "--json", cwd=app)
    assert r.returncode == 0, r.stderr
    item = next(x for x in json.loads(r.stdout) if x["id"] == second)
    assert item["notes"] == row["notes"]


# ---- max_unreviewed --------------------------------------------------------------------------
def test_new_spawns_wait_while_done_work_is_unreviewed(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(mullui_home, "[limits]\nmax_unreviewed = 1\n")
    a = spawn(cli, git_repo, "echo done")
    wait_state(a, State.DONE)
    b = spawn(cli, git_repo, "echo next")
    got = get(b)
    assert got.state is State.QUEUED
    assert got.cause == "waiting for review: 1 done agents unreviewed (max_unreviewed 1)"
    assert cli("ack", a, cwd=git_repo).returncode == 0
    wait_state(b, State.DONE)


# ---- budgets --------------------------------------------------------------------------------
def test_an_agent_over_max_cost_is_stopped_and_the_inbox_says_so(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    config(mullui_home, "[limits]\nmax_cost_usd = 10.0\n")
    a = spawn(cli, git_repo, "sleep 60")
    # Make sure the supervisor runs (nothing queued here would start it).
    from mullui import supervisor, watch
    from mullui.workspace import Workspace

    watch.ensure_running(Workspace(cwd=git_repo))
    wait_state(a, State.WORKING)
    try:
        wait_for(
            lambda: not supervisor.SupervisorLock(get_paths().supervisor_lock).is_free(),
            timeout=30,
        )
    except AssertionError:
        raise AssertionError(f"no supervisor{diagnose()}") from None
    # What `mullui hook` appends when a transcript reports spending (usage.py).
    store().emit(a, "usage", tokens_in=900_000, tokens_out=500_000, cost_usd=12.345)
    failed = wait_state(a, State.FAILED)
    assert failed.cause == "over budget: $12.35 > $10.00"
    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    resume = "over budget: $12.35 > $10.00: resume it with a raised budget (R, resume --budget USD)"
    assert [(i["id"], i["why"]) for i in inbox] == [(a, resume)]
    # The agent's process is gone, its worktree stays.
    target = failed.tmux_target or ""
    wait_for(lambda: _pane_gone(target), timeout=10)
    assert Path(failed.worktree or "").is_dir()


def _pane_gone(target: str) -> bool:
    import os

    r = subprocess.run(
        [
            "tmux",
            "-L",
            os.environ["MULLUI_TMUX_SOCKET"],
            "list-panes",
            "-a",
            "-F",
            "#{pane_id} #{pane_dead}",
        ],
        capture_output=True,
        text=True,
    )
    return f"{target} 0" not in r.stdout


# ---- backlog --------------------------------------------------------------------------------
BACKLOG = """\
[[tasks]]
name = "schema"
agent = "shell"
task = "sleep 0.5; echo schema > schema.txt; git add -A; git commit -qm schema"
estimate_h = 3

[[tasks]]
name = "api"
agent = "shell"
task = "cat schema.txt > api.txt"
after = "schema"
estimate_h = 1.5

[[tasks]]
name = "readme"
agent = "shell"
task = "echo readme"
"""


def test_a_backlog_runs_in_dependency_order_and_keeps_estimates(cli: Cli, git_repo: Path) -> None:
    (git_repo / "tasks.toml").write_text(BACKLOG)
    r = cli("spawn", "--from", "tasks.toml", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert [get(i).name for i in ids] == ["schema", "api", "readme"]
    assert [get(i).estimate_h for i in ids] == [3.0, 1.5, None]
    api = wait_state(ids[1], State.DONE)
    assert (Path(api.worktree or "") / "api.txt").read_text() == "schema\n"
    wait_state(ids[2], State.DONE)


def test_an_invalid_backlog_is_rejected_whole_before_anything_starts(
    cli: Cli, git_repo: Path
) -> None:
    bad = BACKLOG.replace('after = "schema"', 'after = "shcema"')
    (git_repo / "tasks.toml").write_text(bad)
    r = cli("spawn", "--from", "tasks.toml", cwd=git_repo)
    assert r.returncode == 1
    assert r.stderr.startswith("mullui: tasks.toml line 11: after = 'shcema' names no task"), (
        r.stderr
    )
    assert store().all() == []


# ---- restart -------------------------------------------------------------------------------
def test_the_queue_survives_a_restart_of_tmux_and_mullui(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    import os

    config(mullui_home, "[limits]\nmax_running = 1\n")
    long = spawn(cli, git_repo, "sleep 60", "--name", "long")
    b = spawn(cli, git_repo, "echo b > b.txt; git add -A; git commit -qm b", "--name", "b")
    c = spawn(cli, git_repo, "cat b.txt > c.txt", "--after", b, "--name", "c")
    assert get(b).cause == "waiting for a free slot (max_running 1)"
    assert get(c).state is State.QUEUED
    # The machine's tmux server goes away: the running agent and the supervisor with it.
    subprocess.run(["tmux", "-L", os.environ["MULLUI_TMUX_SOCKET"], "kill-server"], check=True)
    assert get(b).state is State.QUEUED and get(c).state is State.QUEUED
    # mullui comes back: the next command sees the lost agent, the queue moves on.
    r = cli("ls", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert get(long).state is State.FAILED
    from mullui import watch
    from mullui.workspace import Workspace

    watch.ensure_running(Workspace(cwd=git_repo))
    done_c = wait_state(c, State.DONE, timeout=30)
    assert (Path(done_c.worktree or "") / "c.txt").read_text() == "b\n"


@pytest.fixture(autouse=True)
def _supervised(autostart: Path) -> None:
    """Queued agents are started by the supervisor that spawn starts, as for a user."""


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch, git_repo: Path) -> None:
    # Agents commit in their worktrees; the repo carries an identity so a tmux server
    # started with another environment still can.
    git(git_repo, "config", "user.name", "mullui-test")
    git(git_repo, "config", "user.email", "test@mullui.invalid")


# ---- budgets with the real Claude Code ------------------------------------------------------
CLAUDE = shutil.which("claude")


@pytest.mark.skipif(CLAUDE is None, reason="CLAUDE CODE CLI NOT INSTALLED: budget test did NOT run")
@pytest.mark.timeout(150)
def test_max_cost_stops_a_real_claude_code_agent(
    cli: Cli, git_repo: Path, mullui_home: Path, tmp_path: Path
) -> None:
    import tomli_w

    from tests.support.anthropic_stub import AnthropicStub, StubUsage, Turn
    from tests.support.claude_env import make_claude_home

    # One expensive answer: 2M tokens in, 200k out (claude-sonnet-4-5: $6 + $3).
    huge = StubUsage(input_tokens=2_000_000, output_tokens=200_000)
    with AnthropicStub([Turn.say("Done: I rewrote everything.", usage=huge)]) as stub:
        home = make_claude_home(tmp_path / "claude-home", [git_repo], base_url=stub.url)
        keep = (
            "HOME",
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_API_KEY",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            "DISABLE_AUTOUPDATER",
            "DISABLE_TELEMETRY",
            "DISABLE_ERROR_REPORTING",
            "NO_PROXY",
        )
        cfg = {
            "limits": {"max_cost_usd": 1.0},
            "profiles": {"claude": {"env": {k: home.env[k] for k in keep}}},
        }
        (mullui_home / "config.toml").write_text(tomli_w.dumps(cfg))
        r = cli("spawn", "--agent", "claude", "--no-attach", "Rewrite the README", cwd=git_repo)
        assert r.returncode == 0, r.stderr
        a = r.stdout.strip()
        from mullui import watch
        from mullui.workspace import Workspace

        watch.ensure_running(Workspace(cwd=git_repo))
        assert stub.wait_served(1, timeout=60), f"claude never asked the stub{diagnose()}"
        failed = wait_state(a, State.FAILED, timeout=60)
    assert failed.cost_usd is not None and failed.cost_usd > 1.0
    assert failed.cause == f"over budget: ${failed.cost_usd:.2f} > $1.00"
    assert failed.tokens_in is not None and failed.tokens_in >= 2_000_000
    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    why = f"{failed.cause}: resume it with a raised budget (R, resume --budget USD)"
    assert [(i["id"], i["state"], i["why"]) for i in inbox] == [(a, "failed", why)]
    target = failed.tmux_target or ""
    wait_for(lambda: _pane_gone(target), timeout=15)  # the claude process was stopped
