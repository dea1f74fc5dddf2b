"""The TUI's supervisor follows the config files: an invalid edit is shown on the status
line (and as a toast) while the last good config stays in force; fixing the file clears
it; a valid edit is in force within a second (a theme set in the file is applied)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from mullui.model import utcnow
from mullui.paths import Paths
from mullui.tui.widgets.status_bar import StatusBar
from tests.tui.conftest import make_app, until


def status_text(app: object) -> str:
    bar = app.screen.query_one(StatusBar)  # type: ignore[attr-defined]
    return str(bar.render())


async def test_an_invalid_edit_is_on_the_status_line_until_fixed(fleet: Paths) -> None:
    cfg = fleet.config_file
    cfg.write_text("[limits]\nmax_running = 3\n")
    app = make_app(fleet, clock=utcnow, supervise=True)
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        await until(
            pilot,
            lambda: (
                app.feed.pipeline.supervisor is not None  # type: ignore[union-attr]
                and app.feed.pipeline.supervisor.config is not None
            ),  # type: ignore[union-attr]
        )
        await pilot.pause(0.5)  # its follower is up
        cfg.write_text('[limits]\nmax_running = "many"\n')
        await until(pilot, lambda: app.config_error is not None, timeout=5)
        assert "max_running" in (app.config_error or "")
        await until(pilot, lambda: "config not reloaded" in status_text(app), timeout=5)
        assert "config.toml" in status_text(app)
        # The last good config stays in force where decisions read it.
        assert app.actions.config.limits.max_running == 3  # type: ignore[attr-defined]

        # An editor's atomic replace that fixes it: cleared, and the new value in force.
        tmp = cfg.with_name(".config.toml.swp")
        tmp.write_text("[limits]\nmax_running = 5\n")
        t0 = time.monotonic()
        os.replace(tmp, cfg)
        await until(
            pilot,
            lambda: app.actions.config.limits.max_running == 5,  # type: ignore[attr-defined]
            timeout=5,
        )
        assert time.monotonic() - t0 < 1.5
        await until(pilot, lambda: app.config_error is None, timeout=5)
        await until(pilot, lambda: "config not reloaded" not in status_text(app), timeout=5)


async def test_a_theme_set_in_the_config_is_applied_while_running(fleet: Paths) -> None:
    cfg: Path = fleet.config_file
    app = make_app(fleet, clock=utcnow, supervise=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await until(
            pilot,
            lambda: (
                app.feed.pipeline is not None
                and app.feed.pipeline.supervisor is not None
                and app.feed.pipeline.supervisor.config is not None
            ),
        )
        await pilot.pause(0.5)
        # one of the themes mullui ships (themes/*.toml)
        other = next(t for t in ("mullui-light", "mullui-dark", "nord") if t != app.theme)
        cfg.write_text(f'theme = "{other}"\n')
        await until(pilot, lambda: app.theme == other, timeout=5)


async def test_the_status_line_says_when_nothing_supervises_live_agents(fleet: Paths) -> None:
    """Another process supervises when the TUI starts (here: a plain flock on the lock);
    once it is gone and nothing took over, the status line says so at the next change."""
    import subprocess

    from mullui.store import Store

    lock = fleet.supervisor_lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    # -o: only flock holds the lock (its sleep child gets no descriptor)
    holder = subprocess.Popen(["flock", "-o", str(lock), "sleep", "60"], start_new_session=True)
    try:
        from mullui import autostart

        deadline = time.monotonic() + 5
        while not autostart.held(fleet.state_dir) and time.monotonic() < deadline:
            time.sleep(0.02)
        app = make_app(fleet, clock=utcnow, supervise=True)
        async with app.run_test(size=(160, 36)) as pilot:
            await until(pilot, lambda: app.feed.pipeline is not None)
            await pilot.pause(0.3)
            assert "no supervisor" not in status_text(app)
            holder.kill()  # the supervisor goes; nothing takes over (autostart is off here)
            holder.wait()
            await pilot.pause(1.1)
            Store(fleet).emit("a5", "state", state="blocked", cause="hook:Ask", question="?")
            await until(pilot, lambda: "no supervisor" in status_text(app), timeout=10)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
