"""Run every mullui benchmark, print one table, write JSON.

    python benchmarks/run.py [--quick] [--only core,tui,...] [--readme]

Benchmarks (each also runs alone as ``python benchmarks/bench_X.py``):

- ``core``        spawn (1 and 20 in parallel), exit detection, event -> state, idle CPU
                  of ``mullui watch`` with 100 agents, ``mullui ls --json``
- ``tui``         the real TUI in tmux with 100 agents: start-up, idle CPU, key echo (tmux
                  and Pilot), frame interval, key echo, CPU and RSS while one agent prints
                  ~50 MB/s
- ``notify``      state change -> Notify on a private D-Bus (bench_notify.py)
- ``collisions``  the collision radar with 50 agents (bench_collisions.py)
- ``guard``       the collision guard's added time per file edit (bench_guard.py)
- ``remote``      agents over SSH (bench_remote.py), when present
- ``scale``       hook cost per event (sh fast path, answer path), a real Claude Code tool
                  call with and without mullui's hooks, 10,000 agents of history + 20 live:
                  ls, inbox, TUI start, report; event -> state and one event's fold for
                  an agent with 2,000 transitions (bench_scale.py)
- ``agents``      the real Gemini CLI, OpenCode and Aider: prompt drawn -> ``blocked``
                  (bench_agents.py), for each one installed

Each writes ``benchmarks/results/<name>.json``; everything together goes to
``benchmarks/results/all.json`` with the machine it ran on.  ``--readme`` replaces the
table in README.md's "Benchmarks" section.  Every run uses fresh ``MULLUI_HOME``s and
tmux sockets and kills its tmux servers.  Exit status 1 when a target was missed or a
benchmark broke.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui`, `benchmarks`, `tests` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_core import Metric, metric, print_table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
ORDER = ("core", "tui", "notify", "collisions", "guard", "remote", "agents", "scale")
MARK_START = "<!-- benchmarks:start -->"
MARK_END = "<!-- benchmarks:end -->"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""

    def first(cmd: list[str]) -> str | None:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
            return out.strip().splitlines()[0] if out.strip() else None
        except (OSError, subprocess.SubprocessError):
            return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gb = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        textual = importlib.import_module("textual").__version__
    except (ImportError, AttributeError):
        textual = None
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "kernel": platform.release(),
        "os": first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "tmux": first(["tmux", "-V"]),
        "git": first(["git", "--version"]),
        "textual": textual,
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


# ---- turning each benchmark's own JSON into table rows ------------------------------------
def rows_notify(r: dict[str, Any]) -> list[Metric]:
    m = metric("state change -> Notify (D-Bus)", "ms", target="p95 < 250 ms",
               note=f"{r['notified']}/{r['changes']} notified, {r['missed']} missed")  # fmt: skip
    m.update(p50=r.get("p50_ms"), p95=r.get("p95_ms"), value=r.get("max_ms"), n=r["notified"],
             ok=bool(r.get("ok")))  # fmt: skip
    return [m]


def rows_collisions(r: dict[str, Any]) -> list[Metric]:
    agents = r.get("agents")
    cold = metric(f"collision radar, {agents} agents, cold", "s", value=r.get("cold_s"),
                  target="< 1 s", limit=r.get("target_s", 1.0), judge="value",
                  note=f"best cold {r.get('cold_s_min')} s; load {r.get('load_avg_1m')}",
                  )  # fmt: skip
    warm = metric(f"collision radar, {agents} agents, warm", "s",
                  value=r.get("warm_s_median"), target="< 1 s", limit=r.get("target_s", 1.0),
                  judge="value", note="median")  # fmt: skip
    return [cold, warm]


def rows_generic(name: str, r: dict[str, Any]) -> list[Metric]:
    """A benchmark whose JSON we do not know (yet): its ``metrics`` rows when it has
    them, else a p50/p95 pair, else one pointer row."""
    if isinstance(r.get("metrics"), list):
        return [dict(m) for m in r["metrics"]]
    if "p95_ms" in r:
        m = metric(r.get("what") or name, "ms")
        m.update(p50=r.get("p50_ms"), p95=r.get("p95_ms"), ok=r.get("ok"))
        return [m]
    return [metric(name, "", note=f"see benchmarks/results/{name}.json")]


def _load(name: str) -> Any:
    try:
        return importlib.import_module(f"benchmarks.bench_{name}")
    except ModuleNotFoundError as e:
        if e.name == f"benchmarks.bench_{name}":
            return None
        raise


def run_one(name: str, quick: bool) -> tuple[dict[str, Any] | None, list[Metric]]:
    """(its JSON, its rows); a missing or broken benchmark is one FAIL/skip row."""
    mod = _load(name)
    if mod is None:
        skipped = metric(f"{name}: skipped", "", note=f"benchmarks/bench_{name}.py not present")
        return None, [skipped]
    if name == "core":
        result = mod.run(quick=quick)
    elif name == "tui":
        result = mod.run(quick=quick)
    elif name == "notify":
        result = mod.run(count=15 if quick else 40)
    elif name == "collisions":
        result = mod.run(agents=20 if quick else 50, idle_s=2.0 if quick else 5.0,
                         repeats=3 if quick else 5)  # fmt: skip
    else:
        try:
            result = mod.run(quick=quick)
        except TypeError:
            result = mod.run()
    if name in ("core", "tui"):
        rows = [dict(m) for m in result["metrics"]]
    elif name == "notify":
        rows = rows_notify(result)
    elif name == "collisions":
        rows = rows_collisions(result)
    else:
        rows = rows_generic(name, result)
    return result, rows


def markdown(rows: list[Metric], mach: dict[str, Any], started: str, seconds: float,
             quick: bool) -> str:  # fmt: skip
    def f(x: Any, unit: str) -> str:
        return "–" if x is None else f"{x:g} {unit}".strip()

    out = [
        "| metric | p50 | p95 | value | target | |",
        "|---|---:|---:|---:|---|---|",
    ]
    for m in rows:
        verdict = {True: "pass", False: "**FAIL**", None: ""}[m["ok"]]
        note = f" ({m['note']})" if m.get("note") else ""
        out.append(f"| {m['metric'].strip()}{note} | {f(m['p50'], m['unit'])} | "
                   f"{f(m['p95'], m['unit'])} | {f(m['value'], m['unit'])} | "
                   f"{m['target'] or ''} | {verdict} |")  # fmt: skip
    out.append("")
    out.append(
        f"Measured {started[:16].replace('T', ' ')} UTC{' (--quick)' if quick else ''} in "
        f"{seconds / 60:.1f} min on: {mach['cpu']}, {mach['cpus']} CPUs, "
        f"{mach['memory_gb']} GB RAM, {mach['os']} (Linux {mach['kernel']}), Python "
        f"{mach['python']}, {mach['tmux']}, Textual {mach['textual']}; 1-min load average "
        f"{mach['load_avg_1m_at_start']} at the start."
    )
    return "\n".join(out)


def update_readme(table_md: str) -> bool:
    """Replace the text between the benchmark markers in README.md (only that)."""
    text = README.read_text()
    pat = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), re.S)
    if not pat.search(text):
        print("README.md has no benchmark markers; table not written", file=sys.stderr)
        return False
    README.write_text(pat.sub(lambda _: f"{MARK_START}\n{table_md}\n{MARK_END}", text, count=1))
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description="Run every mullui benchmark; print a table.")
    ap.add_argument("--quick", action="store_true", help="fewer samples, shorter windows")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ORDER)}")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ORDER)
    unknown = set(names) - set(ORDER)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    mach = machine()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    rows: list[Metric] = []
    results: dict[str, Any] = {}
    for name in names:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        t1 = time.monotonic()
        try:
            result, got = run_one(name, args.quick)
        except Exception as e:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            result = {"error": f"{type(e).__name__}: {e}"}
            got = [metric(f"{name}: broke", "", note=result["error"][:120])]
            got[0]["ok"] = False
        print(f"   {name}: {time.monotonic() - t1:.0f} s", file=sys.stderr, flush=True)
        rows += got
        if result is not None:
            results[name] = result
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    seconds = time.monotonic() - t0
    mach["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    table_md = markdown(rows, mach, started, seconds, args.quick)
    (RESULTS / "all.json").write_text(json.dumps({
        "started_at": started, "seconds": round(seconds, 1), "quick": args.quick,
        "machine": mach, "table": rows, "results": results,
    }, indent=2, default=str) + "\n")  # fmt: skip
    print()
    print_table(rows)
    for m in rows:
        if m["ok"] is False:
            print(f"  FAIL {m['metric'].strip()}: {m['note'] or 'see its JSON'}")
    print(f"\n{seconds:.0f} s; machine: {mach['cpu']}, {mach['cpus']} CPUs, load "
          f"{mach['load_avg_1m_at_start']} -> {mach['load_avg_1m_at_end']}")  # fmt: skip
    print(f"wrote {(RESULTS / 'all.json').relative_to(ROOT)}")
    if args.readme and update_readme(table_md):
        print("updated README.md")
    return 1 if any(m["ok"] is False for m in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
