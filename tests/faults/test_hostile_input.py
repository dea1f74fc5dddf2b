"""Hostile input: task text, names, branch names, config files, hook payloads and event
streams that no well-behaved agent would send.  Property-based (hypothesis) where a
property is cheap in-process; a handful of fixed cases through the real CLI.

The bar for all of them: never a traceback, never a shell, never a stored record corrupted.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mullui import config as config_mod
from mullui import hook as hook_mod
from mullui.agents.base import LaunchContext
from mullui.agents.shell import PLACEHOLDERS, CustomProfile, ShellProfile, expand
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent, State
from mullui.operations.names import unique_name
from mullui.paths import get_paths
from mullui.reducer import apply_event
from mullui.store import Store
from mullui.workspace import Workspace, slugify
from tests.conftest import git, ls_json, make_repo, wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]

# No "explain" phase: it traces every line run by a failing example, and with 1 MB
# payloads that took minutes (hypothesis 6.x scrutineer) before the failure was shown.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
FAST = settings(
    max_examples=80,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Any unicode (control characters, NUL, newlines, RTL marks, emoji), plus the shell's
# favourite metacharacters, up to ~10 KB.
SHELLISH = [
    "$(touch /tmp/mullui-pwned)",
    "`id`",
    "'",
    '"',
    ";",
    "|",
    "&",
    ">",
    "\\",
    "\n",
    "\0",
    "{task}",
    "{id}",
    "{",
    "}",
    "#(touch /tmp/mullui-pwned)",
    "#{pane_id}",
    "-rf",
    "--upload-pack=touch /tmp/mullui-pwned",
    "..",
    "/",
    "~",
    "*",
    "\x1b[31m",
    "\u202e",
]
hostile_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(SHELLISH), st.text(max_size=20)), max_size=30).map("".join),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=10), st.integers(1, 1000)),
)


# ---- custom argv profiles: each placeholder stays inside one argv element ---------------------
def ctx_for(
    task: str,
    agent_id: str = "ab12cd34",
    branch: str = "mullui/x-ab12cd34",
    worktree: str = "/tmp/wt",
) -> LaunchContext:
    return LaunchContext(
        agent_id=agent_id,
        name="n",
        task=task,
        worktree=Path(worktree),
        branch=branch,
        repo=Path("/tmp/repo"),
        profile_dir=Path("/tmp/p"),
        hook_argv=("mullui", "hook"),
        session_id="s",
    )


literal = st.text(max_size=12).filter(lambda s: "{" not in s and "}" not in s)
template_element = st.lists(st.one_of(literal, st.sampled_from(PLACEHOLDERS)), max_size=6)


@FAST
@given(
    task=hostile_text,
    branch=hostile_text,
    worktree=hostile_text,
    template=st.lists(template_element, min_size=1, max_size=6),
)
def test_custom_profile_keeps_each_placeholder_in_its_argv_element(
    task: str, branch: str, worktree: str, template: list[list[str]]
) -> None:
    values = {"task": task, "id": "ab12cd34", "branch": branch, "worktree": str(Path(worktree))}
    command = [
        "".join("{" + p + "}" if p in PLACEHOLDERS else p for p in parts) for parts in template
    ]
    argv = CustomProfile("mine", {"command": command}).command(
        ctx_for(task, branch=branch, worktree=worktree)
    )
    assert len(argv) == len(command)  # nothing split, nothing joined
    for got, parts in zip(argv, template, strict=True):
        # One pass: a task that contains "{id}" is not expanded a second time.
        assert got == "".join(values[p] if p in PLACEHOLDERS else p for p in parts)


@FAST
@given(template=st.text(max_size=60), task=hostile_text)
def test_expand_never_fails_and_only_touches_known_placeholders(template: str, task: str) -> None:
    out = expand(template, {"task": task})
    if "{task}" not in template:
        assert out == template
    else:
        assert task in out


@FAST
@given(task=hostile_text)
def test_shell_task_is_one_argv_element(task: str) -> None:
    assert ShellProfile().command(ctx_for(task)) == ["/bin/sh", "-c", task]


# ---- names and branches -------------------------------------------------------------------
def branch_ok(branch: str) -> bool:
    r = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, check=False
    )
    return r.returncode == 0


@FAST
@given(text=hostile_text)
def test_slug_makes_a_valid_branch_name(text: str) -> None:
    slug = slugify(text)
    assert slug and len(slug) <= 24
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    assert not slug.startswith("-") and not slug.endswith("-")
    assert branch_ok(f"mullui/{slug}-ab12cd34"), slug


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("ws")
    paths = get_paths({"MULLUI_HOME": str(base / "home")})
    repo = make_repo(base / "repo")
    ws = Workspace(paths, cwd=repo)
    for i, name in enumerate(["fix-login", "fix-login-2", "weird name ☃"]):
        ws.store.create(Agent(id=f"a{i:07d}", name=name, profile="shell", task="t"))
    yield ws


@FAST
@given(name=st.one_of(st.none(), hostile_text), task=hostile_text)
def test_unique_name_is_one_free_line_and_its_branch_is_valid(
    workspace: Workspace, name: str | None, task: str
) -> None:
    taken = {a.name for a in workspace.store.all()}
    try:
        got = unique_name(workspace, name, task)
    except MulluiError as e:
        assert name is not None and "\n" not in e.message
        assert not name.strip() or any(c in name for c in "\0\n\r") or name in taken
        return
    assert got not in taken and "\n" not in got and "\0" not in got
    if name is not None:
        assert got == name
    assert branch_ok(f"mullui/{slugify(got)}-ab12cd34")


# ---- config files -----------------------------------------------------------------------------
def one_line_naming(e: ConfigError, path: Path) -> None:
    assert "\n" not in e.message and "\r" not in e.message, e.message
    assert path.name in e.message, e.message


toml_ish = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "[limits]",
                "[profiles.x]",
                "[hosts.h]",
                "[chains.c]",
                "[notify]",
                "[[chains.c.steps]]",
                "max_running = ",
                "command = ",
                "steps = ",
                "=",
                '"',
                "'",
                "[",
                "]",
                "{",
                "}",
                ",",
                "\n",
                "#",
                "true",
                "1.5",
                "-3",
                "1979-05-27",
                '"""',
                "\\u0000",
                "\\",
                "x.y.z = 1",
                'ssh = "me@h"',
            ]
        ),
        st.text(max_size=10),
    ),
    max_size=40,
).map("".join)

