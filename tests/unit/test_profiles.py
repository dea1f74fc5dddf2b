"""codex, aider, gemini and opencode profiles: launch argv, hook wiring, payload translation.

Payload samples are the CLIs' own, cited where each appears: Codex's ``notify`` JSON from
``codex-rs/hooks/src/legacy_notify.rs`` and its hook inputs from ``codex-rs/hooks/schema/
generated/*.input.schema.json`` (plus lines recorded from codex-cli 0.171.0), Gemini CLI's
from ``docs/hooks/reference.md``, OpenCode's bus events from its SDK types
(``permission.asked``, ``session.idle``, ``question.asked``, ``session.status``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mullui import guard
from mullui.agents import get_profile
from mullui.agents.aider import AiderProfile
from mullui.agents.base import LaunchContext, Profile
from mullui.agents.codex import (
    CodexProfile,
    find_rollout,
    hook_trust_hash,
    toml_value,
)
from mullui.agents.gemini import HOME_ENV, TRUST_ENV, TRUSTED_FOLDERS_ENV, GeminiProfile
from mullui.agents.opencode import CONFIG_DIR_ENV, OpenCodeProfile
from mullui.errors import MulluiError
from mullui.paths import tmux_socket

HOOK_ARGV = ("/opt/py 3/bin/python", "-m", "mullui", "hook")

HOSTILE_TASKS = [
    "plain task",
    "fix it; rm -rf ~ && echo $(id) `whoami` > /tmp/x",
    "--help",
    "-rf",
    "exec",
    "multi\nline\ttask with 'quotes' and \"doubles\" and \\ backslash",
    "unicode ✓ ünïcödé 🚀 {prev.id} {task}",
    "",
]


def ctx_for(tmp_path: Path, task: str = "do the thing", **options: Any) -> LaunchContext:
    wt = tmp_path / "wt"
    wt.mkdir(exist_ok=True)
    return LaunchContext(
        agent_id="a1b2c3",
        name="agent-1",
        task=task,
        worktree=wt,
        branch="mullui/agent-1",
        repo=tmp_path / "repo",
        profile_dir=tmp_path / "profile",
        hook_argv=HOOK_ARGV,
        session_id="6f1c0a52-1111-2222-3333-444455556666",
        env={"MULLUI_AGENT_ID": "a1b2c3"},
        options=dict(options),
    )


PROFILES: list[tuple[str, type[Profile]]] = [
    ("codex", CodexProfile),
    ("aider", AiderProfile),
    ("gemini", GeminiProfile),
    ("opencode", OpenCodeProfile),
]


# ---- every profile ------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", PROFILES)
def test_the_builtin_registry_finds_the_profile(name: str, cls: type[Profile]) -> None:
    profile = get_profile(name)
    assert isinstance(profile, cls)
    assert profile.name == name


@pytest.mark.parametrize("name,cls", PROFILES)
@pytest.mark.parametrize("task", HOSTILE_TASKS)
def test_task_reaches_the_cli_as_exactly_one_argv_element(
    tmp_path: Path, name: str, cls: type[Profile], task: str
) -> None:
    ctx = ctx_for(tmp_path, task)
    profile = cls()
    profile.prepare(ctx)
    argv = profile.command(ctx)
    assert all(isinstance(a, str) for a in argv)
    if name == "aider":  # under the wrapper that reports its usage at exit (no shell)
        assert argv[:3] == [sys.executable, "-m", "mullui.agents.aider_notify"]
        argv = argv[argv.index("aider-exit") + 2 :]
    assert argv[0] == name  # the CLI itself: no shell in between
    holders = [a for a in argv if task and task in a]
    if not task:
        assert argv[-1] == "" or argv[-1].endswith("=")
        return
    assert len(holders) == 1, argv
    (holder,) = holders
    # Either the task itself, or "--option=TASK" when the task starts with "-" (a CLI's
    # option parser would otherwise take it for an option).
    if holder != task:
        assert task.startswith("-") and holder.endswith("=" + task) and holder.startswith("--")
    else:
        assert not task.startswith("-") or argv[argv.index(holder) - 1] == "--"


@pytest.mark.parametrize("name,cls", PROFILES)
def test_model_and_extra_args_come_from_profile_options(
    tmp_path: Path, name: str, cls: type[Profile]
) -> None:
    ctx = ctx_for(tmp_path, "t", model="m-1", args=["--flag", "v"])
    argv = cls().command(ctx)
    i = argv.index("--model")
    assert argv[i + 1] == "m-1"
    j = argv.index("--flag")
    assert argv[j + 1] == "v"
    assert argv.index("t") > j  # the task comes last


@pytest.mark.parametrize("name,cls", PROFILES)
def test_unknown_events_are_signs_of_life_not_state_changes(name: str, cls: type[Profile]) -> None:
    evs = cls().translate("SomethingNew", {"x": 1}, [])
    assert [e["kind"] for e in evs] == ["activity"]


@pytest.mark.parametrize("name,cls", PROFILES)
def test_prepare_writes_nothing_in_the_worktree_or_home(
    tmp_path: Path, name: str, cls: type[Profile], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    monkeypatch.delenv(HOME_ENV, raising=False)
    ctx = ctx_for(tmp_path)
    cls().prepare(ctx)
    assert list(ctx.worktree.iterdir()) == []
    assert list(home.iterdir()) == []


# ---- codex ----------------------------------------------------------------------------

# codex-rs/hooks/src/legacy_notify.rs, test_user_notification (the historical wire shape)
CODEX_NOTIFY = {
    "type": "agent-turn-complete",
    "thread-id": "b5f6c1c2-1111-2222-3333-444455556666",
    "turn-id": "12345",
    "cwd": "/Users/example/project",
    "client": "codex-tui",
    "input-messages": ["Rename `foo` to `bar` and update the callsites."],
    "last-assistant-message": "Rename complete and verified `cargo build` succeeds.",
}

# permission-request.command.input.schema.json (required fields), values as 0.171.0 sends
CODEX_PERMISSION = {
    "session_id": "01a22136-b74b-7272-98c5-55fb9983d366",
    "turn_id": "01a22136-b75e-7113-bde6-5dd3f00afe0d",
    "transcript_path": None,
    "cwd": "/work/repo",
    "hook_event_name": "PermissionRequest",
    "model": "gpt-5",
    "permission_mode": "default",
    "tool_name": "Bash",
    "tool_input": {"command": "rm -rf build", "description": "clean the build dir"},
}

# recorded from codex-cli 0.171.0 (Stop hook stdin)
CODEX_STOP = {
    "session_id": "01a22136-b74b-7272-98c5-55fb9983d366",
    "turn_id": "01a22136-b75e-7113-bde6-5dd3f00afe0d",
    "transcript_path": "/h/.codex/sessions/2026/11/28/rollout-2026-11-28T08-12-43-x.jsonl",
    "cwd": "/work/repo",
    "hook_event_name": "Stop",
    "model": "gpt-5",
    "permission_mode": "bypassPermissions",
    "stop_hook_active": False,
    "last_assistant_message": "All done here.",
}


def _toml(value: str) -> Any:
    return tomllib.loads("v = " + value)["v"]


def _overrides(argv: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, a in enumerate(argv):
        if a == "-c":
            key, _, value = argv[i + 1].partition("=")
            out[key] = _toml(value)
    return out


def test_codex_notify_override_is_the_hook_argv_plus_event(tmp_path: Path) -> None:
    argv = CodexProfile().command(ctx_for(tmp_path))
    ov = _overrides(argv)
    assert ov["notify"] == [*HOOK_ARGV, "codex-notify"]
    assert argv[-2:] == ["--", "do the thing"]


def test_codex_hooks_override_runs_mullui_hook_per_event_with_a_trust_entry(
    tmp_path: Path,
) -> None:
    hooks = _overrides(CodexProfile().command(ctx_for(tmp_path)))["hooks"]
    state = hooks.pop("state")
    assert set(hooks) == {
        "UserPromptSubmit",
        "PermissionRequest",
        "PostToolUse",
        "Stop",
    }
    for event, groups in hooks.items():
        (handler,) = groups[0]["hooks"]
        assert shlex.split(handler["command"]) == [*HOOK_ARGV, event]
        label = {"PermissionRequest": "permission_request", "Stop": "stop"}.get(event)
        if label:
            key = f"/<session-flags>/config.toml:{label}:0:0"
            assert state[key]["trusted_hash"] == hook_trust_hash(
                event, handler["command"], handler["timeout"]
            )
    assert len(state) == len(hooks)


def test_codex_hooks_can_be_turned_off(tmp_path: Path) -> None:
    ov = _overrides(CodexProfile().command(ctx_for(tmp_path, hooks=False)))
    assert "hooks" not in ov and "notify" in ov


def test_codex_trust_hash_matches_what_codex_0_171_accepted() -> None:
    # Values codex-cli 0.171.0 ran without --dangerously-bypass-hook-trust (the hooks fired:
    # "hook: Stop" on stderr); a change in the algorithm shows up here first.
    assert hook_trust_hash("Stop", "python3 -m mullui hook Stop", 10) == (
        "sha256:14db325a4c41fef93192103eba8dfff4532c7169febc610e0c77298d15f76314"
    )
    assert hook_trust_hash("PermissionRequest", "python3 -m mullui hook PermissionRequest", 10) == (
        "sha256:2ced54e33e49becb61f19bf530fa1db7a0690f1db2b4dbf51987d18b2ab5e2ed"
    )


@pytest.mark.parametrize(
    "value",
    ["plain", 'q"uote', "back\\slash", "new\nline", "tab\t", "bell\x07", "del\x7f", "✓ 🚀"],
)
def test_toml_values_round_trip_through_tomllib(value: str) -> None:
    assert _toml(toml_value([value, {"k y": value}])) == [value, {"k y": value}]


@pytest.fixture
def codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CODEX_HOME holding the session file of CODEX_NOTIFY's thread."""
    home = tmp_path / "codex-home"
    day = home / "sessions" / "2026" / "11" / "28"
    day.mkdir(parents=True)
    tid = CODEX_NOTIFY["thread-id"]
    (day / f"rollout-2026-11-28T08-12-43-{tid}.jsonl").write_text(_token_count(500, 0, 20) + "\n")
    monkeypatch.setenv("CODEX_HOME", str(home))
    return home


