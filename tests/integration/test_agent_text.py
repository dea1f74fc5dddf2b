"""Agent text never reaches the user's terminal as escape sequences (issue 20 item 4).

A real Claude Code agent (against the loopback Anthropic stub) ends with a message that
carries OSC 52 (clipboard write), OSC 0 (window title) and a bidi override; shell agents
print and commit file names with escapes.  Human-readable ``ls``, ``inbox``,
``collisions``, ``logs`` (piped) and error lines carry no ESC byte; JSON and
``logs --raw`` stay exact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w

from tests.conftest import make_repo, wait_for

CLI = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.timeout(150)

HOSTILE = "\u202eexe.txt \x1b]52;c;cm0gLXJmIH4K\x07wrote \x1b]0;pwned\x07 done"
CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b")


def agents(cli: CLI, repo: Path) -> list[dict[str, object]]:
    r = cli("ls", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def assert_no_controls(text: str) -> None:
    for c in CONTROLS:
        assert c not in text, (c, text)


@pytest.mark.skipif(shutil.which("claude") is None, reason="needs the Claude Code CLI")
def test_ls_and_inbox_show_an_agents_escape_sequences_literally(
    cli: CLI, mullui_home: Path, tmp_path: Path
) -> None:
    from tests.support.anthropic_stub import AnthropicStub, Turn
    from tests.support.claude_env import make_claude_home

    repo = make_repo(tmp_path / "repo")
    with AnthropicStub([Turn.say(HOSTILE)]) as stub:
        home = make_claude_home(tmp_path / "claude-home", [repo], base_url=stub.url)
        keep = [k for k in home.env if k not in ("PATH", "USER", "LANG", "TERM", "SHELL")]
        (mullui_home / "config.toml").write_text(
            tomli_w.dumps({"profiles": {"claude": {"env": {k: home.env[k] for k in keep}}}})
        )
        r = cli("spawn", "--agent", "claude", "--no-attach", "write the report", cwd=repo)
        assert r.returncode == 0, r.stderr
        aid = r.stdout.strip()
        wait_for(
            lambda: next(a for a in agents(cli, repo) if a["id"] == aid)["state"] == "done",
            timeout=90,
            interval=0.2,
        )
    inbox = json.loads(cli("inbox", "--json", cwd=repo).stdout)
    assert [i["why"] for i in inbox] == [HOSTILE]  # JSON stays exact
    for cmd in ("ls", "inbox"):
        r = cli(cmd, cwd=repo)
        assert r.returncode == 0, r.stderr
        assert_no_controls(r.stdout)
        assert "\\x1b]52;c;cm0gLXJmIH4K\\x07" in r.stdout, r.stdout  # shown, made visible
        assert "\\u202e" in r.stdout, r.stdout


def test_logs_into_a_pipe_carry_no_escape_unless_raw(cli: CLI, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    task = r"printf 'a\033]52;c;ZXZpbA==\007b\033]0;pwned\007\033[31mred\033[0m\r\nend\n'"
    r = cli("spawn", "--agent", "shell", "--no-attach", task, cwd=repo)
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    wait_for(lambda: next(a for a in agents(cli, repo) if a["id"] == aid)["state"] == "done")
    r = cli("logs", aid, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "abred\nend\n" in r.stdout and "\x1b" not in r.stdout and "\r" not in r.stdout
    raw = cli("logs", "--raw", aid, cwd=repo).stdout
    assert "\x1b]52;c;ZXZpbA==\x07" in raw and "\x1b[31m" in raw


def test_collisions_and_error_lines_show_escapes_literally(cli: CLI, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    # Two agents commit the same hostile file name: the radar names it.
    task = (
        'f="$(printf \'notes\\033]0;pwned\\007.md\')"; echo $$ > "$f"; '
        "git add -A && git commit -qm notes"
    )
    ids = []
    for n in (1, 2):
        r = cli("spawn", "--agent", "shell", "--no-attach", "--name", f"w{n}", task, cwd=repo)
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    wait_for(lambda: all(a["state"] == "done" for a in agents(cli, repo)), timeout=30)
    r = cli("collisions", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "notes\\x1b]0;pwned\\x07.md" in r.stdout, r.stdout
    assert_no_controls(r.stdout)
    files = json.dumps(json.loads(cli("collisions", "--json", cwd=repo).stdout))
    assert "notes\\u001b]0;pwned\\u0007.md" in files  # JSON: exact (JSON's own escapes)

    r = cli("ack", "\x1b]0;pwned\x07", cwd=repo)
    assert r.returncode == 1 and "\\x1b]0;pwned\\x07" in r.stderr, r.stderr
    assert_no_controls(r.stderr)
