"""Blocked detection with the real agent CLIs: the prompt drawn on screen -> the agent
``blocked`` in mullui.

Each installed CLI (Gemini CLI, OpenCode, Aider) runs through ``mullui spawn --agent NAME``
in tmux against its loopback stub (``tests/support``), with a script of permission
prompts.  For every prompt the pane is captured every 10 ms until the prompt's text
shows (``drawn``); the agent's ``state_since`` once ``mullui ls`` says ``blocked`` is
when mullui recorded it.  ``blocked - drawn`` is the latency (negative: the CLI's hook
reported the prompt before it was drawn).  Then the human's answer goes in with
``mullui send`` and the next prompt follows (Aider exits after each reply: one spawn per
sample).

    python benchmarks/bench_agents.py [--samples 5] [--only gemini,opencode,aider]

Targets: p95 < 150 ms where the CLI has a hook (Gemini, OpenCode), < 1 s otherwise
(Aider, which mullui watches by reading its pane).  Prints a table and writes
benchmarks/results/agents.json; ``run()`` returns the dict.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui`, `tests` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_core import Metric, metric, print_table  # noqa: E402
from tests.support.agent_clis import (  # noqa: E402
    Pipeline,
    setup_aider,
    setup_gemini,
    setup_opencode,
    since,
    wait_for,
)
from tests.support.chat_stub import ChatStub  # noqa: E402
from tests.support.gemini_stub import GeminiStub  # noqa: E402
from tests.support.http_stub import HttpStub, Turn  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
HOOK_P95_MS = 150.0
SCREEN_P95_MS = 1000.0


def _version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    last = (out.stdout.strip().splitlines() or [""])[-1]
    return last.removeprefix(f"{binary} ").strip() or None


def _one_prompt(
    p: Pipeline, target: str, prompt: str, answer: str, after: float, stays: bool = True
) -> float:
    """Wait for ``prompt`` on screen, then for ``blocked`` newer than ``after``; answer.
    Returns blocked - drawn in ms.  ``stays``: the CLI lives on after the answer (the
    prompt then leaves the screen before the next one is timed)."""
    wait_for(lambda: prompt in p.screen(target), 240, f"{prompt!r} on screen", 0.01)
    drawn = time.time()
    blocked = wait_for(
        lambda: (a := p.agent())["state"] == "blocked" and since(a) > after and a,
        30,
        "blocked",
        0.1,
    )
    p.send(answer)
    if stays:  # the prompt must leave the screen before the next one can be timed
        wait_for(lambda: prompt not in p.screen(target), 60, f"{prompt!r} to go away", 0.05)
    return (since(blocked) - drawn) * 1000


def _pane(p: Pipeline) -> str:
    return str(wait_for(lambda: p.agent()["tmux_target"], 60, "the agent's pane", 0.2))


def _session(
    make_stub: Callable[[list[Turn]], HttpStub],
    setup: Callable[[Pipeline, str], list[Path]],
    agent: str,
    prompt: str,
    answer: str,
    call: Callable[[int], Turn],
    samples: int,
) -> list[float]:
    """One agent, ``samples`` prompts in one conversation."""
    out: list[float] = []
    # ignore_cleanup_errors: a CLI or mullui's own supervisor may still be writing there
    # for a moment after the tmux server is gone
    with tempfile.TemporaryDirectory(
        prefix=f"mullui-bench-{agent}-", ignore_cleanup_errors=True
    ) as d:
        p = Pipeline(Path(d))
        turns = [call(i) for i in range(samples)] + [Turn.say("All done.")]
        try:
            with make_stub(turns) as stub:
                setup(p, stub.url)
                p.spawn("create the files", agent)
                target = _pane(p)
                after = 0.0
                for _ in range(samples):
                    ms = _one_prompt(p, target, prompt, answer, after)
                    out.append(round(ms, 1))
                    after = time.time()
                p.state("done", 120)
        finally:
            p.close()
    return out


def _gemini(samples: int) -> list[float]:
    return _session(
        GeminiStub,
        setup_gemini,
        "gemini",
        "Allow execution",
        "1",
        lambda i: Turn.call("run_shell_command", command=f"touch f{i}.txt", description="x"),
        samples,
    )


def _opencode(samples: int) -> list[float]:
    return _session(
        ChatStub,
        setup_opencode,
        "opencode",
        "Permission required",
        "",
        lambda i: Turn.call("bash", command=f"touch f{i}.txt", description=f"Create f{i}.txt"),
        samples,
    )


def _aider(samples: int) -> list[float]:
    """Aider exits after each reply: one spawn per sample."""
    out: list[float] = []
    for i in range(samples):
        reply = f"Creating it.\n\n```bash\ntouch f{i}.txt\n```\n"
        with tempfile.TemporaryDirectory(
            prefix="mullui-bench-aider-", ignore_cleanup_errors=True
        ) as d:
            p = Pipeline(Path(d))
            try:
                with ChatStub([Turn.say(reply)], is_main=lambda b: True) as stub:
                    setup_aider(p, stub.url)
                    p.spawn(f"create f{i}.txt", "aider")
                    target = _pane(p)
                    out.append(
                        round(_one_prompt(p, target, "(Y)es/(N)o", "y", 0.0, stays=False), 1)
                    )
                    p.state("done", 60)
            finally:
                p.close()
    return out


CLIS: dict[str, tuple[str, Callable[[int], list[float]], float, str]] = {
    "gemini": ("gemini", _gemini, HOOK_P95_MS, "Notification hook (ToolPermission)"),
    "opencode": ("opencode", _opencode, HOOK_P95_MS, "plugin event permission.asked"),
    "aider": ("aider", _aider, SCREEN_P95_MS, "notifications command + pane read"),
}


def run(
    quick: bool = False, samples: int | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    n = samples or (3 if quick else 6)
    result: dict[str, Any] = {"samples": n, "clis": {}, "metrics": []}
    rows: list[Metric] = []
    for name, (binary, measure, limit, how) in CLIS.items():
        if only and name not in only:
            continue
        if shutil.which(binary) is None:
            rows.append(metric(f"{name}: prompt drawn -> blocked", "ms", note="not installed"))
            continue
        version = _version(binary)
        try:
            ms = measure(n)
        except AssertionError as e:
            rows.append(metric(f"{name}: prompt drawn -> blocked", "ms", note=f"broke: {e}"[:200]))
            rows[-1]["ok"] = False
            continue
        result["clis"][name] = {"version": version, "samples_ms": ms, "how": how}
        target = f"p95 < {limit:g} ms"
        rows.append(
            metric(
                f"{name} {version}: prompt drawn -> blocked",
                "ms",
                samples=ms,
                target=target,
                limit=limit,
                note=how,
            )  # fmt: skip
        )
    result["metrics"] = rows
    result["ok"] = all(r["ok"] is not False for r in rows)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x] or None
    result = run(samples=args.samples, only=only)
    print_table(result["metrics"], "blocked detection with the real agent CLIs")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "agents.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
