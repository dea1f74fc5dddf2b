"""Agents on disk for TUI tests: records made the real way (Store.create + events) with
fixed timestamps, so snapshots are stable."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mullui.events import new_event
from mullui.model import Agent, State, iso
from mullui.paths import Paths
from mullui.store import Store

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return iso(NOW - timedelta(minutes=minutes_ago)) or ""


def new(
    store: Store,
    agent_id: str,
    name: str,
    profile: str,
    task: str,
    created_ago: float,
    **fields: object,
) -> Agent:
    base = Agent(
        id=agent_id,
        name=name,
        profile=profile,
        task=task,
        state=State.STARTING,
        cause="spawn",
        branch=f"mullui/{name}",
        worktree=f"/work/wt/{name}",
        base="main",
        created_at=NOW - timedelta(minutes=created_ago),
        state_since=NOW - timedelta(minutes=created_ago),
    )
    # Store.create, but with the creation time pinned too (its history entry feeds the
    # report's wall times, which must not move with the real clock).
    rec = replace(base, **fields).to_record()  # type: ignore[arg-type]
    for k in ("history", "seq"):
        rec.pop(k, None)
    ev = new_event("created", record=rec)
    ev["at"] = iso(base.created_at)
    store.append(agent_id, ev)
    return store.load(agent_id)


def state(store: Store, agent_id: str, st: State, minutes_ago: float, **data: object) -> Agent:
    return store.emit(agent_id, "state", state=st.value, at=at(minutes_ago), **data)


def build_fleet(paths: Paths, *, extra: int = 0) -> Store:
    """A busy dashboard: every state, each kind of inbox item, snoozes, a chain, a
    collision, token and cost figures; ``extra`` more working agents for scale tests."""
    s = Store(paths)
    new(s, "a1", "fix-login", "claude", "Fix the login redirect loop after OAuth", 95)
    state(s, "a1", State.WORKING, 94, cause="hook:SessionStart")
    state(
        s,
        "a1",
        State.BLOCKED,
        12,
        cause="hook:PermissionRequest",
        question="Bash: rm -rf build/ && npm run build",
    )
    s.emit("a1", "usage", tokens_in=48_200, tokens_out=3_900, cost_usd=0.61, at=at(12))

    new(s, "a2", "api-tests", "codex", "Add integration tests for the /v2 API", 80)
    state(s, "a2", State.WORKING, 79)
    s.emit("a2", "exit", exit_code=1, at=at(3))

    new(s, "a3", "docs-refresh", "aider", "Refresh the README and CLI reference", 70)
    state(s, "a3", State.WORKING, 69)
    state(
        s,
        "a3",
        State.DONE,
        41,
        cause="hook:Stop",
        message="Updated README.md and docs/cli.md; all links checked.",
    )
    s.emit("a3", "usage", tokens_in=15_000, tokens_out=2_100, cost_usd=0.12, at=at(41))

    new(s, "a4", "refactor-db", "claude", "Move the DB layer to SQLAlchemy 2.0 style", 60)
    state(s, "a4", State.WORKING, 59, cause="hook:UserPromptSubmit")
    s.emit("a4", "usage", tokens_in=120_400, tokens_out=8_800, cost_usd=1.23, at=at(2))
    s.emit(
        "a4",
        "collisions",
        at=at(5),
        collisions=[{"agent": "a1", "files": ["src/auth.py"], "conflict": True}],
    )
    s.emit(
        "a1",
        "collisions",
        at=at(5),
        collisions=[{"agent": "a4", "files": ["src/auth.py"], "conflict": True}],
    )

    new(s, "a5", "perf-bench", "gemini", "Profile the importer and speed it up", 50)
    state(s, "a5", State.WORKING, 49)

    new(s, "a6", "lint-fix", "shell", "ruff check --fix .", 45)
    state(s, "a6", State.WORKING, 45)
    s.emit("a6", "exit", exit_code=0, at=at(44))
    s.emit("a6", "snooze", until=iso(NOW + timedelta(minutes=60)), at=at(30))

    new(s, "a7", "migrate", "opencode", "Write the 0042 migration", 40)
    state(s, "a7", State.WORKING, 39)
    state(
        s,
        "a7",
        State.BLOCKED,
        20,
        cause="hook:permission.asked",
        question="Edit migrations/0042_users.py?",
    )
    s.emit("a7", "snooze", until_change=True, at=at(18))

    new(
        s,
        "a8",
        "plan",
        "claude",
        "Write a plan for caching in PLAN.md",
        35,
        chain="c1",
        chain_name="plan-critique",
        chain_step=1,
        extra={"chain_steps": 2},
    )
    state(s, "a8", State.WORKING, 34)
    state(s, "a8", State.DONE, 15, cause="hook:Stop", message="PLAN.md written (4 steps).")
    s.emit("a8", "ack", at=at(10))
    new(
        s,
        "a9",
        "critique",
        "claude",
        "Critique /work/wt/plan/PLAN.md",
        15,
        chain="c1",
        chain_name="plan-critique",
        chain_step=2,
        extra={"chain_steps": 2},
        after="a8",
    )
    state(s, "a9", State.WORKING, 14)

    new(s, "a10", "old-spike", "claude", "Try a Rust rewrite of the parser", 300)
    state(s, "a10", State.WORKING, 299)
    s.emit("a10", "stop", at=at(200))

    new(
        s,
        "a11",
        "queue-next",
        "codex",
        "Bump dependencies",
        5,
        state=State.QUEUED,
        cause="max_running",
    )

    for i in range(extra):
        aid = f"x{i:03d}"
        new(s, aid, f"worker-{i:03d}", "shell", f"make job-{i}", 30 + i % 17)
        state(s, aid, State.WORKING, 29 + i % 17)
    return s


def write_log(paths: Paths, agent_id: str, lines: int = 40) -> Path:
    """A pane log with ANSI colours, like pipe-pane writes."""
    p = paths.log_file(agent_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(lines):
        if i % 7 == 0:
            out.append(f"\x1b[1;34m● Running\x1b[0m step {i}: \x1b[32mnpm test\x1b[0m\r\n")
        elif i % 7 == 3:
            out.append(f"\x1b[31m✗ test_login_redirect failed\x1b[0m (line {i})\r\n")
        else:
            out.append(f"  reading src/auth.py … {i}\r\n")
    p.write_text("".join(out))
    return p


def build_chains(paths: Paths) -> Store:
    """Three chain runs (at step 2 of 2 and blocked; stuck behind a failed first step;
    all done) and one agent on its own, as ``spawn --chain`` leaves them."""
    s = Store(paths)

    def step(
        aid: str, name: str, run: str, chain: str, i: int, n: int, ago: float, **kw: object
    ) -> None:
        new(
            s,
            aid,
            name,
            "claude",
            f"step {i} of {chain}",
            ago,
            chain=run,
            chain_name=chain,
            chain_step=i,
            extra={"chain_steps": n},
            **kw,
        )

    step("c1", "cache-1", "pc-1", "plan-critique", 1, 2, 50)
    state(s, "c1", State.WORKING, 49)
    state(s, "c1", State.DONE, 30, cause="hook:Stop", message="PLAN.md written.")
    s.emit("c1", "usage", tokens_in=20_000, tokens_out=1_000, cost_usd=0.30, at=at(30))
    s.emit("c1", "ack", at=at(29))
    step(
        "c2",
        "cache-2",
        "pc-1",
        "plan-critique",
        2,
        2,
        50,
        after="c1",
        state=State.QUEUED,
        cause="waiting for cache-1 (c1) to be done",
    )
    state(s, "c2", State.STARTING, 30)
    state(s, "c2", State.WORKING, 29)
    state(
        s,
        "c2",
        State.BLOCKED,
        4,
        cause="hook:PermissionRequest",
        question="Write: PLAN.md (critique notes)?",
    )
    s.emit("c2", "usage", tokens_in=9_000, tokens_out=500, cost_usd=0.11, at=at(4))

    step("d1", "ship-1", "bts-1", "build-test-ship", 1, 3, 40)
    state(s, "d1", State.WORKING, 39)
    s.emit("d1", "exit", exit_code=2, at=at(20))
    step(
        "d2",
        "ship-2",
        "bts-1",
        "build-test-ship",
        2,
        3,
        40,
        after="d1",
        state=State.QUEUED,
        cause="predecessor ship-1 failed: exit:2",
    )
    step(
        "d3",
        "ship-3",
        "bts-1",
        "build-test-ship",
        3,
        3,
        40,
        after="d2",
        state=State.QUEUED,
        cause="waiting for ship-2 (d2) to be done",
    )

    step("e1", "docs-1", "pc-2", "plan-critique", 1, 2, 90)
    state(s, "e1", State.WORKING, 89)
    state(s, "e1", State.DONE, 70, cause="hook:Stop", message="plan ok")
    s.emit("e1", "ack", at=at(69))
    step(
        "e2",
        "docs-2",
        "pc-2",
        "plan-critique",
        2,
        2,
        90,
        after="e1",
        state=State.QUEUED,
        cause="waiting for docs-1 (e1) to be done",
    )
    state(s, "e2", State.STARTING, 69)
    state(s, "e2", State.WORKING, 68)
    state(s, "e2", State.DONE, 60, cause="hook:Stop", message="Critique in REVIEW.md: 3 risks.")

    new(s, "f1", "solo", "codex", "Bump dependencies", 10)
    state(s, "f1", State.WORKING, 9)
    return s


#: What agents said, as an attacker (or an unlucky web page) would have them say it.
BRACKETS = "wrote [/tmp/out/report.md] and done"
CLICK = "[@click=app.screenshot('x')]click[/]"
LINK = "[link=http://evil]x[/link]"
#: OSC 0 (window title) and OSC 52 (clipboard write) inside an ordinary sentence.
OSC = "title \x1b]0;PWNED\x07 and clip \x1b]52;c;ZXZpbA==\x07 end"
OSC_SHOWN = "title \\x1b]0;PWNED\\x07 and clip \\x1b]52;c;ZXZpbA==\\x07 end"


def build_hostile(paths: Paths) -> Store:
    """Agents whose last message, question, name, branch and collision files are markup
    or terminal escapes; a log with colours, an OSC 8 link, OSC 0/52 and hidden text."""
    s = Store(paths)
    new(s, "h1", "report", "claude", "write the report", 50)
    state(s, "h1", State.DONE, 40, cause="hook:Stop", message=BRACKETS)
    new(s, "h2", "clicky", "claude", CLICK, 45, branch="mullui/[b]clicky[/b]")
    state(s, "h2", State.BLOCKED, 30, cause="hook:PermissionRequest", question=CLICK)
    new(s, "h3", "[link=http://evil]linky[/link]", "codex", "links", 40)
    state(s, "h3", State.DONE, 20, cause="hook:Stop", message=LINK)
    new(s, "h4", "osc", "claude", "escapes", 35)
    state(s, "h4", State.DONE, 10, cause="hook:Stop", message=OSC)
    for me, other in (("h1", "h4"), ("h4", "h1")):
        s.emit(
            me,
            "collisions",
            at=at(5),
            collisions=[
                {"agent": other, "files": [CLICK, "src/[red]x[/red].py"], "conflict": False}
            ],
        )
    p = paths.log_file("h4")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        "\x1b[32mgreen ok\x1b[0m plain\r\n"
        f"{OSC}\r\n"
        "see \x1b]8;;http://evil\x1b\\the docs\x1b]8;;\x1b\\ here\r\n"
        "shown \x1b[8mhidden\x1b[0m after\r\n"
        f"{CLICK} {LINK}\r\n"
    )
    return s


def build_repos(paths: Paths, repos: list[Path]) -> Store:
    """Agents of several repositories sharing one mullui: two in the first, one in each
    other; one of the first is blocked and one of the second done (inbox items)."""
    s = Store(paths)
    for i, repo in enumerate(repos):
        for j in range(2 if i == 0 else 1):
            aid = f"r{i}{j}"
            new(
                s,
                aid,
                f"task-{i}{j}",
                "claude",
                f"work in {repo.name}",
                50 - i * 10 - j,
                repo=str(repo),
            )
            state(s, aid, State.WORKING, 49 - i * 10 - j)
    state(s, "r00", State.BLOCKED, 5, cause="hook:PermissionRequest", question="Edit setup.py?")
    state(s, "r10", State.DONE, 4, cause="hook:Stop", message="tests pass")
    return s
