"""Config: defaults, merging, and one clear line for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from mullui.config import load
from mullui.errors import ConfigError


def write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_defaults_without_files(tmp_path: Path) -> None:
    c = load(tmp_path / "config.toml", tmp_path)
    assert c.default_agent == "claude" and c.limits.max_running == 8
    assert c.limits.max_cost_usd == 10.0


def test_repo_file_overrides_user_file(tmp_path: Path) -> None:
    user = write(tmp_path / "config.toml", 'default_agent = "codex"\n[limits]\nmax_running = 3\n')
    repo = tmp_path / "r"
    repo.mkdir()
    write(repo / ".mullui.toml", "[limits]\nmax_cost_usd = 2.5\n")
    c = load(user, repo)
    assert (c.default_agent, c.limits.max_running, c.limits.max_cost_usd) == ("codex", 3, 2.5)


def test_spec_shape_loads(tmp_path: Path) -> None:
    text = """default_agent = "claude"

[limits]
max_running = 8
max_cost_usd = 10.0

[profiles.myagent]
command = ["my-agent", "--prompt", "{task}"]

[hosts.devbox]
ssh = "me@devbox"
repo = "/home/me/src/project"

[chains.plan-critique]
steps = [
  { agent = "claude", task = "Write a plan for {task} in PLAN.md" },
  { agent = "claude", task = "Critique {prev.worktree}/PLAN.md" },
]
"""
    c = load(write(tmp_path / "config.toml", text))
    assert c.profiles["myagent"]["command"][2] == "{task}"
    assert c.hosts["devbox"].ssh == "me@devbox"
    assert [s.task for s in c.chains["plan-critique"]][1].startswith("Critique")


@pytest.mark.parametrize(
    "text,message",
    [
        (
            'default_agent = "claude"\n\n[profiles.x]\ncommand = "my-agent"\n',
            "config.toml line 4: [profiles.x] command must be a list of strings",
        ),
        (
            '[limits]\nmax_running = "many"\n',
            "config.toml line 2: [limits] max_running must be a positive integer",
        ),
        ("[limits]\nmax_runing = 3\n", "config.toml line 2: [limits] unknown key 'max_runing'"),
        ("colour = 1\n", "config.toml line 1: unknown key 'colour'"),
        ("[limits\nmax_running = 3\n", "config.toml line 1: TOML syntax error"),
        (
            '[hosts.devbox]\nssh = "me@devbox"\n',
            "config.toml line 1: [hosts.devbox] repo is required",
        ),
        ('[chains.c]\nsteps = [{ agent = "claude" }]\n', "[chains.c] step 1: task is required"),
        ('[notify]\nquiet_hours = "late"\n', "[notify] quiet_hours must be a time range"),
        ("[limits]\nmax_cost_usd = true\n", "[limits] max_cost_usd must be a number >= 0"),
    ],
)
def test_each_error_is_one_line_with_file_line_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path / "config.toml", text))
    msg = str(e.value)
    assert message in msg, msg
    assert "\n" not in msg and str(tmp_path / "config.toml") in msg
