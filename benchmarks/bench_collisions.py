"""Collision radar: time to recompute all overlaps for many agents, cold and warm cache,
and proof that the engine spends no CPU while idle.

    python benchmarks/bench_collisions.py [--agents 50] [--files 20] [--idle 5]

Prints a table and writes benchmarks/results/collisions.json; ``run()`` returns the dict.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui` and `tests.support` importable
    sys.path.insert(0, str(ROOT))

from mullui.collisions import CollisionCache, Work, find_collisions  # noqa: E402
from tests.support.collide_repo import (  # noqa: E402
    add_worktree,
    commit_all,
    git,
    lines,
    make_repo,
    write,
)

TARGET_S = 1.0
HOT_FILES = 20  # files many agents touch
HOT_LINES = 200
PER_AGENT_HOT = 5
RESULTS = ROOT / "benchmarks" / "results" / "collisions.json"


def _build(root: Path, agents: int, files: int) -> list[Work]:
    """A repository and one worktree per agent with ``files`` changed files each.

    Per agent: 5 hot files shared with others (every 4th agent edits line 1 of them, which
    conflicts; the rest edit their own far-apart line, which overlaps cleanly); the rest are
    private files, some committed, 3 modified but uncommitted, 2 new and untracked.
    """
    private = files - PER_AGENT_HOT
    repo_files = {f"hot/h{j:02d}.py": lines(HOT_LINES) for j in range(HOT_FILES)}
    repo_files |= {f"src/m{k:04d}.py": lines(30) for k in range(agents * private)}
    repo = make_repo(root / "repo", repo_files)
    works: list[Work] = []
    for i in range(agents):
        name = f"a{i:02d}"
        wt = add_worktree(repo, root / f"wt-{name}", f"agent/{name}")
        line = 1 if i % 4 == 0 else 3 + 3 * (i % 60)
        for m in range(PER_AGENT_HOT):
            j = (i * 3 + m) % HOT_FILES
            write(wt, f"hot/h{j:02d}.py", lines(HOT_LINES, **{f"L{line}": f"agent {name}"}))
        mine = [f"src/m{i * private + k:04d}.py" for k in range(private)]
        committed, uncommitted = mine[: private - 5], mine[private - 5 : private - 2]
        for rel in committed:
            write(wt, rel, lines(30, L7=f"{name} was here"))
        commit_all(wt, f"{name}: committed work")
        for rel in uncommitted:
            write(wt, rel, lines(30, L20=f"{name} is still typing"))
        for k in range(2):
            write(wt, f"new/{name}_{k}.py", f"# new file by {name}\n")
        works.append(Work(name, repo, wt, f"agent/{name}", "main"))
    return works


def _cpu_s() -> float:
    """CPU time of this process and every child it waited for (git runs as children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(
    agents: int = 50, files: int = 20, idle_s: float = 5.0, repeats: int = 5
) -> dict[str, object]:
    """Build the scenario, measure, return the numbers (also what the JSON holds)."""
    with tempfile.TemporaryDirectory(prefix="mullui-bench-coll-") as tmp:
        t0 = time.perf_counter()
        works = _build(Path(tmp), agents, files)
        setup_s = time.perf_counter() - t0

        # Wall time depends on what else the machine runs; CPU seconds (ours + git's) over
        # the core count is the floor an idle machine would show.
        cache = CollisionCache()
        cpu0, t0 = _cpu_s(), time.perf_counter()
        found = find_collisions(works, cache)
        cold_s, cold_cpu_s = time.perf_counter() - t0, _cpu_s() - cpu0
        cold_git = cache.stats.git_calls
        merge_trees = cache.stats.pair_misses

        # A restarted supervisor: empty cache, but the snapshot objects already exist.
        restart: list[float] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            find_collisions(works, CollisionCache())
            restart.append(time.perf_counter() - t0)

        warm: list[float] = []
        cpu0 = _cpu_s()
        for _ in range(repeats):
            t0 = time.perf_counter()
            again = find_collisions(works, cache)
            warm.append(time.perf_counter() - t0)
        warm_cpu_s = (_cpu_s() - cpu0) / repeats
        assert again == found, "a warm recompute must give the cold answer"
        warm_git = (cache.stats.git_calls - cold_git) // repeats

        # One agent keeps typing: only its change set and its pairs are recomputed.
        first = works[1]
        assert first.worktree is not None
        write(first.worktree, "src/extra_edit.py", "typing\n")
        t0 = time.perf_counter()
        find_collisions(works, cache)
        one_changed_s = time.perf_counter() - t0

        # The same, driven by the edit hook naming the agent: the others are not re-probed.
        write(first.worktree, "src/extra_edit.py", "typing more\n")
        t0 = time.perf_counter()
        find_collisions(works, cache, changed={first.agent_id})
        one_event_s = time.perf_counter() - t0

        threads_after = threading.active_count()
        cpu0 = _cpu_s()
        time.sleep(idle_s)
        idle_cpu_s = _cpu_s() - cpu0

        marked = [c for lst in found.values() for c in lst]
        result: dict[str, object] = {
            "agents": agents,
            "files_per_agent": files,
            "repo_files": int(git(works[0].repo, "ls-files", "-z").count("\0")),
            "setup_s": round(setup_s, 2),
            "pairs_overlap": sum(1 for c in marked if not c.conflict) // 2,
            "pairs_conflict": sum(1 for c in marked if c.conflict) // 2,
            "merge_tree_runs_cold": merge_trees,
            "git_calls_cold": cold_git,
            "git_calls_warm": warm_git,
            "cold_s": round(cold_s, 4),
            "cold_cpu_s": round(cold_cpu_s, 4),
            "cold_restart_s_median": round(statistics.median(restart), 4),
            "cold_s_min": round(min([cold_s, *restart]), 4),
            "warm_s_median": round(statistics.median(warm), 4),
            "warm_cpu_s": round(warm_cpu_s, 4),
            "one_agent_changed_s": round(one_changed_s, 4),
            "one_agent_event_s": round(one_event_s, 4),
            "target_s": TARGET_S,
            "cold_ok": cold_s < TARGET_S,
            "warm_ok": statistics.median(warm) < TARGET_S,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "idle_wait_s": idle_s,
            "idle_cpu_s": round(idle_cpu_s, 4),
            "threads_after_call": threads_after,
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--files", type=int, default=20, help="changed files per agent")
    ap.add_argument("--idle", type=float, default=5.0, help="idle wait in seconds")
    args = ap.parse_args()
    result = run(args.agents, args.files, args.idle)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result)
    print(f"{'collision radar':<{width}}  value")
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
