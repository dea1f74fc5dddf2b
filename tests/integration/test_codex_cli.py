"""The real Codex CLI, in real tmux, against the scripted Responses API stub.

What this proves (with whatever ``codex`` is on PATH; written against 0.171.0): the ``-c``
overrides of the ``codex`` profile parse, the hooks they register are *trusted* by Codex
(no ``--dangerously-bypass-hook-trust``), a permission prompt reaches mullui as
*blocked* with the command, approving it and finishing the turn reaches mullui as *done*
with the last message and the session's token usage, Codex's bookkeeping thread (session
title) is not mistaken for the agent finishing, and the user's ``config.toml`` never
receives mullui's wiring.

The hook command is a recorder (argv + stdin + env to a JSONL file); the recorded calls
are fed through ``CodexProfile.translate`` exactly as ``mullui hook`` would.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from libtmux import Session

from mullui.agents.base import LaunchContext
from mullui.agents.codex import CodexProfile
from tests.support.agents import wait_for

CODEX = shutil.which("codex")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        CODEX is None,
        reason="CODEX CLI NOT INSTALLED - `npm install -g @openai/codex` to run these tests",
    ),
]

RECORDER = """\
import json, os, sys, time
data = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
rec = {"mono": time.monotonic(), "wall": time.time(), "argv": sys.argv[2:], "stdin": data,
       "token": os.environ.get("MULLUI_AGENT_TOKEN")}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(rec) + "\\n")
