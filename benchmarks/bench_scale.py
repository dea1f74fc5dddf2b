"""Performance at the scale of months (issue 18): what a hook costs, and what ten thousand
finished agents cost day to day.  Real processes throughout:

- **hook per event**: the hook exactly as an agent runs it (``/bin/sh
  mullui/fasthook/spool.sh EVENT``, a Claude-sized PostToolUse payload on stdin, the
  agent's environment), wall time to its exit and its CPU (the child's rusage); the answer
  path (``spool.sh --answer``) unarmed and armed (armed: ``python -S -I answer.py`` and
  the collision guard's check, no index: no answer); ``python -m mullui hook`` (the
  synchronous path tools use) for comparison.
- **a real Claude Code tool call**: ``claude -p`` against the loopback API stub making
  ``TOOLS`` tool calls (Bash ``true`` and Write, alternating), with mullui's hook settings
  (what ``mullui spawn`` writes) and without; extra time per tool call = (median wall
  with - median wall without) / ``TOOLS``.  Skipped when ``claude`` is not installed.
- **history**: 10,000 finished agents in the history plus 20 live agents in real tmux
  windows.  The first agents are folded for real (merged, then ``ledger.fold``: its rate is
  reported); the rest of the ledger is those rows repeated under new ids (the same bytes a
  fold writes; folding 10,000 with fsyncs would take minutes of setup).  Then the CLI's
  ``ls --json``, ``inbox``, ``report --json``, ``ls --all --json`` and the TUI's start to a
  full table (in tmux).
- **one agent's long history**: event -> state (in-process append -> ``mullui watch`` ->
  journal) for an agent that already has 2,000 state changes, and one event's fold alone.

    python benchmarks/bench_scale.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_core import EVENT_P95_MS, Sandbox, bench_main, metric  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"

HOOK_WALL_MS = 10.0
HOOK_CPU_MS = 5.0
LS_S = 0.3
INBOX_S = 0.3
TUI_S = 1.0
REPORT_S = 2.0
TOOLS = 12

PAYLOAD = json.dumps(
    {
        "session_id": "5d3c1f2e-0000-4000-8000-000000000000",
        "transcript_path": "/home/u/.claude/projects/-repo/5d3c1f2e.jsonl",
        "cwd": "/home/u/repo",
        "permission_mode": "default",
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "pytest -x tests/unit -q", "description": "Run the tests"},
        "tool_response": {"stdout": "." * 600 + "\n42 passed in 1.2s\n", "stderr": ""},
        "tool_use_id": "toolu_01ABCDEF",
    }
)


def _run_timed(argv: list[str], env: dict[str, str], stdin: bytes) -> tuple[float, float, int]:
    """(wall ms, CPU ms of the child, exit code) of one process."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=60)
    wall = (time.perf_counter() - t0) * 1000
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000
    return wall, cpu, p.returncode