SCHEMA = {
    "default_agent": None,
    "theme": None,
    "limits": config_mod.LIMITS,
    "notify": config_mod.NOTIFY,
    "watch": config_mod.WATCH,
    "collisions": config_mod.COLLISIONS,
}
toml_value = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.datetimes(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def wrong_typed_config(draw: st.DrawFn) -> dict[str, Any]:
    """Valid TOML whose keys are mostly real and whose values are anything."""
    data: dict[str, Any] = {}
    for key in draw(
        st.lists(
            st.sampled_from([*SCHEMA, "profiles", "hosts", "chains", "prices", "bogus"]),
            max_size=5,
            unique=True,
        )
    ):
        schema = SCHEMA.get(key)
        if key in ("default_agent", "theme"):
            data[key] = draw(toml_value)
        elif isinstance(schema, dict):
            data[key] = draw(
                st.dictionaries(st.sampled_from([*schema, "nope"]), toml_value, max_size=4)
            )
        elif key in ("profiles", "hosts", "prices"):
            sub = {
                "profiles": config_mod.PROFILE,
                "hosts": config_mod.HOST,
                "prices": config_mod.PRICE,
            }[key]
            data[key] = draw(
                st.dictionaries(
                    st.one_of(
                        st.sampled_from(["claude", "mine", "x y", "a\nb"]), st.text(max_size=5)
                    ),
                    st.one_of(
                        st.dictionaries(st.sampled_from([*sub, "nope"]), toml_value, max_size=4),
                        toml_value,
                    ),
                    max_size=3,
                )
            )
        elif key == "chains":
            step = st.one_of(
                st.dictionaries(
                    st.sampled_from(["agent", "task", "name", "x"]), toml_value, max_size=3
                ),
                toml_value,
            )
            data[key] = draw(
                st.dictionaries(
                    st.text(max_size=5),
                    st.one_of(
                        st.fixed_dictionaries({"steps": st.lists(step, max_size=3)}), toml_value
                    ),
                    max_size=2,
                )
            )
        else:
            data[key] = draw(toml_value)
    return data


@pytest.fixture(scope="module")
def cfg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cfg")
    make_repo(d / "repo")
    return d


def load_or_config_error(cfg_dir: Path, text: str, where: str) -> config_mod.Config | None:
    home_file = cfg_dir / "config.toml"
    repo_file = cfg_dir / "repo" / ".mullui.toml"
    target, other = (home_file, repo_file) if where == "home" else (repo_file, home_file)
    other.unlink(missing_ok=True)
    target.write_text(text, encoding="utf-8")
    try:
        return config_mod.load(home_file, cfg_dir / "repo")
    except ConfigError as e:
        one_line_naming(e, target)
        return None


@FAST
@given(text=toml_ish, where=st.sampled_from(["home", "repo"]))
def test_config_text_loads_or_says_why_in_one_line(cfg_dir: Path, text: str, where: str) -> None:
    cfg = load_or_config_error(cfg_dir, text, where)
    if cfg is not None:
        assert isinstance(cfg.limits.max_running, int)


@FAST
@given(data=wrong_typed_config(), where=st.sampled_from(["home", "repo"]))
def test_config_of_wrong_types_loads_or_says_why_in_one_line(
    cfg_dir: Path, data: dict[str, Any], where: str
) -> None:
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return  # not representable as TOML
    tomllib.loads(text)
    cfg = load_or_config_error(cfg_dir, text, where)
    if cfg is None:
        return
    # Whatever loaded is what the rest of mullui expects.
    lim = cfg.limits
    assert isinstance(lim.max_running, int) and not isinstance(lim.max_running, bool)
    assert lim.max_running > 0 and lim.stall_after_s > 0 and lim.silence_after_s > 0
    assert isinstance(lim.max_cost_usd, float) and isinstance(cfg.default_agent, str)
    for name, prof in cfg.profiles.items():
        assert isinstance(prof, dict), name
        if "command" in prof:
            assert prof["command"] and all(isinstance(x, str) for x in prof["command"])
    for steps in cfg.chains.values():
        assert steps and all(isinstance(s.task, str) and isinstance(s.agent, str) for s in steps)


# ---- hook payloads ------------------------------------------------------------------------------
PROFILES = ("claude", "codex", "gemini", "opencode", "aider", "demo", "shell")
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SubagentStop",
    "SessionEnd",
    "BeforeAgent",
    "BeforeTool",
    "AfterTool",
    "AfterAgent",
    "codex-notify",
    "aider-idle",
    "session.idle",
    "session.busy",
    "session.error",
    "permission.asked",
    "question.asked",
    "Working",
    "Ask",
    "pane-died",
    "silence",
    "activity",
)
# Keys the profiles read from payloads (transcript paths left out: reading them is the
# usage tests' business, and a path to a FIFO is a hostile agent's own foot).
PAYLOAD_KEYS = (
    "agent_id",
    "background_tasks",
    "command",
    "cost_usd",
    "cwd",
    "description",
    "error",
    "error_details",
    "last_assistant_message",
    "last_message",
    "message",
    "notification_type",
    "patterns",
    "permission",
    "prompt_response",
    "question",
    "questions",
    "reason",
    "sessionID",
    "session_id",
    "title",
    "tokens_in",
    "tokens_out",
    "tool_input",
    "tool_name",
    "type",
    "exit_code",
    "state",
)
small_text = st.one_of(st.text(max_size=30), st.sampled_from(SHELLISH))
json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        small_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
known_payload = st.dictionaries(st.sampled_from(PAYLOAD_KEYS), json_value, max_size=6)
MEGA = "x" * (1 << 20)
BIG_PAYLOADS = [
    json.dumps({"message": MEGA}),
    json.dumps({"question": MEGA, "tool_input": MEGA}),
    json.dumps([MEGA]),
    '{"message": "' + MEGA,
    MEGA,
]
stdin_text = st.one_of(
    known_payload.map(json.dumps),
    json_value.map(json.dumps),
    hostile_text,  # malformed JSON, control characters, nothing at all
    st.sampled_from(BIG_PAYLOADS),
)