"""


def touch_needing_approval() -> Any:
    """The model's call that opens Codex's approval dialog: ``touch hello.txt``, escalated."""
    from tests.support.openai_stub import Turn

    return Turn.call(
        "exec_command",
        cmd="touch hello.txt",
        sandbox_permissions="require_escalated",
        justification="create the file you asked for",
    )


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_codex_permission_prompt_is_blocked_and_the_finished_turn_is_done(
    tmp_path: Path, session: Session
) -> None:
    from tests.support.openai_stub import OpenAIStub, Turn

    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    wt = tmp_path / "worktrees" / "agent-1"
    _git(repo, "worktree", "add", "-q", "-b", "mullui/agent-1", str(wt))
    # The user trusts the repository; Codex 0.171.0 extends that to its worktrees (without
    # it, a "Trust this folder?" dialog would wait first - see docs/agents.md).
    user_config = f'[projects."{repo}"]\ntrust_level = "trusted"\n'
    (codex_home / "config.toml").write_text(user_config)

    log = tmp_path / "hooks.jsonl"
    rec = tmp_path / "rec.py"
    rec.write_text(RECORDER)
    turns = [
        touch_needing_approval(),
        Turn.say("Created hello.txt."),
    ]
    with OpenAIStub(turns) as stub:
        provider = f'{{name="stub", base_url="{stub.url}", wire_api="responses"}}'
        ctx = LaunchContext(
            agent_id="a1",
            name="agent-1",
            task="create hello.txt",
            worktree=wt,
            branch="mullui/agent-1",
            repo=repo,
            profile_dir=tmp_path / "profile",
            hook_argv=(sys.executable, str(rec), str(log)),
            session_id="unused",
            options={
                "model": "gpt-5",
                "args": ["-c", 'model_provider="stub"', "-c", f"model_providers.stub={provider}"],
            },
        )
        profile = CodexProfile()
        env = {
            "HOME": str(home),
            "CODEX_HOME": str(codex_home),
            "MULLUI_AGENT_TOKEN": "tok-1",
            **profile.prepare(ctx),
        }
        argv = profile.command(ctx)
        window = session.new_window(
            window_name="codex",
            start_directory=str(wt),
            environment=env,
            window_shell=shlex.join(argv),
        )
        pane = window.active_pane
        assert pane is not None

        def calls() -> list[dict[str, Any]]:
            return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

        def events(event: str) -> list[dict[str, Any]]:
            out = []
            for c in calls():
                if c["argv"][0] != event:
                    continue
                payload = json.loads(c["stdin"]) if c["stdin"].strip() else {}
                if len(c["argv"]) > 1:  # notify: the JSON is the last argv element
                    payload.update(json.loads(c["argv"][-1]))
                out.append({**c, "payload": payload})
            return out

        def translated(event: str) -> list[dict[str, Any]]:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("CODEX_HOME", str(codex_home))
                return [
                    e
                    for c in events(event)
                    for e in profile.translate(event, c["payload"], c["argv"][1:])
                ]

        (ask,) = wait_for(lambda: events("PermissionRequest"), 60, "PermissionRequest hook")
        assert ask["token"] == "tok-1"  # the agent's env reaches the hook
        (blocked,) = [e for e in translated("PermissionRequest") if e["kind"] == "state"]
        assert blocked["state"] == "blocked"
        assert blocked["question"] == "Bash: touch hello.txt"
        sent = turns[0].sent_wall
        assert sent is not None
        latency = ask["wall"] - sent
        print(f"\nPermissionRequest hook {latency * 1000:.0f} ms after the tool call left the stub")
        assert not (wt / "hello.txt").exists()

        # The hook fires before the dialog takes keys (0.171.0): approve once it is drawn.
        wait_for(
            lambda: "Would you like to run" in "\n".join(pane.capture_pane()),
            30,
            "the approval dialog",
        )

        # Drawn is not always ready (seen on a loaded 2-core CI box with 0.171.0): while
        # the dialog is still on screen and nothing ran, press "y" again.
        def approved() -> bool:
            if (wt / "hello.txt").exists():
                return True
            if "Would you like to run" in "\n".join(pane.capture_pane()):
                pane.send_keys("y", enter=False)
            time.sleep(1.0)
            return (wt / "hello.txt").exists()

        wait_for(approved, 30, "the approved command to run")
        wait_for(lambda: events("Stop"), 30, "Stop hook")
        wait_for(
            lambda: any(e["kind"] == "state" for e in translated("codex-notify")),
            30,
            "notify for the agent's own thread",
        )
        for event in ("Stop", "codex-notify"):
            (done,) = [e for e in translated(event) if e["kind"] == "state"]
            assert (done["state"], done["message"]) == ("done", "Created hello.txt."), event
        # Every notify for another thread (the session title) was only a sign of life.
        notified = {c["payload"]["thread-id"] for c in events("codex-notify")}
        (stop,) = events("Stop")
        agent_thread = stop["payload"]["session_id"]
        for c in events("codex-notify"):
            if c["payload"]["thread-id"] != agent_thread:
                evs = profile.translate("codex-notify", c["payload"], [])
                assert [e["kind"] for e in evs] == ["activity"]
        assert agent_thread in notified

        usages = [e for e in translated("Stop") if e["kind"] == "usage"]
        assert usages, "Stop carries usage from the session file"
        # two main-turn responses, 120 prompt tokens and 15 output tokens each (stub default)
        assert (usages[-1]["tokens_in"], usages[-1]["tokens_out"]) == (240, 30)

        assert {"UserPromptSubmit", "PostToolUse"} <= {c["argv"][0] for c in calls()}
        # Codex itself records TUI bookkeeping there ([tui] ...); mullui's wiring never lands
        # in it and the user's settings stay as they were.
        after = (codex_home / "config.toml").read_text()
        assert after.startswith(user_config)
        parsed = tomllib.loads(after)
        assert "notify" not in parsed and "hooks" not in parsed
        assert str(rec) not in after


# ---- answering the approval dialog with `mullui send` ------------------------------------


def _texts(body: dict[str, Any] | None) -> str:
    return json.dumps((body or {}).get("input") or [])


@pytest.mark.parametrize(
    ("reply", "runs"),
    [("n", False), ("y", True), ("no, write it to other.txt", False), ("p", False)],
)
def test_send_answers_the_codex_approval_dialog(tmp_path: Path, reply: str, runs: bool) -> None:
    """Typed as is, "n" + Enter happens to deny (``n`` is a hidden shortcut) but a text's
    first letter is a shortcut ("p...": allow and don't ask again) and Enter is "Yes"."""
    from tests.support.agent_clis import Pipeline, setup_codex
    from tests.support.openai_stub import OpenAIStub, Turn

    turns = [
        touch_needing_approval(),
        Turn.say("Understood."),
        Turn.say("Fine."),
    ]
    p = Pipeline(tmp_path)
    try:
        with OpenAIStub(turns) as stub:
            setup_codex(p, stub.url)
            p.spawn("create hello.txt", "codex")
            blocked = p.state("blocked", 90)
            assert blocked["cause"] == "hook:PermissionRequest"
            assert p.why() == "Bash: touch hello.txt"
            hello = Path(blocked["worktree"]) / "hello.txt"
            n = len(stub.model_requests())
            p.send(reply)
            if runs:
                wait_for(hello.exists, 30, "the allowed command to run")
                return
            if reply == "n":
                wait_for(lambda: p.agent()["cause"] == "reply:denied", 30, "the denial")
                assert p.why().startswith("denied Bash: touch hello.txt")
                p.send("then stop")  # the dialog is gone: typed as given
            assert stub.wait_model_requests(n + 1, 30), "no request after the reply"
            sent = _texts(stub.model_requests()[n].body)
            assert (reply if reply != "n" else "then stop") in sent
            assert "turn_aborted" in sent  # Codex's record of the refused call
            time.sleep(1)
            assert not hello.exists(), f"{reply!r} allowed the command"
    finally:
        p.close()