def test_codex_notify_payload_means_done_with_the_last_message(codex_home: Path) -> None:
    evs = CodexProfile().translate("codex-notify", dict(CODEX_NOTIFY), [json.dumps(CODEX_NOTIFY)])
    state = [e for e in evs if e["kind"] == "state"]
    assert state == [
        {
            "kind": "state",
            "state": "done",
            "cause": "hook:codex-notify",
            "message": "Rename complete and verified `cargo build` succeeds.",
        }
    ]
    assert {"kind": "meta", "session_id": CODEX_NOTIFY["thread-id"]} in evs
    (usage,) = [e for e in evs if e["kind"] == "usage"]
    assert (usage["tokens_in"], usage["tokens_out"]) == (500, 20)


def test_codex_notify_of_a_bookkeeping_thread_is_not_done(codex_home: Path) -> None:
    # Recorded from codex-cli 0.171.0: the session-title thread notifies too, with its own
    # thread id and no session file.
    side = {
        **CODEX_NOTIFY,
        "thread-id": "01a2213a-1d22-7730-9767-9bde7075aecf",
        "input-messages": ["Generate a concise, single-line task title of at most 36 chars"],
        "last-assistant-message": "Create hello file",
    }
    evs = CodexProfile().translate("codex-notify", side, [])
    assert [e["kind"] for e in evs] == ["activity"]  # no meta: not the agent's session