@pytest.fixture(scope="module")
def hook_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, str]]:
    paths = get_paths({"MULLUI_HOME": str(tmp_path_factory.mktemp("hooks") / "home")})
    store = Store(paths)
    tokens = {}
    for p in PROFILES:
        aid = f"{p[:4]}0001"
        _a, tokens[aid] = store.create(
            Agent(id=aid, name=p, profile=p, task="t", hooks=p not in ("shell", "aider"))
        )
        store.emit(aid, "start", cause="spawn")
        store.emit(aid, "state", state="working", cause="spawned")
    return store, tokens


def assert_sane(store: Store, aid: str) -> Agent:
    """The record loads, in a real state, with the types `ls --json` promises."""
    a = store.load(aid)
    assert isinstance(a.state, State) and isinstance(a.cause, str)
    assert a.seq == len(a.history) and [t.seq for t in a.history] == list(range(1, a.seq + 1))
    for v in (a.exit_code, a.tokens_in, a.tokens_out):
        assert v is None or (isinstance(v, int) and not isinstance(v, bool)), a
    assert a.cost_usd is None or isinstance(a.cost_usd, int | float), a
    for text in (a.question, a.last_message, a.session_id):
        assert text is None or isinstance(text, str), a
    json.dumps(a.to_ls_json())
    rec = json.loads(store.paths.record_file(aid).read_text())  # whole, valid JSON
    assert Agent.from_record(rec).seq == a.seq
    return a


