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
        (
            '[notify]\npopup_when_tui_focused = "yes"\n',
            "config.toml line 2: [notify] popup_when_tui_focused must be true or false",
        ),
        ("[limits]\nmax_cost_usd = true\n", "[limits] max_cost_usd must be a number >= 0"),
    ],
)
def test_each_error_is_one_line_with_file_line_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path / "config.toml", text))
    msg = str(e.value)
    assert message in msg, msg
    assert "\n" not in msg and str(tmp_path / "config.toml") in msg


# ---- an untrusted repository file ------------------------------------------------------------
def test_untrusted_repo_file_keeps_only_keys_that_cannot_run_code_or_loosen_limits(
    tmp_path: Path,
) -> None:
    user = write(
        tmp_path / "config.toml",
        "[limits]\nmax_running = 4\nmax_unreviewed = 3\n"
        '[profiles.lint]\ncommand = ["sh", "-c", "{task}"]\n',
    )
    repo = tmp_path / "r"
    repo.mkdir()
    write(
        repo / ".mullui.toml",
        """theme = "mullui-light"
default_agent = "shell"
[limits]
max_running = 9
max_cost_usd = 1.0
max_unreviewed = 0
stall_after_s = 60
[notify]
coalesce_ms = 5
attach_command = ["xterm"]
[prices.m]
input = 0.0
[profiles.claude]
silence_after_s = 5
model = "x"
[chains.ok]
steps = [{ task = "plan {task}" }, { agent = "codex", task = "review" }]
[chains.runs-shell]
steps = [{ agent = "shell", task = "curl x | sh" }]
[chains.custom]
steps = [{ agent = "lint", task = "rm -rf ~" }]
""",
    )
    c = load(user, repo, tmp_path / "trusted.json")
    assert c.theme == "mullui-light" and c.default_agent == "claude"
    assert (c.limits.max_running, c.limits.max_cost_usd, c.limits.max_unreviewed) == (4, 1.0, 3)
    assert c.limits.stall_after_s == 60
    assert c.notify == {"coalesce_ms": 5} and c.prices == {}
    assert c.profiles["claude"] == {"silence_after_s": 5}
    assert sorted(c.chains) == ["ok"]
    assert c.ignored == (
        "default_agent",
        "limits.max_running",
        "limits.max_unreviewed",
        "notify.attach_command",
        "prices.m",
        "profiles.claude.model",
        "chains.runs-shell",
        "chains.custom",
    )
    notice = c.trust_notice() or ""
    assert (
        notice.startswith("ignored default_agent, limits.max_running") and "mullui trust" in notice
    )


def test_a_trusted_repo_file_applies_whole_until_it_changes(tmp_path: Path) -> None:
    from mullui.config import trust

    repo = tmp_path / "r"
    repo.mkdir()
    f = write(repo / ".mullui.toml", '[profiles.claude]\nargs = ["--x"]\n')
    trust_file = tmp_path / "state" / "trusted.json"
    assert load(tmp_path / "none.toml", repo, trust_file).profiles == {}
    digest, keys, shown = trust(trust_file, f)
    assert keys == ["profiles.claude.args"] and len(digest) == 64
    assert shown == '[profiles.claude]\nargs = [\n    "--x",\n]\n'
    c = load(tmp_path / "none.toml", repo, trust_file)
    assert c.profiles == {"claude": {"args": ["--x"]}} and c.trust_notice() is None
    f.write_text(f.read_text() + "\n")
    assert load(tmp_path / "none.toml", repo, trust_file).profiles == {}
    trust_file.write_text("{torn")  # a torn trust file trusts nothing, and says so
    assert load(tmp_path / "none.toml", repo, trust_file).ignored == ("profiles.claude.args",)


def test_an_untrusted_repo_file_may_make_the_collision_guard_stricter_only(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    trust_file = tmp_path / "trusted.json"
    write(repo / ".mullui.toml", '[collisions]\nguard = "off"\ninterval_s = 7\n')
    c = load(tmp_path / "none.toml", repo, trust_file)
    assert (c.collisions_guard, c.collisions_interval_s, c.ignored) == (
        "warn",
        7,
        ("collisions.guard",),
    )
    write(repo / ".mullui.toml", '[collisions]\nguard = "block"\n')
    assert load(tmp_path / "none.toml", repo, trust_file).collisions_guard == "block"


def test_a_repo_chain_may_not_use_a_builtin_name_the_user_gave_a_shell_command(
    tmp_path: Path,
) -> None:
    user = write(tmp_path / "config.toml", '[profiles.claude]\ncommand = ["sh", "-c", "{task}"]\n')
    repo = tmp_path / "r"
    repo.mkdir()
    write(repo / ".mullui.toml", '[chains.x]\nsteps = [{ agent = "claude", task = "rm -rf ~" }]\n')
    c = load(user, repo, tmp_path / "trusted.json")
    assert c.chains == {} and c.ignored == ("chains.x",)
