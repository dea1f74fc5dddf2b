"""A full disk under the state dir (a 2 MB tmpfs): every command says so in one line and
exits 1 or does its job; nothing is left half written; all is well once space is freed.

Needs ``mount -t tmpfs`` (root, as in CI); skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, git, ls_json, wait_for
from tests.support.agents import spawn
from tests.support.missing import missing

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def slow_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULLUI_DEMO_SPEED", "0.0001")


@pytest.fixture
def small_state(mullui_home: Path) -> Iterator[Path]:
    """``$MULLUI_HOME/state`` on a 2 MB tmpfs (worktrees stay on the real disk)."""
    state = mullui_home / "state"
    state.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        missing(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield state
    finally:
        # tmux (pipe-pane logs) and agents hold files open on it: end them first.
        sock = os.environ["MULLUI_TMUX_SOCKET"]
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
        for _ in range(50):
            if subprocess.run(["umount", str(state)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(state)], capture_output=True, check=False)


def fill(d: Path) -> Path:
    """Fill the file system of ``d`` to the last byte; returns the file to delete."""
    filler = d / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    assert os.statvfs(d).f_bavail == 0
    return filler


def lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.strip()]


def one_clear_failure(r: subprocess.CompletedProcess[str], state: Path) -> None:
    """Exit 1; the last line says no space and names a file under the state dir; every
    line is one of mullui's, none a traceback."""
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1, (r.returncode, r.stderr)
    out = lines(r.stderr)
    assert out and all(x.startswith("mullui: ") for x in out), r.stderr
    assert "No space left" in out[-1] and str(state) in out[-1], r.stderr


def ok_or_clear_failure(r: subprocess.CompletedProcess[str], state: Path) -> bool:
    """A command that may still fit in a page's slack: it either worked, or failed
    clearly.  True when it worked."""
    if r.returncode == 0:
        assert "Traceback" not in r.stderr, r.stderr
        return True
    one_clear_failure(r, state)
    return False


def hook(
    state: Path, aid: str, event: str, payload: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MULLUI_AGENT_ID": aid,
        "PYTHONPATH": str(ROOT),
        "MULLUI_AGENT_TOKEN": (state / "secrets" / aid).read_text(),
        "MULLUI_STATE_DIR": str(state),
    }
    env.pop("MULLUI_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "mullui", "hook", event],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def whole_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path} ends in a half line"
    return [json.loads(x) for x in raw.splitlines()]


def test_full_state_dir(cli: Cli, git_repo: Path, mullui_home: Path, small_state: Path) -> None:
    state = small_state
    shell = spawn(cli, git_repo, "sleep 60", name="sleeper")
    demo = spawn(cli, git_repo, "x", name="asker", agent="demo")
    wait_for(
        lambda: (
            next(a for a in ls_json(cli, git_repo) if a["id"] == demo)["cause"] == "hook:Working"
        ),
        timeout=10,
    )
    before = {a["id"]: a for a in ls_json(cli, git_repo)}
    branches = git(git_repo, "branch", "--list")
    watch = subprocess.Popen(
        [sys.executable, "-m", "mullui", "watch"],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for((state / "notified.json").exists, timeout=10)
        filler = fill(state)

        # -- with no byte left ----------------------------------------------------------
        r = cli("ls", "--json", cwd=git_repo)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert {a["id"]: a["state"] for a in json.loads(r.stdout)} == {
            k: v["state"] for k, v in before.items()
        }

        # An event bigger than any page's slack: refused whole, no half line left behind.
        r = hook(state, demo, "Ask", {"question": "which one? " + "x" * 20_000})
        one_clear_failure(r, state)
        assert len(lines(r.stderr)) == 1
        whole_lines(state / "spool" / f"{demo}.jsonl")

        # A small event may still fit in its file's last page; if so it counts.
        asked = ok_or_clear_failure(hook(state, demo, "Ask", {"question": "ship?"}), state)
        snoozed = ok_or_clear_failure(cli("snooze", demo, "--for", "30m", cwd=git_repo), state)

        r = cli("ls", "--json", cwd=git_repo)  # now with events to apply and nowhere to save
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert len(lines(r.stderr)) <= 1
        rows = {a["id"]: a for a in json.loads(r.stdout)}
        assert rows[demo]["state"] == ("blocked" if asked else "working")

        r = cli("spawn", "--agent", "shell", "--name", "late", "--no-attach", "true", cwd=git_repo)
        one_clear_failure(r, state)
        assert git(git_repo, "branch", "--list") == branches  # nothing half made
        for rec in (state / "agents").glob("*.json"):
            json.loads(rec.read_text())  # every record whole, all along
        assert watch.poll() is None, watch.stderr.read() if watch.stderr else ""

        # -- space again -------------------------------------------------------------------
        filler.unlink()
        r = hook(state, demo, "Stop", {"message": "shipped"})
        assert r.returncode == 0, r.stderr
        r = cli("ls", "--json", cwd=git_repo)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        rows = {a["id"]: a for a in json.loads(r.stdout)}
        assert set(rows) == {shell, demo}
        assert rows[demo]["state"] == "done" and rows[shell]["state"] == "working"
        if snoozed:  # it said it worked: it did
            assert rows[demo]["snoozed_until"] is not None
        for rec in (state / "agents").glob("*.json"):
            d = json.loads(rec.read_text())
            assert d["_offset"] == (state / "spool" / rec.name).with_suffix(".jsonl").stat().st_size
        assert not list(state.glob("**/.*.tmp")), "a temp file was left behind"
        whole_lines(state / "changes.jsonl")
        seq = json.loads((state / "agents" / f"{demo}.json").read_text())["seq"]
        # The supervisor lived through it and catches up.
        wait_for(
            lambda: json.loads((state / "notified.json").read_text())["seqs"].get(demo) == seq,
            timeout=10,
        )
    finally:
        watch.send_signal(signal.SIGTERM)
        watch.wait(10)
    err = watch.stderr.read() if watch.stderr else ""
    assert "Traceback" not in err, err
