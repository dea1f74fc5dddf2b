"""100 agents scroll and respond smoothly: key echo under 50 ms, a burst of changes is one
render, rows update in place."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from mullui.model import State
from mullui.paths import Paths
from mullui.tui.widgets.agent_table import AgentTable
from tests.tui.conftest import make_app
from tests.tui.fleet import build_fleet


async def test_key_echo_with_100_agents_is_under_50ms(paths: Paths) -> None:
    build_fleet(paths, extra=89)
    app = make_app(paths)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentTable)
        assert len(table.ids) == 100
        table.focus()
        await pilot.pause()
        times = []
        cpu = []
        for key in ["j"] * 40 + ["k"] * 10:
            # Key in -> handler -> the screen repainted.  (Pilot.press itself waits for
            # the process to look idle, ~100 ms of test-harness overhead; not measured.)
            row = table.cursor_row
            painted = asyncio.Event()
            t0 = time.perf_counter()
            c0 = time.process_time()
            app.simulate_key(key)
            while table.cursor_row == row:
                await asyncio.sleep(0)
            app.call_after_refresh(painted.set)
            await painted.wait()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        assert table.cursor_row == 30

        def ms(xs: list[float], q: float) -> float:
            return sorted(xs)[int(len(xs) * q)] * 1000

        print(
            f"key echo with 100 agents: wall p50 {ms(times, 0.5):.1f} ms p95 {ms(times, 0.95):.1f}"
            f" ms; CPU p50 {ms(cpu, 0.5):.1f} ms p95 {ms(cpu, 0.95):.1f} ms"
        )
        # CPU time, not wall time: CI machines run other jobs (load 7 on 2 cores was seen
        # while this was written, doubling wall times); the work per key is what we own.
        assert ms(cpu, 0.95) < 50


async def test_a_burst_of_changes_updates_rows_in_place(paths: Paths) -> None:
    build_fleet(paths, extra=89)
    app = make_app(paths)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentTable)
        renders = 0
        original = app.main.show

        def counting_show(*a: object, **kw: object) -> None:
            nonlocal renders
            renders += 1
            original(*a, **kw)  # type: ignore[arg-type]

        app.main.show = counting_show  # type: ignore[method-assign]
        rebuilt = []
        set_rows = table.set_rows
        table.set_rows = lambda *a: rebuilt.append(set_rows(*a)) or rebuilt[-1]  # type: ignore[method-assign,func-returns-value]
        workers = [a for a in app.agents.values() if a.id.startswith("x")]
        t0 = time.perf_counter()
        for a in workers:  # what the supervisor reports when 89 agents finish at once
            app.feed.on_change(dataclasses.replace(a, tokens_in=1000, cost_usd=0.5), ())
        await pilot.pause(0.2)
        elapsed = time.perf_counter() - t0
        print(f"89 changes -> {renders} render(s), {elapsed * 1000:.0f} ms incl. 200 ms pause")
        assert renders == 1
        assert rebuilt == [False]  # cells updated, rows kept (no clear + re-add)
        assert "$0.50" in str(table.get_cell("x000", "usage"))
        assert app.agents["x000"].state is State.WORKING


async def test_idle_with_100_agents_costs_under_3_percent_of_a_core(paths: Paths) -> None:
    # The TUI alone (no supervisor): the one 250 ms stat of the shown log, the 30 s tick.
    build_fleet(paths, extra=89)
    app = make_app(paths)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(3.0)
        share = (time.process_time() - c0) / (time.perf_counter() - t0)
        print(f"idle CPU with 100 agents: {share * 100:.2f} % of a core")
        assert share < 0.03
