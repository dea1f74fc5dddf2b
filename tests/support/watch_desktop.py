"""The real ``mullui watch`` and a stand-in desktop, for tests that need both: a private
D-Bus session bus with :class:`FakeNotificationServer` served from a thread, and real
``python -m mullui watch`` processes (fixtures ``bus``, ``desktop``, ``repo``,
``start_watch``; import them into a test module for pytest to find them)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_repo, wait_for
from tests.support.fake_notifications import (
    FakeNotificationServer,
    NotifyCall,
    fake_server,
    private_session_bus,
)

#: Longer than the default burst window (1 s): a duplicate or a burst summary would
#: have arrived by then.
SETTLE_S = 1.3


# ---- the stand-in notification server, on its own thread --------------------------------
class DesktopThread:
    """:class:`FakeNotificationServer` served from a thread with its own event loop, so
    the test may block (subprocesses, ``wait_for``) while the server answers Notify."""

    def __init__(self, capabilities: tuple[str, ...] = ("actions", "body", "persistence")) -> None:
        self.capabilities = capabilities
        self.loop = asyncio.new_event_loop()
        self.server: FakeNotificationServer | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-desktop", daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as e:  # surfaced by start()
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with fake_server(self.capabilities) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def start(self) -> DesktopThread:
        self._thread.start()
        assert self._ready.wait(10), "fake notification server did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def calls(self) -> list[NotifyCall]:
        assert self.server is not None
        return list(self.server.calls)

    def wait_calls(self, count: int, timeout: float = 15.0) -> list[NotifyCall]:
        wait_for(lambda: len(self.calls) >= count, timeout=timeout)
        return self.calls

    def wait_title(self, title: str, timeout: float = 15.0) -> NotifyCall:
        found = wait_for(lambda: [c for c in self.calls if c.title == title], timeout=timeout)
        return found[0]  # type: ignore[no-any-return]

    def click(self, call: NotifyCall, action_key: str) -> None:
        """The user clicks ``action_key`` ("attach", "snooze", "default" = the popup)."""
        assert self.server is not None
        self.loop.call_soon_threadsafe(self.server.click, call, action_key)


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private D-Bus session bus (no notification server on it yet)."""
    with private_session_bus() as address:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        yield address


@pytest.fixture
def desktop(bus: str) -> Iterator[DesktopThread]:
    d = DesktopThread().start()
    yield d
    d.stop()


# ---- the real `mullui watch` ------------------------------------------------------------
def child_env(**extra: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MULLUI_NOTIFY"] = "desktop"  # conftest sets "none" for every other test
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


class Watch:
    """One ``python -m mullui watch`` process; stdout and stderr go to files."""

    def __init__(self, cwd: Path, logdir: Path, n: int, env: dict[str, str]) -> None:
        self.out_path = logdir / f"watch-{n}.out"
        self.err_path = logdir / f"watch-{n}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mullui", "watch"], cwd=cwd, env=env,
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 15.0) -> Watch:
        """Until it said which backend it uses (it holds the lock by then)."""
        wait_for(
            lambda: "notifications:" in self.stderr or self.proc.poll() is not None, timeout=timeout
        )
        assert self.proc.poll() is None, f"watch exited {self.proc.returncode}: {self.stderr}"
        return self

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def start_watch(mullui_home: Path, repo: Path, tmp_path: Path) -> Iterator[Callable[..., Watch]]:
    """Start real ``mullui watch`` processes (in the repository); all stopped afterwards."""
    started: list[Watch] = []

    def start(ready: bool = True, **env: str | None) -> Watch:
        w = Watch(repo, tmp_path, len(started), child_env(**env))
        started.append(w)
        return w.wait_ready() if ready else w

    yield start
    for w in started:
        w.stop()
    for w in started:
        assert "Traceback" not in w.stderr, w.stderr
