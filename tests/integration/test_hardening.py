"""Smaller holes from the security review (issue 20 item 7), each with the real CLI:
private state without ``MULLUI_HOME``, the watch's ``tmux -c`` path taken literally,
and config values that used to end in a traceback."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_repo, wait_for

CLI = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.timeout(90)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_without_mullui_home_the_xdg_dirs_are_private_and_refusals_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".local" / "state" / "mullui").mkdir(parents=True)  # an older install's,
    (home / ".local" / "state" / "mullui").chmod(0o755)  # left open
    repo = make_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MULLUI_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), MULLUI_TMUX_SOCKET=f"hard-{os.getpid()}")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mullui", *args],
            cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    try:
        r = run("ls")
        assert r.returncode == 0, r.stderr
        for d in (".local/state/mullui", ".config/mullui", ".local/share/mullui"):
            assert mode(home / d) == 0o700, d
        r = run("hook", "Stop", "--agent", "deadbeef", "--token", "nope")
        assert r.returncode == 1 and "refused" in r.stderr, r.stderr
        log = home / ".local/state/mullui/hook-refused.log"
        assert mode(log) == 0o600 and "deadbeef" in log.read_text()
    finally:
        subprocess.run(["tmux", "-L", env["MULLUI_TMUX_SOCKET"], "kill-server"],
                       capture_output=True, check=False)  # fmt: skip


def test_the_watch_starts_in_a_repository_whose_path_holds_a_tmux_format(
    mullui_home: Path, tmp_path: Path
) -> None:
    """The repository's path reaches the watch literally: ``#(...)`` (a tmux format, when
    the watch started in a tmux window) or shell syntax (the hooks' start script) never
    runs."""
    from mullui import autostart, loop
    from mullui.workspace import Workspace

    mark = tmp_path / "ran"
    repo = make_repo(tmp_path / f"#(touch {mark}) $(touch {mark})")
    ws = Workspace(cwd=repo)
    assert loop.ensure_running(ws, force=True)
    state = mullui_home / "state"

    def watch_cwd() -> str:
        pid = autostart.holder(state) if autostart.held(state) else None
        return os.readlink(f"/proc/{pid}/cwd") if pid else ""

    assert wait_for(watch_cwd, timeout=20) == str(repo)
    # How an agent's hook would start one: the same path, shell-quoted.
    script = loop.start_script(str(repo), {"PATH": os.environ.get("PATH", "")})
    r = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert f"cd {shlex.quote(str(repo))} " in script
    time.sleep(1.0)  # a #() job would have run by now
    assert not mark.exists()


@pytest.mark.parametrize(
    "text,words",
    [
        ("[limits]\nstall_after_s = 100000000000000000000\n", "stall_after_s must be a whole"),
        ("[limits]\nstall_after_s = 1e20\n", "stall_after_s must be a whole"),
        ('[profiles.shell]\nenv = { "A=B" = "x" }\n', '"A=B" is not a variable name'),
        ('[profiles.x]\ncommand = ["my-agent\\u0000", "{task}"]\n', "must not contain a NUL"),
        ("[limits]\nmax_cost_usd = inf\n", "max_cost_usd must be a number"),
        ("[notify]\nescalate_after_s = 1e300\n", "escalate_after_s must be at most"),
    ],
)
def test_bad_config_values_are_one_line_not_a_traceback(
    text: str, words: str, cli: CLI, mullui_home: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    (mullui_home / "config.toml").write_text(text)
    for args in (("ls",), ("spawn", "--agent", "shell", "--no-attach", "true")):
        r = cli(*args, cwd=repo)
        assert r.returncode == 1, r.stdout
        assert r.stderr.count("\n") == 1 and "config.toml line 2" in r.stderr, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