@settings(
    max_examples=100,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_any_hook_call_is_ingested_or_refused_and_records_stay_sane(
    hook_state: tuple[Store, dict[str, str]], data: st.DataObject
) -> None:
    store, tokens = hook_state
    known = sorted(tokens)
    who = data.draw(st.integers(0, 9))  # mostly the agent itself, sometimes an impostor
    aid = data.draw(
        st.sampled_from(known)
        if who > 1
        else st.one_of(
            st.sampled_from(["deadbeef", "", "../" + known[0], known[0] + "\n", "a" * 65, "ü"]),
            st.text(max_size=9),
        )
    )
    token = tokens.get(aid, "") if who > 2 else data.draw(st.text(max_size=40))
    event = data.draw(st.one_of(st.sampled_from(HOOK_EVENTS), hostile_text))
    args = data.draw(st.lists(st.one_of(hostile_text, known_payload.map(json.dumps)), max_size=3))
    status = data.draw(st.one_of(st.none(), st.sampled_from(["0", "1", "-9", "137"]), hostile_text))
    seconds = data.draw(st.one_of(st.none(), st.sampled_from(["60", "0"]), hostile_text))
    stdin = data.draw(stdin_text)
    try:
        evs = hook_mod.ingest(
            event,
            args,
            agent=aid,
            token=token,
            status=status,
            seconds=seconds,
            state_dir=str(store.paths.state_dir),
            stdin=stdin,
        )
    except MulluiError as e:
        assert "\n" not in e.message.strip()
    else:
        assert aid in tokens and token == tokens[aid]  # only the agent itself gets in
        assert all(isinstance(ev.get("kind"), str) for ev in evs)
        raw = store.paths.spool_file(aid).read_bytes().splitlines()[-1]
        assert len(raw) <= 256 * 1024 + 1  # a 1 MB payload is clipped, not replayed forever
    for k in known:
        assert_sane(store, k)


# ---- the reducer --------------------------------------------------------------------------------
KINDS = (
    "created",
    "state",
    "exit",
    "activity",
    "silence",
    "stall",
    "stop",
    "fail",
    "start",
    "unknown",
    "reachable",
    "meta",
    "usage",
    "snooze",
    "wake",
    "ack",
    "merged",
    "removed",
    "collisions",
    "mirror",
    "update",
)
iso_time = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.isoformat())
state_value = st.one_of(st.sampled_from([s.value for s in State]), json_value)
record_value = st.fixed_dictionaries(
    {
        "id": st.just("ab12cd34"),
        "name": st.just("n"),
        "profile": st.just("shell"),
        "task": st.just("t"),
    },
    optional={
        "state": state_value,
        "cause": json_value,
        "exit_code": json_value,
        "tokens_in": json_value,
        "cost_usd": json_value,
        "history": json_value,
        "collisions": json_value,
    },
)
event = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(KINDS), st.text(max_size=8))},
    optional={
        "state": state_value,
        "cause": json_value,
        "question": json_value,
        "message": json_value,
        "exit_code": json_value,
        "at": st.one_of(iso_time, json_value),
        "tokens_in": json_value,
        "tokens_out": json_value,
        "cost_usd": json_value,
        "until": st.one_of(iso_time, json_value),
        "until_change": json_value,
        "seconds": json_value,
        "into": json_value,
        "sha": json_value,
        "session_id": json_value,
        "transcript_path": json_value,
        "collisions": json_value,
        "fields": st.dictionaries(
            st.sampled_from(
                ["branch", "worktree", "tmux_target", "task", "extra", "after", "host", "x"]
            ),
            json_value,
            max_size=3,
        ),
        "record": st.one_of(record_value, json_value),
    },
)