def test_codex_notify_of_another_type_is_only_a_sign_of_life() -> None:
    evs = CodexProfile().translate("codex-notify", {"type": "something-else"}, [])
    assert [e["kind"] for e in evs] == ["activity"]


def test_codex_permission_request_means_blocked_with_the_command() -> None:
    evs = CodexProfile().translate("PermissionRequest", dict(CODEX_PERMISSION), [])
    (state,) = [e for e in evs if e["kind"] == "state"]
    assert state["state"] == "blocked"
    assert state["question"] == "Bash: rm -rf build"
    assert state["cause"] == "hook:PermissionRequest"


def test_codex_stop_means_done_and_reports_meta() -> None:
    evs = CodexProfile().translate("Stop", dict(CODEX_STOP), [])
    (state,) = [e for e in evs if e["kind"] == "state"]
    assert (state["state"], state["message"]) == ("done", "All done here.")
    (meta,) = [e for e in evs if e["kind"] == "meta"]
    assert meta["transcript_path"] == CODEX_STOP["transcript_path"]


@pytest.mark.parametrize("event", ["UserPromptSubmit", "PreToolUse", "PostToolUse"])
def test_codex_tool_and_prompt_hooks_mean_working(event: str) -> None:
    evs = CodexProfile().translate(event, {"session_id": "s"}, [])
    assert [e["state"] for e in evs if e["kind"] == "state"] == ["working"]


def _rollout_line(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"timestamp": "2026-11-28T08:12:43.857Z", "type": kind, "payload": payload})


def _token_count(inp: int, cached: int, out: int) -> str:
    # the shape of codex-cli 0.171.0's rollout lines (recorded)
    total = {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": 0,
        "output_tokens": out,
        "reasoning_output_tokens": 0,
        "total_tokens": inp + out,
    }
    info = {"total_token_usage": total, "last_token_usage": total, "model_context_window": 258400}
    return _rollout_line("event_msg", {"type": "token_count", "info": info})


