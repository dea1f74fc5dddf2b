"""The core without a screen: event -> state latency, exit detection, spawn time, the idle
CPU of ``mullui watch`` and ``mullui ls --json`` time, all with real processes.

Every measure runs in a fresh sandbox (``MULLUI_HOME``, tmux socket, git repository) that
is removed afterwards, tmux servers included:

- **spawn**: wall time of the real CLI, ``mullui spawn --agent shell TASK`` (one at a
  time, then 20 started at once), ``max_running`` raised so none is queued.
- **exit detection**: those agents run ``read go; date +%s.%N > STAMP; exit 3``; one Enter
  sent to the pane ends one; latency = the shell's last timestamp -> the change journal
  holds ``failed`` with exit 3 (tmux pane-died hook -> ``fasthook/spool.sh`` -> raw spool ->
  ``mullui watch``).
- **event -> state**: 100 agents in real tmux windows (``sleep 3600``) plus one
  ``demo``-profile record the hook events are for (no process behind it: the
  supervisor only reads the spool).  Alternating ``Ask`` (-> blocked) and ``Working``
  (-> working).  Measured from just before ``/bin/sh fasthook/spool.sh EVENT`` starts (what
  an agent's hook runs) and, separately, from just before the
  in-process append (``hook.ingest``) to the moment the journal line is on disk.  The
  journal line is written before the record (see ``Store._journal``).
- **idle CPU of watch**: a fresh ``mullui watch`` with those 100 agents, CPU seconds
  over 20 s as a percentage of one core: its own (utime+stime from /proc/PID/stat) plus
  the children it ran and waited for (cutime+cstime: the collision radar's git).
- **ls --json**: wall time of ``mullui ls --json`` with the 101 agents.

    python benchmarks/bench_core.py [--quick]

Prints a table and writes benchmarks/results/core.json; ``run()`` returns the dict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui` importable from the tree
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "core.json"

EVENT_P95_MS = 150.0
EVENT_FROM_HOOK_P95_MS = 60.0
WATCH_IDLE_PCT = 1.0
STARTUP_S = 1.5

#: Limits for the sandboxes: nothing queued, and no silence hook firing on the idle
#: `sleep 3600` agents while we measure idle (it would be a state change, not idling).
BENCH_CONFIG = """\
[limits]
max_running = 500
silence_after_s = 3600
stall_after_s = 7200

[watch]
on_quit = false
"""

_ENV_KEYS = (
    "MULLUI_HOME",
    "MULLUI_TMUX_SOCKET",
    "MULLUI_NOTIFY",
    "MULLUI_STATE_DIR",
    "MULLUI_WATCH_AUTOSTART",
    "TMUX",
)
_GIT_ID = {
    "GIT_AUTHOR_NAME": "mullui-bench",
    "GIT_AUTHOR_EMAIL": "bench@mullui.invalid",
    "GIT_COMMITTER_NAME": "mullui-bench",
    "GIT_COMMITTER_EMAIL": "bench@mullui.invalid",
}

Metric = dict[str, Any]


# ---- numbers ------------------------------------------------------------------------------
def pct(samples: list[float], q: int) -> float | None:
    """The q-th percentile (inclusive method); None without samples."""
    if not samples:
        return None
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def metric(
    name: str,
    unit: str,
    *,
    samples: list[float] | None = None,
    value: float | None = None,
    target: str | None = None,
    limit: float | None = None,
    judge: str = "p95",
    note: str = "",
) -> Metric:
    """One table row.  ``limit`` (same unit) is compared with the p95 (``judge="p95"``)
    or the value (``judge="value"``); no limit: informational, no verdict."""
    p50 = pct(samples, 50) if samples else None
    p95 = pct(samples, 95) if samples else None
    if value is None and samples:
        value = max(samples)
    checked = p95 if judge == "p95" else value
    ok = None if limit is None or checked is None else checked < limit
    if limit is not None and checked is None:
        ok = False  # no sample at all is a failure, not a pass
    rnd = 3 if unit == "s" else 2 if unit == "%" else 1

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, rnd)

    return {
        "metric": name,
        "unit": unit,
        "n": len(samples) if samples else (1 if value is not None else 0),
        "p50": r(p50),
        "p95": r(p95),
        "value": r(value),
        "target": target,
        "ok": ok,
        "note": note,
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (not its children) from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children_cpu_seconds(pid: int) -> float:
    """cutime + cstime of ``pid``: CPU of the children it has waited for (git, tmux)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def idle_cpu_percent(pid: int, seconds: float) -> tuple[float, float]:
    """(% of one core used by ``pid`` itself, % used by the children it ran and waited
    for, such as git) over ``seconds`` of wall time."""
    c0, k0, t0 = cpu_seconds(pid), children_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, k1, t1 = cpu_seconds(pid), children_cpu_seconds(pid), time.monotonic()
    return (c1 - c0) / (t1 - t0) * 100, (k1 - k0) / (t1 - t0) * 100


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