@settings(max_examples=100, deadline=None, phases=PHASES)
@given(events=st.lists(event, max_size=25))
def test_reducer_never_raises_and_keeps_the_record_whole(events: list[dict[str, Any]]) -> None:
    created = {
        "kind": "created",
        "at": "2030-01-01T00:00:00Z",
        "record": {"id": "ab12cd34", "name": "n", "profile": "shell", "task": "t"},
    }
    a: Agent | None = None
    for ev in [created, *events]:
        a = apply_event(a, ev)
        assert a is not None
        assert isinstance(a.state, State)
        assert a.seq == len(a.history)
        # what the store writes must read back
        back = Agent.from_record(json.loads(json.dumps(a.to_record(), default=str)))
        assert back.state is a.state and back.seq == a.seq


WRONG_TYPES = [
    {
        "tokens_in": "abc",
        "tokens_out": [1],
        "cost_usd": "x",
        "question": {"a": 1},
        "message": [1, 2],
    },
    {
        "tool_input": "str",
        "tool_name": 5,
        "questions": "x",
        "permission": "x",
        "error": 5,
        "patterns": 5,
        "type": 5,
        "title": [1],
    },
    {
        "tool_input": {"command": 5, "description": [1]},
        "questions": [1, None, "x"],
        "permission": {"patterns": "x", "title": 5},
        "session_id": 5,
        "cwd": [],
    },
    {
        "last_assistant_message": 5,
        "notification_type": 5,
        "prompt_response": 5,
        "background_tasks": "x",
        "error_details": 5,
        "reason": 5,
        "agent_id": {},
    },
]