def test_codex_stop_reports_usage_read_from_its_session_file(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    lines = [
        _rollout_line("turn_context", {"model": "gpt-5"}),
        _token_count(1000, 200, 50),
        _token_count(3000, 1000, 400),
    ]
    path.write_text("\n".join(lines) + "\n")
    evs = CodexProfile().translate("Stop", {**CODEX_STOP, "transcript_path": str(path)}, [])
    (usage,) = [e for e in evs if e["kind"] == "usage"]
    assert (usage["tokens_in"], usage["tokens_out"]) == (3000, 400)
    assert usage["cost_usd"] > 0  # gpt-5 is priced


def test_codex_finds_the_session_file_by_thread_id(codex_home: Path) -> None:
    tid = str(CODEX_NOTIFY["thread-id"])
    found = find_rollout(tid)
    assert found is not None and found.name.endswith(f"-{tid}.jsonl")
    assert find_rollout("../../etc") is None
    assert find_rollout("01a2213a-0000-0000-0000-000000000000") is None


# ---- aider ----------------------------------------------------------------------------


def test_aider_notifications_command_is_the_hook_argv_and_never_the_task(tmp_path: Path) -> None:
    task = "$(touch /tmp/pwned) ; rm -rf ~"
    ctx = ctx_for(tmp_path, task)
    argv = AiderProfile().command(ctx)
    i = argv.index("--notifications-command")
    assert "--notifications" in argv
    command = argv[i + 1]
    log = str(ctx.profile_dir / "aider-analytics.jsonl")
    assert shlex.split(command) == [
        sys.executable, "-m", "mullui.agents.aider_notify", "--socket", tmux_socket(), log, "--",
        *HOOK_ARGV, "aider-idle",
    ]  # fmt: skip
    assert task not in command
    assert argv[argv.index("--analytics-log") + 1] == log
    assert argv[-2:] == ["--message", task]


AIDER_QUESTION = """\
I will create it.

touch hello.txt
Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:"""


def test_aider_runs_under_the_wrapper_that_reports_its_usage_and_keeps_its_exit_code(
    tmp_path: Path,
) -> None:
    log = tmp_path / "aider-analytics.jsonl"
    send = {"prompt_tokens": 10, "completion_tokens": 2, "total_cost": 0.5}
    log.write_text(json.dumps({"event": "message_send", "properties": send}) + "\n")
    got = tmp_path / "got.json"
    recorder = [
        sys.executable,
        "-c",
        f"import sys; open({str(got)!r}, 'w').write(sys.stdin.read())",
    ]
    fake_aider = [sys.executable, "-c", "import sys; sys.exit(3)"]
    r = subprocess.run(
        [sys.executable, "-m", "mullui.agents.aider_notify", "--run", str(log), "--",
         *recorder, "aider-exit", "--", *fake_aider],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
    )  # fmt: skip
    assert r.returncode == 3
    payload = json.loads(got.read_text())
    assert payload["exit"] == 3
    assert payload["usage"] == {"tokens_in": 10, "tokens_out": 2, "cost_usd": 0.5}
    (u,) = AiderProfile().translate("aider-exit", payload, [])
    assert (u["kind"], u["tokens_in"], u["cost_usd"]) == ("usage", 10, 0.5)
    argv = AiderProfile().command(ctx_for(tmp_path, "t"))
    assert argv[:4] == [sys.executable, "-m", "mullui.agents.aider_notify", "--run"]
    assert argv[argv.index("aider-exit") + 1 : argv.index("aider-exit") + 3] == ["--", "aider"]


def test_aider_idle_at_a_yes_no_question_means_blocked_with_the_question() -> None:
    usage = {"tokens_in": 767, "tokens_out": 14, "cost_usd": 0.0021}
    evs = AiderProfile().translate("aider-idle", {"screen": AIDER_QUESTION, "usage": usage}, [])
    (state,) = [e for e in evs if e["kind"] == "state"]
    assert (state["state"], state["cause"]) == ("blocked", "screen:aider-idle")
    assert state["question"] == "Run shell command? touch hello.txt"
    (u,) = [e for e in evs if e["kind"] == "usage"]
    assert (u["tokens_in"], u["tokens_out"], u["cost_usd"]) == (767, 14, 0.0021)


@pytest.mark.parametrize("prompt", ["> ", "diff> ", "architect>"])
def test_aider_idle_at_the_chat_prompt_means_done(prompt: str) -> None:
    screen = f"Created hello.txt.\nTokens: 1.2k sent, 20 received.\n{'─' * 20}\n{prompt}"
    (state,) = AiderProfile().translate("aider-idle", {"screen": screen}, [])
    assert (state["kind"], state["state"]) == ("state", "done")


def test_aider_idle_with_no_prompt_drawn_is_only_a_sign_of_life() -> None:
    assert [e["kind"] for e in AiderProfile().translate("aider-idle", {"screen": ""}, [])] == [
        "activity"
    ]


def test_aider_notify_sums_the_analytics_log(tmp_path: Path) -> None:
    from mullui.agents.aider_notify import analytics_usage, is_prompt

    log = tmp_path / "a.jsonl"
    sends = [(700, 14, 0.001), (800, 6, 0.003)]
    lines = [json.dumps({"event": "launched", "properties": {}})]
    lines += [
        json.dumps(
            {
                "event": "message_send",
                "properties": {"prompt_tokens": i, "completion_tokens": o, "total_cost": c},
            }
        )
        for i, o, c in sends
    ]
    log.write_text("\n".join(lines) + "\n{torn")
    assert analytics_usage(str(log)) == {"tokens_in": 1500, "tokens_out": 20, "cost_usd": 0.003}
    assert analytics_usage(str(tmp_path / "absent")) is None
    assert is_prompt("Run shell command? (Y)es/(N)o [Yes]:")
    assert is_prompt("diff>") and is_prompt(">")
    assert not is_prompt("<div>") and not is_prompt("Tokens: 1k sent")


def test_aider_keeps_tmux_silence_as_a_fallback() -> None:
    assert AiderProfile.has_hooks is False
    assert CodexProfile.has_hooks is False


# ---- gemini ---------------------------------------------------------------------------

# docs/hooks/reference.md (google-gemini/gemini-cli): base fields + event fields
GEMINI_BASE = {
    "session_id": "c0ffee00-0000-4000-8000-000000000001",
    "transcript_path": "/h/.gemini/tmp/abc/chats/session-1.json",
    "cwd": "/work/repo",
    "timestamp": "2026-01-15T10:00:00.000Z",
}


def test_gemini_prepare_adds_hooks_to_a_private_copy_of_the_users_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    user = home / ".gemini"
    user.mkdir(parents=True)
    text = json.dumps(
        {
            "general": {"vimMode": True},  # "// not a comment"
            "hooks": {"AfterAgent": [{"hooks": [{"type": "command", "command": "own-hook"}]}]},
        }
    )
    (user / "settings.json").write_text("// the user's\n" + text)
    (user / "oauth_creds.json").write_text("{}")
    (user / "tmp").mkdir()
    monkeypatch.delenv(HOME_ENV, raising=False)
    ctx = ctx_for(tmp_path)
    ctx.env["HOME"] = str(home)
    env = GeminiProfile().prepare(ctx)
    ours = Path(env[HOME_ENV]) / ".gemini"
    assert ours.parent.parent == ctx.profile_dir
    doc = json.loads((ours / "settings.json").read_text())
    assert doc["general"] == {"vimMode": True}
    after = doc["hooks"]["AfterAgent"]
    assert after[0]["hooks"][0]["command"] == "own-hook"  # the user's hook still runs
    assert shlex.split(after[1]["hooks"][0]["command"]) == [*HOOK_ARGV, "AfterAgent"]
    for event in ("BeforeAgent", "Notification", "SessionEnd", "BeforeTool", "AfterTool"):
        assert shlex.split(doc["hooks"][event][-1]["hooks"][0]["command"]) == [*HOOK_ARGV, event]
    # ask_user (a question), and the file-writing tools the collision guard answers
    assert doc["hooks"]["BeforeTool"][-1]["matcher"] == "ask_user|write_file|replace"
    assert doc["hooks"]["Notification"][-1]["matcher"] == "ToolPermission"
    # everything else is the user's own, through links
    assert (ours / "oauth_creds.json").resolve() == (user / "oauth_creds.json").resolve()
    assert (ours / "tmp").resolve() == (user / "tmp").resolve()
    assert (user / "settings.json").read_text() == "// the user's\n" + text  # untouched
    assert env[TRUSTED_FOLDERS_ENV] == str(user / "trustedFolders.json")
    assert TRUST_ENV not in env  # nobody trusted the repository


def test_gemini_trust_of_the_repository_extends_to_its_worktree(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    ctx = ctx_for(tmp_path)
    ctx.env["HOME"] = str(home)
    (home / ".gemini" / "trustedFolders.json").write_text(
        json.dumps({str(tmp_path): "TRUST_FOLDER"})
    )
    assert GeminiProfile().prepare(ctx)[TRUST_ENV] == "true"
    (home / ".gemini" / "trustedFolders.json").write_text(
        json.dumps({str(tmp_path): "DO_NOT_TRUST"})
    )
    assert TRUST_ENV not in GeminiProfile().prepare(ctx)


def test_gemini_refuses_user_settings_it_cannot_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text('{ "general": ')
    ctx = ctx_for(tmp_path)
    ctx.env["HOME"] = str(home)
    with pytest.raises(MulluiError, match="Gemini CLI settings"):
        GeminiProfile().prepare(ctx)


def test_gemini_usage_counts_each_message_of_the_jsonl_transcript_once(tmp_path: Path) -> None:
    from mullui.agents.gemini import transcript_usage

    t = {"input": 100, "output": 20, "cached": 0, "thoughts": 5, "tool": 0, "total": 125}
    lines = [
        {"sessionId": "s", "kind": "main"},
        {"$set": {"messages": [{"id": "u0", "type": "user", "content": []}]}},
        {"id": "m1", "type": "gemini", "content": "", "tokens": t},
        {"id": "m1", "type": "gemini", "content": "", "tokens": t, "toolCalls": []},
        {"id": "m2", "type": "gemini", "content": "ok", "tokens": t},
    ]
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ev = transcript_usage(str(path))
    assert ev is not None
    assert (ev["tokens_in"], ev["tokens_out"]) == (200, 50)
    assert transcript_usage(str(tmp_path / "none.jsonl")) is None


def test_gemini_after_agent_means_done_with_the_response() -> None:
    p = {
        **GEMINI_BASE,
        "hook_event_name": "AfterAgent",
        "prompt": "add tests",
        "prompt_response": "Added 3 tests.",
        "stop_hook_active": False,
    }
    evs = GeminiProfile().translate("AfterAgent", p, [])
    (state,) = [e for e in evs if e["kind"] == "state"]
    assert (state["state"], state["message"]) == ("done", "Added 3 tests.")
    (meta,) = [e for e in evs if e["kind"] == "meta"]
    assert meta["session_id"] == GEMINI_BASE["session_id"]


def test_gemini_tool_permission_notification_means_blocked_with_its_message() -> None:
    p = {
        **GEMINI_BASE,
        "hook_event_name": "Notification",
        "notification_type": "ToolPermission",
        "message": "Tool Confirm Shell Command requires execution",
        "details": {"type": "exec", "title": "Confirm Shell Command", "command": "rm -rf build"},
    }
    (state,) = [e for e in GeminiProfile().translate("Notification", p, []) if e["kind"] == "state"]
    assert state["state"] == "blocked"
    assert state["cause"] == "hook:Notification:ToolPermission"
    assert state["question"] == "Shell: rm -rf build"
    p["details"] = {"type": "info"}
    (state,) = [e for e in GeminiProfile().translate("Notification", p, []) if e["kind"] == "state"]
    assert state["question"] == "Tool Confirm Shell Command requires execution"


def test_gemini_tools_and_prompts_mean_working_and_ask_user_means_blocked() -> None:
    g = GeminiProfile()
    run = {**GEMINI_BASE, "tool_name": "run_shell_command", "tool_input": {"command": "ls"}}
    assert [e["state"] for e in g.translate("BeforeTool", run, []) if e["kind"] == "state"] == [
        "working"
    ]
    assert [
        e["state"] for e in g.translate("BeforeAgent", {"prompt": "x"}, []) if e["kind"] == "state"
    ] == ["working"]
    ask = {"tool_name": "ask_user", "tool_input": {"questions": [{"question": "Which DB?"}]}}
    (state,) = [e for e in g.translate("BeforeTool", ask, []) if e["kind"] == "state"]
    assert (state["state"], state["question"]) == ("blocked", "ask_user: Which DB?")


@pytest.mark.parametrize(
    "reason,exits",
    [("exit", True), ("prompt_input_exit", True), ("clear", False), ("other", False)],
)
def test_gemini_session_end_exits_only_when_the_user_quit(reason: str, exits: bool) -> None:
    evs = GeminiProfile().translate("SessionEnd", {**GEMINI_BASE, "reason": reason}, [])
    assert any(e["kind"] == "exit" for e in evs) is exits


# ---- opencode -------------------------------------------------------------------------


def test_opencode_prepare_writes_the_plugin_and_points_opencode_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    ctx = ctx_for(tmp_path)
    env = OpenCodeProfile().prepare(ctx)
    plugin = Path(env[CONFIG_DIR_ENV]) / "plugins" / "mullui.js"
    text = plugin.read_text()
    assert json.dumps(list(HOOK_ARGV)) in text
    # one dir for every agent (OpenCode installs its plugin package once per config dir),
    # beside the agents' profile dirs
    assert Path(env[CONFIG_DIR_ENV]) == ctx.profile_dir.parent / "_opencode"
    other = dataclasses.replace(ctx, agent_id="b2", profile_dir=tmp_path / "b2")
    assert OpenCodeProfile().prepare(other)[CONFIG_DIR_ENV] == str(tmp_path / "_opencode")
    assert plugin.read_text() == text


def test_opencode_launch_drops_the_held_edits_its_dead_process_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that held an edit for the human and died left ``ID.CALL.wait``: a new
    launch removes it (and a late answer), so ``mullui send`` never answers a call
    nobody waits on; other agents' held edits stay."""
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    state = tmp_path / "state"
    d = Path(guard.decisions_dir(state))
    d.mkdir(parents=True)
    for name in ("a1b2c3.call_1.wait", "a1b2c3.call_1.answer", "b2.call_2.wait"):
        (d / name).write_text("{}")
    ctx = ctx_for(tmp_path)
    ctx = dataclasses.replace(ctx, env={**ctx.env, "MULLUI_STATE_DIR": str(state)})
    OpenCodeProfile().prepare(ctx)
    assert sorted(p.name for p in d.iterdir()) == ["b2.call_2.wait"]


def test_opencode_keeps_the_users_own_config_dir_via_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user-oc"
    (user / "plugins").mkdir(parents=True)
    (user / "plugins" / "theirs.js").write_text("export const T = async () => ({})\n")
    (user / "opencode.json").write_text("{}")
    (user / "agents").mkdir()
    monkeypatch.setenv(CONFIG_DIR_ENV, str(user))
    env = OpenCodeProfile().prepare(ctx_for(tmp_path))
    ours = Path(env[CONFIG_DIR_ENV])
    assert ours != user
    assert (ours / "opencode.json").resolve() == (user / "opencode.json").resolve()
    assert (ours / "agents").resolve() == (user / "agents").resolve()
    assert (ours / "plugins" / "theirs.js").resolve() == (user / "plugins" / "theirs.js").resolve()
    assert (ours / "plugins" / "mullui.js").is_file()
    assert sorted(p.name for p in (user / "plugins").iterdir()) == ["theirs.js"]  # untouched


RECORDER = """\
import json, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"event": sys.argv[2], "payload": json.loads(sys.stdin.read())}) + "\\n")
"""

DRIVER = """\
const [plugin, events] = process.argv.slice(2);
const mod = await import(plugin);
const hooks = await mod.MulluiPlugin({});
for (const event of JSON.parse(events)) await hooks.event({ event });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_opencode_plugin_reports_the_events_that_matter(tmp_path: Path) -> None:
    """The real plugin file, run by node against a sequence of OpenCode bus events."""
    log = tmp_path / "calls.jsonl"
    rec = tmp_path / "rec.py"
    rec.write_text(RECORDER)
    ctx = LaunchContext(
        **{**ctx_for(tmp_path).__dict__, "hook_argv": (sys.executable, str(rec), str(log))}
    )
    env = OpenCodeProfile().prepare(ctx)
    plugin = Path(env[CONFIG_DIR_ENV]) / "plugins" / "mullui.js"
    root, child = "ses_root", "ses_child"
    events = [
        {"type": "session.created", "properties": {"info": {"id": root}}},
        {"type": "session.created", "properties": {"info": {"id": child, "parentID": root}}},
        {"type": "session.status", "properties": {"sessionID": root, "status": {"type": "busy"}}},
        {"type": "session.status", "properties": {"sessionID": root, "status": {"type": "busy"}}},
        {
            "type": "message.updated",
            "properties": {
                "info": {
                    "id": "msg_1",
                    "role": "assistant",
                    "sessionID": root,
                    "cost": 0.0123,
                    "tokens": {
                        "input": 100,
                        "output": 30,
                        "reasoning": 5,
                        "cache": {"read": 50, "write": 10},
                    },
                }
            },
        },
        {
            "type": "message.part.updated",
            "properties": {
                "part": {
                    "type": "text",
                    "messageID": "msg_1",
                    "sessionID": root,
                    "text": "Working on it",
                }
            },
        },
        {
            "type": "permission.asked",
            "properties": {
                "id": "per_1",
                "sessionID": child,
                "permission": "bash",
                "patterns": ["git push"],
                "metadata": {},
            },
        },
        {"type": "permission.replied", "properties": {"sessionID": child, "requestID": "per_1"}},
        {"type": "session.idle", "properties": {"sessionID": child}},
        {
            "type": "message.part.updated",
            "properties": {
                "part": {
                    "type": "text",
                    "messageID": "msg_1",
                    "sessionID": root,
                    "text": "Pushed the branch.",
                }
            },
        },
        {"type": "session.idle", "properties": {"sessionID": root}},
        {"type": "session.status", "properties": {"sessionID": root, "status": {"type": "idle"}}},
    ]
    driver = tmp_path / "driver.mjs"
    driver.write_text(DRIVER)
    subprocess.run(
        ["node", str(driver), plugin.as_uri(), json.dumps(events)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    # The plugin spawns without waiting; give the recorders a moment to finish.
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= 4:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    by_event = {c["event"]: c["payload"] for c in calls}
    # busy reported once, the child's idle ignored, the root's idle once (status idle deduped)
    assert sorted(c["event"] for c in calls) == sorted(
        ["session.busy", "permission.asked", "permission.replied", "session.idle"]
    )
    assert by_event["permission.asked"]["patterns"] == ["git push"]
    idle = by_event["session.idle"]
    assert idle["sessionID"] == root
    assert idle["last_message"] == "Pushed the branch."
    assert (idle["tokens_in"], idle["tokens_out"]) == (160, 35)
    assert idle["cost_usd"] == pytest.approx(0.0123)


def test_opencode_idle_means_done_with_message_and_usage() -> None:
    p = {
        "sessionID": "ses_1",
        "last_message": "Done.",
        "tokens_in": 160,
        "tokens_out": 35,
        "cost_usd": 0.0123,
    }
    evs = OpenCodeProfile().translate("session.idle", p, [])
    kinds = {e["kind"]: e for e in evs}
    assert (kinds["state"]["state"], kinds["state"]["message"]) == ("done", "Done.")
    assert (kinds["usage"]["tokens_in"], kinds["usage"]["cost_usd"]) == (160, 0.0123)
    assert kinds["meta"]["session_id"] == "ses_1"


@pytest.mark.parametrize(
    "event,payload,question",
    [
        (
            "permission.asked",
            {"permission": "bash", "patterns": ["git push", "rm x"]},
            "bash: git push, rm x",
        ),
        (
            "permission.updated",
            {"permission": "edit", "patterns": "src/a.py", "title": "Edit src/a.py"},
            "Edit src/a.py",
        ),
        (
            "question.asked",
            {"questions": [{"question": "Use Postgres?", "header": "DB"}]},
            "Use Postgres?",
        ),
        (
            "session.error",
            {"error": {"name": "ProviderAuthError", "data": {"message": "bad key"}}},
            "error: ProviderAuthError: bad key",
        ),
    ],
)
def test_opencode_questions_permissions_and_errors_mean_blocked(
    event: str, payload: dict[str, Any], question: str
) -> None:
    (state,) = [e for e in OpenCodeProfile().translate(event, payload, []) if e["kind"] == "state"]
    assert (state["state"], state["question"]) == ("blocked", question)


@pytest.mark.parametrize("event", ["session.busy", "permission.replied", "question.replied"])
def test_opencode_busy_and_answers_mean_working(event: str) -> None:
    evs = OpenCodeProfile().translate(event, {"sessionID": "s"}, [])
    assert [e["state"] for e in evs if e["kind"] == "state"] == ["working"]


# ---- through the real `mullui hook` ---------------------------------------------------


@pytest.mark.parametrize(
    "profile,event,args,stdin,state",
    [
        ("codex", "codex-notify", [json.dumps(CODEX_NOTIFY)], "", "done"),
        ("codex", "PermissionRequest", [], json.dumps(CODEX_PERMISSION), "blocked"),
        ("aider", "aider-idle", [], json.dumps({"screen": "Edit? (Y)es/(N)o [Yes]:"}), "blocked"),
        ("gemini", "AfterAgent", [], json.dumps({**GEMINI_BASE, "prompt_response": "ok"}), "done"),
        (
            "opencode",
            "permission.asked",
            [],
            json.dumps({"sessionID": "s", "permission": "bash"}),
            "blocked",
        ),
    ],
)
def test_mullui_hook_applies_each_profiles_events(
    mullui_home: Path,
    codex_home: Path,
    profile: str,
    event: str,
    args: list[str],
    stdin: str,
    state: str,
) -> None:
    from mullui.model import Agent
    from mullui.paths import get_paths
    from mullui.store import Store

    store = Store(get_paths())
    agent, token = store.create(Agent(id="ag1", name="ag1", profile=profile, task="t"))
    store.emit(agent.id, "start", cause="spawn")
    store.emit(agent.id, "state", state="working", cause="spawned")
    env = {**os.environ, "MULLUI_AGENT_ID": agent.id, "MULLUI_AGENT_TOKEN": token}
    r = subprocess.run(
        [sys.executable, "-m", "mullui", "hook", event, *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # a hook that printed could be read as a decision
    after = store.load(agent.id)
    assert after.state.value == state
    if profile == "codex" and event == "codex-notify":
        assert after.last_message == CODEX_NOTIFY["last-assistant-message"]
