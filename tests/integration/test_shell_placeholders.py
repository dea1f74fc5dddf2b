"""``{prev.*}`` and friends never splice agent output into shell text (issue 20 item 5),
and agents' panes do not inherit ``TMUX`` (item 8).

Real CLI, real tmux, real sh: the previous agent prints a ``$(...)``; a follow-up's shell
text sees it as data (``"$MULLUI_PREV_LAST_MESSAGE"``), a quoted placeholder is refused
before anything is created, and a custom ``sh -c`` profile gets ``"$MULLUI_TASK"``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_repo, wait_for

CLI = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.timeout(120)


def agents(cli: CLI, repo: Path) -> list[dict[str, object]]:
    r = cli("ls", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def done(cli: CLI, repo: Path, aid: str) -> dict[str, object]:
    def get() -> dict[str, object] | None:
        a = next(a for a in agents(cli, repo) if a["id"] == aid)
        assert a["state"] not in ("failed",), a
        return a if a["state"] == "done" else None

    found: dict[str, object] = wait_for(get, timeout=60, interval=0.1)
    return found


def test_a_quoted_placeholder_in_a_shell_chain_is_refused_and_a_bare_one_runs_nothing(
    cli: CLI, autostart: Path, tmp_path: Path
) -> None:
    # The chain's next step is started by the supervisor that spawn starts, as for a user.
    mullui_home = autostart
    repo = make_repo(tmp_path / "repo")
    pwned = tmp_path / "pwned"
    first = f"printf 'x $(touch {pwned}) `touch {pwned}`\\n'"
    (mullui_home / "config.toml").write_text(
        f"""[chains.quoted]
steps = [{{ agent = "shell", task = {json.dumps(first)} }},
         {{ agent = "shell", task = 'echo "got {{prev.last_message}}" > got.txt' }}]

[chains.bare]
steps = [{{ agent = "shell", task = {json.dumps(first)} }},
         {{ agent = "shell", task = 'echo got {{prev.last_message}} > got.txt' }}]
"""
    )
    r = cli("spawn", "--chain", "quoted", "--no-attach", "go", cwd=repo)
    assert r.returncode == 1, r.stdout
    assert "{prev.last_message} is inside quotes" in r.stderr, r.stderr
    assert '"$MULLUI_PREV_LAST_MESSAGE"' in r.stderr and len(r.stderr.splitlines()) == 1
    assert agents(cli, repo) == []  # refused before anything was created

    r = cli("spawn", "--chain", "bare", "--no-attach", "go", cwd=repo)
    assert r.returncode == 0, r.stderr
    ids = sorted(agents(cli, repo), key=lambda a: str(a["name"]))
    second = done(cli, repo, str(ids[1]["id"]))
    got = Path(str(second["worktree"]), "got.txt").read_text()
    assert got == f"got x $(touch {pwned}) `touch {pwned}`\n"
    assert not pwned.exists()
    assert second["task"] == 'echo got "$MULLUI_PREV_LAST_MESSAGE" > got.txt'


def test_a_custom_sh_c_profile_gets_the_task_as_a_variable(
    cli: CLI, mullui_home: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    pwned = tmp_path / "pwned"
    (mullui_home / "config.toml").write_text(
        '[profiles.wrap]\ncommand = ["sh", "-c", "echo task: {task} > out.txt"]\n'
    )
    r = cli("spawn", "--agent", "shell", "--no-attach", f"echo 'done $(touch {pwned})'", cwd=repo)
    assert r.returncode == 0, r.stderr
    prev = r.stdout.strip()
    r = cli(
        "spawn", "--agent", "wrap", "--no-attach", "--after", prev, "{prev.last_message}", cwd=repo
    )
    assert r.returncode == 0, r.stderr
    a = done(cli, repo, r.stdout.strip())
    assert Path(str(a["worktree"]), "out.txt").read_text() == f"task: done $(touch {pwned})\n"
    assert not pwned.exists()

    (mullui_home / "config.toml").write_text(
        '[profiles.wrap]\ncommand = ["sh", "-c", "echo \\"task: {task}\\" > out.txt"]\n'
    )
    r = cli("spawn", "--agent", "wrap", "--no-attach", "x", cwd=repo)
    assert r.returncode == 1 and "config.toml line 2" in r.stderr, r.stderr
    assert "{task} is inside quotes" in r.stderr and "Traceback" not in r.stderr


def test_a_long_previous_message_reaches_the_follow_up_whole(cli: CLI, tmp_path: Path) -> None:
    """40 KB: more than tmux takes on one command line (16 KB); it goes through the file
    the pane's wrapper sources."""
    repo = make_repo(tmp_path / "repo")
    r = cli(
        "spawn",
        "--agent",
        "shell",
        "--no-attach",
        "head -c 40000 /dev/zero | tr '\\0' a; echo",
        cwd=repo,
    )
    assert r.returncode == 0, r.stderr
    prev = r.stdout.strip()
    task = "printf %s {prev.last_message} | wc -c > n.txt"
    r = cli("spawn", "--agent", "shell", "--no-attach", "--after", prev, task, cwd=repo)
    assert r.returncode == 0, r.stderr
    a = done(cli, repo, r.stdout.strip())
    assert Path(str(a["worktree"]), "n.txt").read_text().strip() == "40000"


def test_an_agent_pane_has_no_tmux_variables(cli: CLI, tmp_path: Path) -> None:
    """A plain ``tmux send-keys`` from an agent must not reach mullui's server."""
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "env.txt"
    r = cli("spawn", "--agent", "shell", "--no-attach", f"env > {out}", cwd=repo)
    assert r.returncode == 0, r.stderr
    done(cli, repo, r.stdout.strip())
    env = out.read_text()
    assert "MULLUI_AGENT_ID=" in env
    assert "\nTMUX=" not in env and "\nTMUX_PANE=" not in env, env