# ---- the sandbox --------------------------------------------------------------------------
class Sandbox:
    """A fresh MULLUI_HOME, tmux socket and git repository; the process environment
    points at them while it is entered (the in-process Workspace reads it)."""

    def __init__(self, label: str, config: str = BENCH_CONFIG) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"mullui-bench-{label}-"))
        self.home = self.root / "home"
        self.home.mkdir()
        (self.home / "config.toml").write_text(config)
        self.socket = f"mullui-bench-{label}-{uuid.uuid4().hex[:6]}"
        self.sockets = [self.socket]  # every tmux server to kill at the end
        self.procs: list[subprocess.Popen[Any]] = []
        self._saved: dict[str, str | None] = {}
        self.repo = self.root / "repo"
        self.repo.mkdir()
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
            subprocess.run(["git", *args], cwd=self.repo, env={**os.environ, **_GIT_ID},
                           check=True, capture_output=True, timeout=30)  # fmt: skip

    def __enter__(self) -> Sandbox:
        self._saved = {k: os.environ.get(k) for k in (*_ENV_KEYS, *_GIT_ID)}
        # MULLUI_WATCH_AUTOSTART=0: the sandboxes measure the supervisor they start
        # themselves (a watch, or the TUI), not one a spawn would start.
        os.environ.update(MULLUI_HOME=str(self.home), MULLUI_TMUX_SOCKET=self.socket,
                          MULLUI_NOTIFY="none", MULLUI_WATCH_AUTOSTART="0",
                          **_GIT_ID)  # fmt: skip
        os.environ.pop("MULLUI_STATE_DIR", None)
        os.environ.pop("TMUX", None)  # we may be run from inside a developer's tmux
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for s in self.sockets:
            subprocess.run(["tmux", "-L", s, "kill-server"], capture_output=True, check=False)
            # tmux 3.3a leaves the socket file of a killed server behind: remove ours, once
            # nothing answers on it.
            alive = subprocess.run(["tmux", "-L", s, "list-sessions"], capture_output=True,
                                   check=False).returncode == 0  # fmt: skip
            tmpdir = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
            if not alive:
                with contextlib.suppress(OSError):
                    (tmpdir / s).unlink()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def paths(self) -> Any:
        from mullui.paths import get_paths

        return get_paths({"MULLUI_HOME": str(self.home)})

    def env(self, **extra: str) -> dict[str, str]:
        e = dict(os.environ)
        e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
        e.update(extra)
        return e

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "mullui", *args]
        return subprocess.run(argv, cwd=self.repo, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip

    def workspace(self) -> Any:
        from mullui.workspace import Workspace

        return Workspace(cwd=self.repo)

    def fleet(self, n: int, first_task: str | None = None) -> list[str]:
        """``n`` shell agents in real tmux windows (``sleep 3600``; the first one runs
        ``first_task`` when given), started in-process the way ``mullui spawn`` does."""
        ws = self.workspace()
        ids = []
        for i in range(n):
            task = first_task if i == 0 and first_task else "sleep 3600"
            ids.append(ws.spawn(task, agent="shell", name=f"agent-{i:03d}").id)
        return ids

    def hook_target(self, name: str = "hook-target") -> tuple[str, str]:
        """A ``demo``-profile record (state working) for hook events; (id, token)."""
        from mullui.model import Agent, State
        from mullui.store import Store

        a, token = Store(self.paths).create(Agent(
            id=f"bench{uuid.uuid4().hex[:6]}", name=name, profile="demo", task="benchmark",
            state=State.WORKING, cause="bench"))  # fmt: skip
        return a.id, token

    def start_watch(self, probe: str) -> subprocess.Popen[bytes]:
        """A real ``mullui watch``; returns once it applies events (an ``activity`` event
        for ``probe``, appended until one reaches the journal)."""
        from mullui.events import append_event, new_event

        err = (self.root / f"watch-{len(self.procs)}.err").open("wb")
        p = subprocess.Popen([sys.executable, "-m", "mullui", "watch"], cwd=self.repo,
                             env=self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        self.procs.append(p)
        journal = Journal(self.paths.changes_file)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"mullui watch exited: {Path(err.name).read_text()}")
            append_event(self.paths, probe, new_event("activity", cause="bench:probe"))
            if journal.wait(lambda e: e.get("agent") == probe, 0.3) is not None:
                time.sleep(0.5)  # let its start-up (first catch-up, queue tick) finish
                return p
        raise RuntimeError(f"mullui watch never applied an event: {Path(err.name).read_text()}")


class Journal:
    """Follows ``changes.jsonl`` from its current end (what the supervisor applied), by
    the journal's logical cursors (they survive its compaction)."""

    def __init__(self, path: Path) -> None:
        from mullui import journal

        self.path = path
        self.offset = journal.end_cursor(path)

    def poll(self) -> list[dict[str, Any]]:
        from mullui import journal

        out = []
        for e, cursor in journal.read(self.path, self.offset):
            out.append(e)
            self.offset = cursor
        return out

    def wait(
        self,
        pred: Callable[[dict[str, Any]], bool],
        timeout: float,
        also: Callable[[], None] | None = None,
    ) -> tuple[float, float] | None:
        """(perf_counter, time.time) when a matching line was seen; None on timeout.
        Polled every 1 ms (a stat and a short read): the measuring resolution."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.poll():
                if pred(e):
                    return time.perf_counter(), time.time()
            if also is not None:
                also()
            time.sleep(0.001)
        return None


def _is(
    agent_id: str, state: str, exit_code: int | None = None
) -> Callable[[dict[str, Any]], bool]:
    def pred(e: dict[str, Any]) -> bool:
        rec = e.get("record") or {}
        if e.get("agent") != agent_id or rec.get("state") != state:
            return False
        return exit_code is None or rec.get("exit_code") == exit_code

    return pred


def ingest_to_journal(
    sb: Sandbox, target: str, token: str, event: str, payload: str, expect: str
) -> float | None:
    """Milliseconds from the hook's in-process append (``hook.ingest``) of ``event`` for
    ``target`` to its journal line saying ``expect``; None when none came within 10 s."""
    from mullui import hook

    journal = Journal(sb.paths.changes_file)
    t0 = time.perf_counter()
    hook.ingest(event, [], agent=target, token=token, stdin=payload)
    seen = journal.wait(_is(target, expect), 10)
    return None if seen is None else (seen[0] - t0) * 1000


# ---- measures ---------------------------------------------------------------------------
def measure_spawn_and_exit(singles: int, parallel: int) -> dict[str, Any]:
    """CLI spawn wall times (one at a time, then ``parallel`` at once) and the exit
    detection latency of every agent spawned."""
    with Sandbox("spawn") as sb:
        stamps = sb.root / "stamps"
        stamps.mkdir()
        task = f'read go; date +%s.%N > {stamps}/"$MULLUI_AGENT_ID"; exit 3'
        probe, _ = sb.hook_target("probe")
        sb.start_watch(probe)

        def spawn_argv(name: str) -> list[str]:
            return [sys.executable, "-m", "mullui", "spawn", "--agent", "shell", "--name", name,
                    "--no-attach", task]  # fmt: skip

        single: list[float] = []
        ids: list[str] = []
        for i in range(singles):
            t0 = time.perf_counter()
            r = subprocess.run(spawn_argv(f"one-{i}"), cwd=sb.repo, env=sb.env(),
                               capture_output=True, text=True, timeout=120)  # fmt: skip
            single.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"mullui spawn failed: {r.stderr}")
            ids.append(r.stdout.strip())

        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                spawn_argv(f"par-{i:02d}"),
                cwd=sb.repo,
                env=sb.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(parallel)
        ]
        each: list[float] = [0.0] * parallel
        pending = dict(enumerate(procs))
        while pending:  # per-process wall time, to the 5 ms
            for i, p in list(pending.items()):
                if p.poll() is not None:
                    each[i] = time.perf_counter() - t0
                    del pending[i]
            time.sleep(0.005)
        total = max(each)
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"parallel mullui spawn failed: {err}")
            ids.append(out.strip())

        # Exit detection: one agent at a time, so each is a lone event.
        from mullui.store import Store

        store = Store(sb.paths)
        exits: list[float] = []
        missed = 0
        for aid in ids:
            a = store.get(aid)  # the watch applied it long ago: a plain read
            assert a is not None and a.tmux_target, a
            journal = Journal(sb.paths.changes_file)
            subprocess.run(["tmux", "-L", sb.socket, "send-keys", "-t", a.tmux_target, "Enter"],
                           check=True, capture_output=True, timeout=10)  # fmt: skip
            seen = journal.wait(_is(aid, "failed", 3), 10)
            stamp = stamps / aid
            if seen is None or not stamp.exists():
                missed += 1
                continue
            exits.append((seen[1] - float(stamp.read_text())) * 1000)
            time.sleep(0.05)
    return {
        "spawn_one_s": single,
        "spawn_parallel_each_s": each,
        "spawn_parallel_total_s": total,
        "exit_ms": exits,
        "exit_missed": missed,
    }


def measure_fleet(agents: int, events: int, idle_s: float, ls_runs: int) -> dict[str, Any]:
    """With ``agents`` idle agents: watch idle CPU, event -> state, ls --json."""
    from mullui.agents.base import spool_hook_argv

    with Sandbox("fleet") as sb:
        t0 = time.perf_counter()
        sb.fleet(agents)
        setup_s = time.perf_counter() - t0
        target, token = sb.hook_target()
        watch = sb.start_watch(target)
        time.sleep(1.5)  # settle: the first catch-up of 100 records, the first timers
        idle_pct, idle_kids_pct = idle_cpu_percent(watch.pid, idle_s)
        watch_rss = rss_bytes(watch.pid)

        hook_env = sb.env(MULLUI_AGENT_ID=target, MULLUI_AGENT_TOKEN=token,
                          MULLUI_STATE_DIR=str(sb.paths.state_dir))  # fmt: skip
        from_hook: list[float] = []
        hook_exit: list[float] = []
        hook_cpu: list[float] = []
        load0 = os.getloadavg()[0]
        from_append: list[float] = []
        missed = 0
        expect = "blocked"
        rnd = random.Random(8)
        for i in range(events):
            event = "Ask" if expect == "blocked" else "Working"
            payload = json.dumps({"question": f"bench question {i}?"})
            journal = Journal(sb.paths.changes_file)
            if i % 2 == 0:  # the hook as an agent runs it: the sh fast path
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                p = subprocess.Popen([*spool_hook_argv(), event],
                                     env=hook_env, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
                assert p.stdin is not None
                p.stdin.write(payload.encode())
                p.stdin.close()
                ended: list[float] = []

                def note_exit(p: subprocess.Popen[bytes] = p, ended: list[float] = ended) -> None:
                    if not ended and p.poll() is not None:
                        ended.append(time.perf_counter())

                seen = journal.wait(_is(target, expect), 10, also=note_exit)
                p.wait(10)
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the hook: our only child
                hook_cpu.append((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000)
                if p.returncode != 0:
                    assert p.stderr is not None
                    raise RuntimeError(f"hook {event} failed: {p.stderr.read().decode()}")
                if seen is None:
                    missed += 1
                else:
                    from_hook.append((seen[0] - t0) * 1000)
                    if ended:
                        hook_exit.append((ended[0] - t0) * 1000)
            else:  # the append itself (what the hook does once Python is up)
                ms = ingest_to_journal(sb, target, token, event, payload, expect)
                if ms is None:
                    missed += 1
                else:
                    from_append.append(ms)
            expect = "working" if expect == "blocked" else "blocked"
            time.sleep(rnd.uniform(0.05, 0.15))  # apart: each one a lone event, as in life

        ls: list[float] = []
        count = 0
        for _ in range(ls_runs):
            t0 = time.perf_counter()
            r = sb.cli("ls", "--json")
            ls.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise RuntimeError(f"mullui ls --json failed: {r.stderr}")
            count = len(json.loads(r.stdout))
        watch_alive = watch.poll() is None
    return {
        "agents_in_windows": agents,
        "fleet_setup_s": setup_s,
        "watch_idle_pct": idle_pct,
        "watch_idle_children_pct": idle_kids_pct,
        "watch_idle_window_s": idle_s,
        "watch_rss_mb": watch_rss / 2**20,
        "event_from_hook_ms": from_hook,
        "hook_process_ms": hook_exit,
        "hook_process_cpu_ms": hook_cpu,
        "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "event_from_append_ms": from_append,
        "event_missed": missed,
        "ls_json_s": ls,
        "ls_agents": count,
        "watch_alive_after": watch_alive,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """All core measures; ``quick`` takes fewer samples and a 10 s idle window."""
    se = measure_spawn_and_exit(singles=3 if quick else 5, parallel=20)
    fl = measure_fleet(100, events=20 if quick else 60, idle_s=10.0 if quick else 20.0,
                       ls_runs=3 if quick else 5)  # fmt: skip
    missed = fl["event_missed"]
    metrics = [
        metric("event -> state, from hook process start", "ms", samples=fl["event_from_hook_ms"],
               target="p95 < 60 ms", limit=EVENT_FROM_HOOK_P95_MS,
               note=f"fasthook/spool.sh -> watch -> journal; {missed} missed"),
        metric("event -> state, from spool append", "ms", samples=fl["event_from_append_ms"],
               target="p95 < 150 ms", limit=EVENT_P95_MS, note="hook.ingest -> journal"),
        metric("  of which: hook process wall time", "ms", samples=fl["hook_process_ms"],
               note=f"sh + cat + one appended line; its CPU p50 "
                    f"{pct(fl['hook_process_cpu_ms'], 50) or 0:.1f} ms; load "
                    f"{fl['load_avg_1m'][0]} -> {fl['load_avg_1m'][1]}"),
        metric("exit detection (shell exits -> failed)", "ms", samples=se["exit_ms"],
               note=f"pane-died hook -> journal; {se['exit_missed']} missed"),
        metric("spawn, one at a time (CLI wall)", "s", samples=se["spawn_one_s"],
               note="mullui spawn --agent shell"),
        metric("spawn, 20 in parallel (each CLI wall)", "s", samples=se["spawn_parallel_each_s"],
               value=se["spawn_parallel_total_s"], note="value: all 20 done"),
        metric("idle CPU, mullui watch + children, 100 agents", "%",
               value=fl["watch_idle_pct"] + fl["watch_idle_children_pct"],
               target="< 1 %", limit=WATCH_IDLE_PCT, judge="value",
               note=f"% of one core over {fl['watch_idle_window_s']:.0f} s: watch "
                    f"{fl['watch_idle_pct']:.2f} %, its children (git) "
                    f"{fl['watch_idle_children_pct']:.2f} %"),
        metric("mullui ls --json, 101 agents", "s", samples=fl["ls_json_s"],
               target="< 1.5 s", limit=STARTUP_S, note="CLI wall"),
    ]  # fmt: skip
    return {
        "what": "core: spawn, exit detection, event -> state, watch idle CPU, ls --json",
        "quick": quick,
        "metrics": metrics,
        "raw": {"spawn_exit": se, "fleet": fl},
    }


def print_table(metrics: list[Metric], title: str = "") -> None:
    head = f"{'metric':<46} {'p50':>9} {'p95':>9} {'value':>9} {'target':>14}  verdict"
    if title:
        print(title)
    print(head)
    print("-" * len(head))
    for m in metrics:

        def f(x: float | None, unit: str = m["unit"]) -> str:
            return "-" if x is None else f"{x:g} {unit}"

        verdict = {True: "PASS", False: "FAIL", None: ""}[m["ok"]]
        print(f"{m['metric']:<46} {f(m['p50']):>9} {f(m['p95']):>9} {f(m['value']):>9} "
              f"{m['target'] or '-':>14}  {verdict}")  # fmt: skip


def bench_main(
    measure: Callable[[bool], dict[str, Any]], results: Path, doc: str | None, quick_help: str
) -> None:
    """A benchmark module run as a script: ``--quick``, the table, the JSON file."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    args = ap.parse_args()
    result = measure(args.quick)
    print_table(result["metrics"])
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results.relative_to(ROOT)}")


def main() -> None:
    bench_main(run, RESULTS, __doc__, "fewer samples, 10 s idle window")


if __name__ == "__main__":
    main()