def test_every_profile_survives_wrong_types_in_every_event(
    hook_state: tuple[Store, dict[str, str]],
) -> None:
    store, tokens = hook_state
    refused = 0
    for aid, token in tokens.items():
        for ev in HOOK_EVENTS:
            for payload in WRONG_TYPES:
                try:
                    hook_mod.ingest(
                        ev,
                        [json.dumps(payload)],
                        agent=aid,
                        token=token,
                        state_dir=str(store.paths.state_dir),
                        stdin=json.dumps(payload),
                    )
                except MulluiError as e:
                    assert "\n" not in e.message and aid in e.message
                    refused += 1
            assert_sane(store, aid)
    assert refused <= 2  # the demo's usage ints; every real profile takes what it can


# ---- a few fixed cases through the real CLI -----------------------------------------------
def one_line_failure(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    out = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("usage:")]
    assert len(out) == 1 and out[0].startswith("mullui: "), r.stderr
    return out[0]


def test_hostile_cli_input_runs_nothing_and_says_why_in_one_line(
    cli: Cli, git_repo: Path, mullui_home: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "PWNED"
    sock = os.environ["MULLUI_TMUX_SOCKET"]
    # A window name tmux would expand as a format (#() runs a shell command there).
    name = f"#(touch {mark}) #{{pane_id}} ;"
    r = cli(
        "spawn",
        "--agent",
        "shell",
        "--name",
        name,
        "--no-attach",
        'IFS= read -r line; printf %s "$line" > got.txt',
        cwd=git_repo,
    )
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    a = next(x for x in ls_json(cli, git_repo) if x["id"] == aid)
    names = subprocess.run(
        ["tmux", "-L", sock, "list-windows", "-a", "-F", "#{window_name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert name in names
    assert a["branch"].startswith("mullui/touch-") and git(
        git_repo, "check-ref-format", "--branch", a["branch"]
    )
    # Keys tmux would read as key names or options arrive as text.
    text = "-h C-c #{pane_id} $(touch " + str(mark) + ")"
    one_line_failure(cli("send", aid, text, cwd=git_repo), code=2)  # looks like an option
    r = cli("send", aid, "--", text, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    wt = Path(a["worktree"])
    wait_for(lambda: (wt / "got.txt").exists(), timeout=10)
    assert (wt / "got.txt").read_text() == text

    one_line_failure(cli("spawn", "--agent", "shell", "--name", "two\nlines", "true", cwd=git_repo))
    for base in (f"--upload-pack=touch {mark}", f"$(touch {mark})", "main;touch x"):
        line = one_line_failure(
            cli("spawn", "--agent", "shell", "--base", base, "true", cwd=git_repo)
        )
        assert "not found" in line
    line = one_line_failure(cli("spawn", "--agent", "../../bin/sh", "true", cwd=git_repo))
    assert "unknown agent profile" in line
    r = cli(
        "spawn",
        "--agent",
        "shell",
        "--name",
        "../../../escape",
        "--no-attach",
        "true",
        cwd=git_repo,
    )
    assert r.returncode == 0, r.stderr
    esc = next(x for x in ls_json(cli, git_repo) if x["id"] == r.stdout.strip())
    assert Path(esc["worktree"]).resolve().is_relative_to((mullui_home / "data").resolve())
    one_line_failure(cli("snooze", aid, "--for", "rm -rf /", cwd=git_repo), code=2)
    one_line_failure(cli("logs", "../../../etc/passwd", cwd=git_repo))
    one_line_failure(cli("ack", "", cwd=git_repo))
    assert not mark.exists()


def test_hostile_hook_calls_through_the_cli(cli: Cli, git_repo: Path, mullui_home: Path) -> None:
    r = cli(
        "spawn",
        "--agent",
        "demo",
        "--name",
        "d",
        "--no-attach",
        "x",
        cwd=git_repo,
        env={"MULLUI_DEMO_SPEED": "0.0001"},
    )
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    token = (mullui_home / "state" / "secrets" / aid).read_text()
    env = {"MULLUI_AGENT_ID": aid, "MULLUI_AGENT_TOKEN": token}
    mega = json.dumps({"question": "why? " + "x" * (1 << 20)})
    for event, stdin in (
        ("Ask", mega),
        ("Ask", "{not json"),
        ("Stop", '{"tokens_in": "lots"}'),
        ("Working", "[1, 2, 3]"),
        ("Ask", "\0\x1b[2J"),
    ):
        r = cli("hook", event, input=stdin, env=env, cwd=git_repo)
        assert "Traceback" not in r.stderr and r.returncode in (0, 1), r.stderr
        if r.returncode:
            one_line_failure(r)
    for bad in (
        {"MULLUI_AGENT_ID": "../../etc"},
        {"MULLUI_AGENT_ID": "deadbeef"},
        {"MULLUI_AGENT_TOKEN": "forged"},
    ):
        one_line_failure(cli("hook", "Stop", input="{}", env={**env, **bad}, cwd=git_repo))
    a = next(x for x in ls_json(cli, git_repo) if x["id"] == aid)
    assert a["state"] == "blocked" and a["tokens_in"] is None
    spool = (mullui_home / "state" / "spool" / f"{aid}.jsonl").read_bytes()
    assert max(len(x) for x in spool.splitlines()) <= 256 * 1024


def test_wrong_config_is_one_line_naming_the_file_for_every_command(
    cli: Cli, git_repo: Path, mullui_home: Path
) -> None:
    (git_repo / ".mullui.toml").write_text('[limits]\nmax_running = "eight"\n')
    for args in (("ls",), ("inbox",), ("spawn", "--agent", "shell", "true"), ("watch", "--once")):
        line = one_line_failure(cli(*args, cwd=git_repo))
        assert ".mullui.toml line 2" in line and "max_running" in line, line
    (git_repo / ".mullui.toml").write_text('[profiles."a\nb"]\ncommand = 5\n')
    one_line_failure(cli("ls", cwd=git_repo))


@st.composite
def backlog_data(draw: st.DrawFn) -> dict[str, Any]:
    def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, good, good, json_value.filter(lambda v: v is not None))

    task = st.fixed_dictionaries(
        {"task": mostly(small_text)},
        optional={
            "name": mostly(st.sampled_from(["t1", "t2", "t3"])),
            "agent": mostly(st.sampled_from(["shell", "claude", "nope"])),
            "after": mostly(st.sampled_from(["t1", "t2", "t9"])),
            "base": mostly(st.just("main")),
            "estimate_h": mostly(st.floats(0, 100)),
            "x": json_value,
        },
    )
    shape = draw(st.sampled_from(["list", "table", "junk"]))
    if shape == "list":
        return {"tasks": draw(st.lists(task, max_size=4))}
    if shape == "table":
        return {
            "tasks": draw(
                st.dictionaries(st.sampled_from(["t1", "t2", "a\nb", "☃"]), task, max_size=3)
            )
        }
    return draw(st.dictionaries(st.text(max_size=5), toml_value, max_size=3))


@FAST
@given(data=st.one_of(backlog_data(), toml_ish))
def test_backlog_file_parses_or_says_why_in_one_line(
    cfg_dir: Path, data: dict[str, Any] | str
) -> None:
    from mullui.queue import parse_backlog

    try:
        text = data if isinstance(data, str) else tomli_w.dumps(data)
    except (TypeError, ValueError):
        return
    path = cfg_dir / "tasks.toml"
    try:
        tasks = parse_backlog(text, path, ["claude", "shell", "demo"])
    except ConfigError as e:
        one_line_naming(e, path)
        return
    names = [t.name for t in tasks if t.name is not None]
    assert len(names) == len(set(names))
    for t in tasks:
        assert isinstance(t.task, str)
        for v in (t.name, t.agent, t.after, t.base):
            assert v is None or isinstance(v, str)
        assert t.agent is None or t.agent in ("claude", "shell", "demo")
        assert t.after is None or t.after in names
        assert t.estimate_h is None or (
            isinstance(t.estimate_h, int | float) and not isinstance(t.estimate_h, bool)
        )
