"""Notification latency: an agent's state change -> the Notify call at the desktop.

Through the real pipeline: a hook event appended to the agent's spool (``mullui hook``'s
own ``ingest``, as a demo or Claude Code agent calls it) -> a real ``mullui watch``
process (watchfiles, record catch-up, change journal, policy) -> D-Bus -> a stand-in
``org.freedesktop.Notifications`` server on a private session bus in this process.
Changes are spaced beyond the coalescing window, so each is a leading-edge popup.

The agents are records made directly in the store (state ``working``, ``demo`` profile):
no process runs in them, which changes nothing on this path - the supervisor only reads
the spool.

    python benchmarks/bench_notify.py [--count 40] [--coalesce-ms 200]

Prints a table and writes benchmarks/results/notify.json; ``run()`` returns the dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui` and `tests.support` importable
    sys.path.insert(0, str(ROOT))

from tests.support.fake_notifications import (  # noqa: E402
    FakeNotificationServer,
    fake_server,
    private_session_bus,
)

TARGET_P95_MS = 250.0
RESULTS = ROOT / "benchmarks" / "results" / "notify.json"


class _Desktop:
    """The fake notification server on its own thread and event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: FakeNotificationServer | None = None
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with fake_server() as server:
            self.server = server
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> FakeNotificationServer:
        self.thread.start()
        if not self.ready.wait(10) or self.server is None:
            raise RuntimeError("the fake notification server did not start")
        return self.server

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


def _wait(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return False


def _pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def run(count: int = 40, coalesce_ms: int = 200) -> dict[str, Any]:
    """Measure ``count`` state changes (working -> blocked, one agent each)."""
    tmp = Path(tempfile.mkdtemp(prefix="mullui-bench-notify-"))
    home = tmp / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f"[notify]\ncoalesce_ms = {coalesce_ms}\nescalate_after_s = 0\n"
    )
    socket = f"mullui-bench-{uuid.uuid4().hex[:8]}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "MULLUI_HOME",
            "MULLUI_TMUX_SOCKET",
            "MULLUI_NOTIFY",
            "MULLUI_STATE_DIR",
            "DBUS_SESSION_BUS_ADDRESS",
        )
    }
    os.environ.update(MULLUI_HOME=str(home), MULLUI_TMUX_SOCKET=socket, MULLUI_NOTIFY="desktop")
    os.environ.pop("MULLUI_STATE_DIR", None)
    watch: subprocess.Popen[bytes] | None = None
    try:
        with private_session_bus() as address:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
            from mullui import hook
            from mullui.model import Agent, State
            from mullui.paths import get_paths
            from mullui.store import Store

            store = Store(get_paths())
            agents: list[tuple[str, str]] = []
            for i in range(count):
                a, token = store.create(Agent(
                    id=f"bench{i:03d}", name=f"agent-{i:03d}", profile="demo",
                    task="benchmark", state=State.WORKING, cause="bench"))  # fmt: skip
                agents.append((a.id, token))
            with _Desktop() as server:
                env = {
                    **os.environ,
                    "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                }
                err_path = tmp / "watch.err"
                t_start = time.perf_counter()
                with err_path.open("wb") as err:
                    watch = subprocess.Popen(
                        [sys.executable, "-m", "mullui", "watch"],
                        cwd=tmp,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        stdin=subprocess.DEVNULL,
                    )
                if not _wait(lambda: "notifications:" in err_path.read_text(), 15):
                    raise RuntimeError(f"mullui watch did not start: {err_path.read_text()}")
                startup_ms = (time.perf_counter() - t_start) * 1000
                if "notifications: desktop" not in err_path.read_text():
                    raise RuntimeError(f"no desktop backend: {err_path.read_text()}")
                time.sleep(0.3)  # the spool watcher starts after the first catch-up
                samples: list[float] = []
                missed = 0
                for i, (aid, token) in enumerate(agents):
                    before = len(server.calls)
                    t0 = time.perf_counter()
                    hook.ingest(
                        "Ask",
                        [],
                        agent=aid,
                        token=token,
                        stdin=json.dumps({"question": f"question {i}?"}),
                    )
                    if not _wait(lambda b=before: len(server.calls) > b, 5.0):
                        missed += 1
                        continue
                    call = server.calls[before]
                    assert call.title == f"agent-{i:03d} is blocked", call.title
                    samples.append((call.received - t0) * 1000)
                    time.sleep(coalesce_ms / 1000 * 1.5)
                extra = len(server.calls) - len(samples)
    finally:
        if watch is not None:
            watch.terminate()
            try:
                watch.wait(10)
            except subprocess.TimeoutExpired:
                watch.kill()
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    p95 = _pct(samples, 95)
    return {
        "what": "hook event appended to the spool -> Notify at the notification server, "
        "through a real `mullui watch`",
        "changes": count,
        "notified": len(samples),
        "missed": missed,
        "unexpected_extra_notifies": extra,
        "coalesce_ms": coalesce_ms,
        "watch_startup_ms": round(startup_ms, 1),
        "p50_ms": round(statistics.median(samples), 1) if samples else None,
        "p95_ms": round(p95, 1) if samples else None,
        "max_ms": round(max(samples), 1) if samples else None,
        "min_ms": round(min(samples), 1) if samples else None,
        "target_p95_ms": TARGET_P95_MS,
        "ok": bool(samples) and missed == 0 and extra == 0 and p95 < TARGET_P95_MS,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--coalesce-ms", type=int, default=200)
    args = ap.parse_args()
    result = run(args.count, args.coalesce_ms)
    print(f"{'state change -> Notify (mullui watch)':<40} {'value':>10}")
    for key in (
        "changes",
        "notified",
        "missed",
        "watch_startup_ms",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "target_p95_ms",
    ):
        print(f"  {key:<38} {result[key]!s:>10}")
    print(f"  {'verdict':<38} {'PASS' if result['ok'] else 'FAIL':>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
