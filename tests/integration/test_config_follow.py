"""The config follower wakes for the files it follows, not for the state dir's traffic.

The trust file lives in ``state/trust/`` so the follower never watches the state dir,
which every agent event writes into; a trust file an older mullui left in the state dir
itself is carried over, and the old file stays.  Real inotify (watchfiles), real files,
a real git repository; the follower runs in-process, where its counters are the evidence.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mullui import config
from mullui.config_follow import ConfigFollower
from mullui.context import Context
from mullui.files import atomic_write
from mullui.paths import get_paths

pytestmark = pytest.mark.timeout(60)

CLI = Callable[..., subprocess.CompletedProcess[str]]

#: A key an untrusted .mullui.toml may not set (a profile's args).
NEEDS_TRUST = '[profiles.claude]\nargs = ["--from-the-repo"]\n'


async def _until(pred: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _state_traffic(state: Path, n: int) -> None:
    """What a busy fleet writes into the state dir: events, records, cursors, the lock."""
    for i in range(n):
        with (state / "changes.jsonl").open("a") as f:
            f.write(json.dumps({"seq": i, "agent": "a1", "state": "working"}) + "\n")
        with (state / "spool" / "a1.jsonl").open("a") as f:
            f.write(json.dumps({"event": "activity", "n": i}) + "\n")
        atomic_write(state / "agents" / "a1.json", json.dumps({"id": "a1", "seq": i}).encode())
        atomic_write(state / "notified.json", json.dumps({"seq": i}).encode())
        (state / "supervisor.lock").write_text(str(1000 + i))


async def test_a_burst_of_state_writes_wakes_nothing_while_a_trust_change_is_followed(
    mullui_home: Path, git_repo: Path
) -> None:
    repo_file = git_repo / ".mullui.toml"
    repo_file.write_text(NEEDS_TRUST)
    ctx = Context(cwd=git_repo)
    assert "claude" not in ctx.config.profiles  # untrusted: its args are ignored
    follower = ConfigFollower(ctx)
    ready = asyncio.Event()
    task = asyncio.create_task(follower.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(0.3)  # the ready probe's own events settle
        wakes, reloads = follower.wakes, follower.reloads

        _state_traffic(ctx.paths.state_dir, 200)
        await asyncio.sleep(1.0)  # many debounce windows (50 ms) and watcher steps
        assert follower.wakes == wakes, "the state dir's writes reached the follower"
        assert follower.reloads == reloads

        config.trust(ctx.paths.trust_file, repo_file)  # what `mullui trust` writes
        await _until(lambda: follower.reloads > reloads, 5)
        assert ctx.config.profiles["claude"] == {"args": ["--from-the-repo"]}
        assert follower.wakes > wakes  # the trust file's own change woke it
    finally:
        follower.stop()
        await asyncio.wait_for(task, 10)


def test_a_trust_file_in_the_old_place_still_trusts_and_stays_where_it_was(
    cli: CLI, mullui_home: Path, git_repo: Path
) -> None:
    repo_file = git_repo / ".mullui.toml"
    repo_file.write_text(NEEDS_TRUST)
    paths = get_paths()
    old, new = paths.old_trust_file, paths.trust_file
    assert old.parent == paths.state_dir and new.parent != paths.state_dir
    config.trust(old, repo_file)  # what a mullui of before wrote, where it wrote it
    before = old.read_bytes()
    assert not new.exists()

    r = cli("ls", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "profiles.claude.args" not in r.stderr, r.stderr  # still trusted: no notice
    assert new.read_bytes() == before and old.read_bytes() == before

    # From now on the new file is the one in force: a revoke there is not undone by the
    # old one.
    r = cli("trust", "--revoke", cwd=git_repo)
    assert r.returncode == 0 and "no longer trusted" in r.stdout, r.stdout
    r = cli("ls", cwd=git_repo)
    assert "profiles.claude.args" in r.stderr, r.stderr
    assert old.read_bytes() == before