def measure_hooks(n: int) -> dict[str, Any]:
    from mullui.agents.base import answer_hook_argv, spool_hook_argv
    from mullui.store import Store

    with Sandbox("hooks") as sb:
        target, token = sb.hook_target()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MULLUI_AGENT_ID": target,
            "MULLUI_AGENT_TOKEN": token,
            "MULLUI_STATE_DIR": str(sb.paths.state_dir),
        }
        out: dict[str, Any] = {}
        body = PAYLOAD.encode()
        for label, argv, event, k in (
            ("fast", [*spool_hook_argv()], "PostToolUse", n),
            ("answer_unarmed", [*answer_hook_argv()], "PreToolUse", n // 2),
            ("answer_armed", [*answer_hook_argv()], "PreToolUse", n // 4),
            ("python", [sys.executable, "-m", "mullui", "hook"], "PostToolUse", n // 8),
        ):
            if label == "answer_armed":
                (sb.paths.state_dir / "answer").mkdir(exist_ok=True)
                (sb.paths.state_dir / "answer" / "PreToolUse").touch()
            run_env = {**env, "PYTHONPATH": str(ROOT)} if label == "python" else env
            walls, cpus = [], []
            for _ in range(k):
                wall, cpu, rc = _run_timed([*argv, event], run_env, body)
                if rc != 0:
                    raise RuntimeError(f"hook {label} exited {rc}")
                walls.append(wall)
                cpus.append(cpu)
            out[label] = {"wall_ms": walls, "cpu_ms": cpus}
        t0 = time.perf_counter()
        a = Store(sb.paths).load(target)  # a reader folds the whole backlog
        out["fold_backlog_s"] = time.perf_counter() - t0
        out["fold_backlog_events"] = a.seq
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return out


# ---- a real Claude Code tool call ---------------------------------------------------------
def measure_claude(reps: int) -> dict[str, Any] | None:
    claude = shutil.which("claude")
    if claude is None:
        return None
    from mullui.agents.base import LaunchContext, answer_hook_argv, spool_hook_argv
    from mullui.agents.claude import ClaudeProfile
    from mullui.model import Agent
    from mullui.store import Store
    from tests.support.anthropic_stub import AnthropicStub, Turn
    from tests.support.claude_env import make_claude_home

    root = Path(tempfile.mkdtemp(prefix="mullui-bench-claude-"))
    try:
        repo = root / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True, timeout=30)
        state = root / "state"
        from mullui.paths import Paths

        paths = Paths(root / "config", state, root / "data")
        store = Store(paths)
        a, token = store.create(Agent(id="bench01", name="b", profile="claude", task="t"))
        walls: dict[str, list[float]] = {"with": [], "without": [], "noop": []}
        with AnthropicStub() as stub:
            home = make_claude_home(root / "home", [repo], base_url=stub.url)
            ctx = LaunchContext(
                agent_id=a.id, name="b", task="t", worktree=repo, branch="main", repo=repo,
                profile_dir=state / "profiles" / a.id, hook_argv=spool_hook_argv(),
                answer_hook_argv=answer_hook_argv(), session_id=str(uuid.uuid4()),
                env=home.env,
            )  # fmt: skip
            ClaudeProfile().prepare(ctx)
            settings = ClaudeProfile().settings_path(ctx)
            # The same registrations running `true`: what Claude Code's own hook machinery
            # costs, whatever the hook does.
            doc = json.loads(settings.read_text())
            for groups in doc["hooks"].values():
                for g in groups:
                    for h in g["hooks"]:
                        h["command"] = "true"
            noop = root / "noop-settings.json"
            noop.write_text(json.dumps(doc))
            env = {
                **home.env,
                "MULLUI_AGENT_ID": a.id,
                "MULLUI_AGENT_TOKEN": token,
                "MULLUI_STATE_DIR": str(state),
            }
            for i in range(reps * 3):
                mode = ("with", "without", "noop")[i % 3]
                turns = []
                for t in range(TOOLS):
                    if t % 2 == 0:
                        turns.append(Turn.bash("true"))
                    else:
                        inp = {"file_path": str(repo / f"f{i}-{t}.txt"), "content": "x\n"}
                        turns.append(Turn(tool="Write", tool_input=inp))
                turns.append(Turn.say("done"))
                stub.add(*turns)
                argv = [claude, "-p", "go", "--allowedTools", "Bash,Write",
                        "--session-id", str(uuid.uuid4())]  # fmt: skip
                if mode != "without":
                    argv += ["--settings", str(settings if mode == "with" else noop)]
                t0 = time.perf_counter()
                r = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                                   timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
                if r.returncode != 0:
                    raise RuntimeError(f"claude -p failed: {r.stderr[-500:]}")
                walls[mode].append(time.perf_counter() - t0)
        hooks_lines = (state / "spool" / f"{a.id}.hooks").read_text().count("\n")
        med = {k: statistics.median(v) for k, v in walls.items()}
        return {
            "wall_with_s": walls["with"],
            "wall_without_s": walls["without"],
            "wall_noop_hooks_s": walls["noop"],
            "extra_per_tool_call_ms": (med["with"] - med["without"]) / TOOLS * 1000,
            "noop_hooks_extra_per_tool_call_ms": (med["noop"] - med["without"]) / TOOLS * 1000,
            "hook_calls": hooks_lines,
            "claude": subprocess.run(
                [claude, "--version"], capture_output=True, text=True, timeout=30
            ).stdout.strip(),  # fmt: skip
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- history ----------------------------------------------------------------------------
def measure_history(history: int, live: int, runs: int) -> dict[str, Any]:
    from mullui import ledger
    from mullui.context import Context
    from mullui.model import Agent

    with Sandbox("history") as sb:
        sb.fleet(live - 1)
        ctx = Context(sb.paths, cwd=sb.repo)
        real = min(200, history)
        for i in range(real):  # finished and merged agents, folded for real
            aid = f"h{i:07d}"
            ctx.store.create(Agent(id=aid, name=f"old-{i}", profile="shell", task=f"task {i}"))
            ctx.store.emit(aid, "start")
            ctx.store.emit(aid, "state", state="working", cause="spawned")
            ctx.store.emit(aid, "state", state="done", cause="hook:Stop", message="fin")
            ctx.store.emit(aid, "usage", tokens_in=1000, tokens_out=100, cost_usd=0.01)
            ctx.store.emit(aid, "merged", into="main", sha="0" * 40)
        t0 = time.perf_counter()
        folded = ledger.fold(ctx, limit=real)
        fold_s = time.perf_counter() - t0
        rows = [json.loads(x) for x in ledger.ledger_file(sb.paths).read_text().splitlines()]
        with ledger.ledger_file(sb.paths).open("a") as f:
            for i in range(real, history):
                r = json.loads(json.dumps(rows[i % len(rows)]))
                aid = f"h{i:07d}"
                r["id"] = r["ls"]["id"] = r["report"]["id"] = aid
                f.write(json.dumps(r) + "\n")
        size_mb = ledger.ledger_file(sb.paths).stat().st_size / 1e6
        # Live agents have their supervisor (it starts by itself when an agent is live):
        # one `mullui watch`, its probe the 20th live agent.  Started after the history
        # is made: a supervisor watching would take a just-created record (queued until
        # its `start` event) for a queued agent and start its task in a real pane.
        probe, _ = sb.hook_target("probe")
        sb.start_watch(probe)

        time.sleep(5.0)  # settle: the supervisor's first catch-up and the radar's cold pass
        cpu: dict[str, list[float]] = {}

        def timed(*args: str) -> tuple[list[float], Any]:
            """Wall seconds per run; the CPU seconds (the CLI and its children) go to
            ``cpu``: on a loaded 2-core machine the wall time is mostly waiting for a core."""
            out: list[float] = []
            res: Any = None
            for _ in range(runs):
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                r = sb.cli(*args)
                out.append(time.perf_counter() - t)
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                used = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
                cpu.setdefault(" ".join(args), []).append(used)
                if r.returncode != 0:
                    raise RuntimeError(f"mullui {' '.join(args)}: {r.stderr}")
                res = r.stdout
            return out, res

        ls_s, ls_out = timed("ls", "--json")
        inbox_s, _ = timed("inbox")
        report_s, rep = timed("report", "--json")
        all_s, all_out = timed("ls", "--all", "--json")
        from benchmarks.bench_tui import TuiSession

        tui = TuiSession(sb)
        tui_s = []
        for _ in range(max(2, runs // 2)):
            tui_s.append(tui.start((f"Agents {live}", "agent-000")))
            time.sleep(0.5)
            tui.quit()
        return {
            "live": live,
            "history": history,
            "folded_for_real": folded,
            "fold_per_agent_ms": fold_s / max(folded, 1) * 1000,
            "ledger_mb": size_mb,
            "ls_json_s": ls_s,
            "ls_json_agents": len(json.loads(ls_out)),
            "inbox_s": inbox_s,
            "report_json_s": report_s,
            "report_agents": len(json.loads(rep)["agents"]),
            "ls_all_json_s": all_s,
            "ls_all_agents": len(json.loads(all_out)),
            "tui_start_s": tui_s,
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "cpu_s": cpu,
        }


# ---- one agent with a long history -----------------------------------------------------------
def measure_long_history(transitions: int, events: int) -> dict[str, Any]:
    """Event -> state for an agent that already has ``transitions`` state changes: its
    spool gets them in one write (alternating blocked/working, as 1,000 answered
    permission prompts leave), one read folds them, then a real ``mullui watch`` applies
    ``events`` more, each appended in-process (``hook.ingest``, as in bench_core) and timed
    to the moment its journal line is on disk.  Before the watch starts, the fold alone
    (``Store.emit`` from a fresh ``Store``: what a process that just started pays) and,
    after, the record file's size: what every event's fold rewrites."""
    from benchmarks.bench_core import ingest_to_journal
    from mullui.events import encode, new_event
    from mullui.store import Store

    with Sandbox("longhist") as sb:
        target, token = sb.hook_target("long")
        spool = sb.paths.spool_file(target)
        lines = []
        for i in range(transitions):
            if i % 2 == 0:
                ev = new_event("state", state="blocked", cause="hook:PermissionRequest",
                               question=f"Bash: pytest -x tests/ # {i}")  # fmt: skip
            else:
                ev = new_event("state", state="working", cause="hook:PostToolUse")
            lines.append(encode({**ev, "agent": target}))
        with spool.open("ab") as f:
            f.write(b"".join(lines))
        t0 = time.perf_counter()
        a = Store(sb.paths).load(target)
        fold_s = time.perf_counter() - t0
        fold_ms: list[float] = []
        for i in range(events):  # the fold alone, as a process that just started pays it
            store = Store(sb.paths)
            t0 = time.perf_counter()
            store.emit(target, "activity", cause=f"bench:fold {i}")
            fold_ms.append((time.perf_counter() - t0) * 1000)
        sb.start_watch(target)
        time.sleep(1.0)
        asked = a.state.value == "working"  # the next event blocks it, then one resumes it
        got: list[float | None] = []
        for i in range(events):
            payload = json.dumps({"question": f"long history {i}?"})
            event, expect = ("Ask", "blocked") if asked else ("Working", "working")
            got.append(ingest_to_journal(sb, target, token, event, payload, expect))
            asked = not asked
            time.sleep(0.1)
        took = [ms for ms in got if ms is not None]
        missed = len(got) - len(took)
        after = Store(sb.paths).load(target)
        return {
            "transitions_before": a.seq,
            "transitions_after": after.seq,
            "first_fold_s": fold_s,
            "record_kb": sb.paths.record_file(target).stat().st_size / 1024,
            "event_ms": took,
            "fold_ms": fold_ms,
            "missed": missed,
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }


def run(quick: bool = False) -> dict[str, Any]:
    hk = measure_hooks(40 if quick else 200)
    cl = measure_claude(2 if quick else 4)
    hi = measure_history(10_000, 20, 3 if quick else 5)
    lh = measure_long_history(2000, 20 if quick else 60)
    f, u, ar, py = hk["fast"], hk["answer_unarmed"], hk["answer_armed"], hk["python"]

    def p50(xs: list[float]) -> float:
        return statistics.median(xs)

    metrics = [
        metric("hook per event, wall (sh fast path)", "ms", samples=f["wall_ms"],
               target="p95 < 10 ms", limit=HOOK_WALL_MS,
               note=f"spool.sh + a 1 KB payload; load {hk['load_avg_1m']}"),
        metric("hook per event, CPU (sh fast path)", "ms", samples=f["cpu_ms"],
               target="p95 < 5 ms", limit=HOOK_CPU_MS, note="sh + cat, the child's rusage"),
        metric("answer path (PreToolUse), unarmed, wall", "ms", samples=u["wall_ms"],
               note=f"CPU p50 {p50(u['cpu_ms']):.1f} ms; no <state>/answer/EVENT"),
        metric("answer path (PreToolUse), armed, wall", "ms", samples=ar["wall_ms"],
               note=f"CPU p50 {p50(ar['cpu_ms']):.1f} ms; python -S -I + guard check"),
        metric("python -m mullui hook (for comparison)", "ms", samples=py["wall_ms"],
               note=f"CPU p50 {p50(py['cpu_ms']):.1f} ms; the old per-event path"),
        metric("reader folds the raw backlog", "s", value=hk["fold_backlog_s"],
               note=f"{len(f['wall_ms']) + len(u['wall_ms']) + len(ar['wall_ms'])} raw "
                    "lines -> events (no supervisor ran)"),
    ]  # fmt: skip
    if cl is not None:
        metrics.append(
            metric(
                "claude tool call, extra time with hooks",
                "ms",
                value=cl["extra_per_tool_call_ms"],
                note=f"{cl['claude']}; claude -p x{TOOLS} tool calls, median "
                f"{p50(cl['wall_with_s']):.2f} s with vs {p50(cl['wall_without_s']):.2f}"
                f" s without; {cl['hook_calls']} hook calls",
            )  # fmt: skip
        )
        metrics.append(
            metric(
                "  the same hooks running `true`",
                "ms",
                value=cl["noop_hooks_extra_per_tool_call_ms"],
                note="Claude Code's own cost of running a hook, whatever it does",
            )  # fmt: skip
        )
    else:
        metrics.append(metric("claude tool call, extra time with hooks", "ms",
                              note="skipped: claude not installed"))  # fmt: skip
    n = f"{hi['history']:,} in history + {hi['live']} live"
    load = f"load {hi['load_avg_1m']}"

    def cpu(cmd: str) -> str:
        return f"CPU p50 {p50(hi['cpu_s'][cmd]):.3f} s"

    metrics += [
        metric(f"ls --json, {n}", "s", samples=hi["ls_json_s"], target="< 0.3 s", limit=LS_S,
               note=f"{hi['ls_json_agents']} listed; {cpu('ls --json')}; {load}"),
        metric(f"inbox, {n}", "s", samples=hi["inbox_s"], target="< 0.3 s", limit=INBOX_S,
               note=f"{cpu('inbox')}; {load}"),
        metric(f"TUI start to a full table, {n}", "s", samples=hi["tui_start_s"],
               target="< 1 s", limit=TUI_S, note=f"python -m mullui in tmux; {load}"),
        metric(f"report --json, {n}", "s", samples=hi["report_json_s"], target="< 2 s",
               limit=REPORT_S, note=f"{hi['report_agents']} rows; {cpu('report --json')}"),
        metric(f"ls --all --json, {n}", "s", samples=hi["ls_all_json_s"],
               note=f"{hi['ls_all_agents']} rows; ledger {hi['ledger_mb']:.1f} MB; "
                    f"{cpu('ls --all --json')}"),
        metric("history fold, per agent", "ms", value=hi["fold_per_agent_ms"],
               note=f"{hi['folded_for_real']} merged agents folded for real"),
        metric(f"event -> state, agent with {lh['transitions_before']:,} transitions", "ms",
               samples=lh["event_ms"], target="p95 < 150 ms", limit=EVENT_P95_MS,
               note=f"hook.ingest -> watch -> journal; record {lh['record_kb']:.0f} KB; "
                    f"{lh['missed']} missed; load {lh['load_avg_1m']}"),
        metric("  of which: one event's fold, that agent", "ms", samples=lh["fold_ms"],
               note="Store.emit in a fresh process' Store: append, read, fold, journal, "
                    "write the record"),
    ]  # fmt: skip
    return {
        "what": "scale: hook cost per event, a real Claude tool call, 10,000 agents of history",
        "quick": quick,
        "metrics": metrics,
        "raw": {"hooks": hk, "claude": cl, "history": hi, "long_history": lh},
    }


def main() -> None:
    bench_main(run, RESULTS, __doc__, "fewer samples")


if __name__ == "__main__":
    main()
