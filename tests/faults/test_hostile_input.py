"""Hostile input: task text, names, branch names, config files, hook payloads and event
streams that no well-behaved agent would send.  Property-based (hypothesis) where a
property is cheap in-process; a handful of fixed cases through the real CLI.

The bar for all of them: never a traceback, never a shell, never a stored record corrupted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mullui import config as config_mod
from mullui import hook as hook_mod
from mullui.agents.base import LaunchContext
from mullui.agents.shell import PLACEHOLDERS, CustomProfile, ShellProfile, expand
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent, State
from mullui.paths import get_paths
from mullui.reducer import apply_event
from mullui.store import Store
from mullui.workspace import Workspace, slugify
from tests.conftest import ROOT, git, ls_json, make_repo, wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

# Any unicode (control characters, NUL, newlines, RTL marks, emoji), plus the shell's
# favourite metacharacters, up to ~10 KB.
SHELLISH = ["$(touch /tmp/mullui-pwned)", "`id`", "'", '"', ";", "|", "&", ">", "\\", "\n",
            "\0", "{task}", "{id}", "{", "}", "#(touch /tmp/mullui-pwned)", "#{pane_id}", "-rf",
            "--upload-pack=touch /tmp/mullui-pwned", "..", "/", "~", "*", "\x1b[31m", "\u202e"]
hostile_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(SHELLISH), st.text(max_size=20)), max_size=30).map("".join),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=10), st.integers(1, 1000)),
)


# ---- custom argv profiles: each placeholder stays inside one argv element ---------------------
def ctx_for(task: str, agent_id: str = "ab12cd34", branch: str = "mullui/x-ab12cd34",
            worktree: str = "/tmp/wt") -> LaunchContext:
    return LaunchContext(agent_id=agent_id, name="n", task=task, worktree=Path(worktree),
                         branch=branch, repo=Path("/tmp/repo"), profile_dir=Path("/tmp/p"),
                         hook_argv=("mullui", "hook"), session_id="s")


literal = st.text(max_size=12).filter(lambda s: "{" not in s and "}" not in s)
template_element = st.lists(st.one_of(literal, st.sampled_from(PLACEHOLDERS)), max_size=6)


@FAST
@given(task=hostile_text, branch=hostile_text, worktree=hostile_text,
       template=st.lists(template_element, min_size=1, max_size=6))
def test_custom_profile_keeps_each_placeholder_in_its_argv_element(
    task: str, branch: str, worktree: str, template: list[list[str]]
) -> None:
    values = {"task": task, "id": "ab12cd34", "branch": branch, "worktree": str(Path(worktree))}
    command = ["".join("{" + p + "}" if p in PLACEHOLDERS else p for p in parts)
               for parts in template]
    argv = CustomProfile("mine", {"command": command}).command(
        ctx_for(task, branch=branch, worktree=worktree))
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
    r = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True,
                       check=False)
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
        got = workspace._unique_name(name, task)
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


toml_ish = st.lists(st.one_of(
    st.sampled_from(["[limits]", "[profiles.x]", "[hosts.h]", "[chains.c]", "[notify]",
                     "[[chains.c.steps]]", "max_running = ", "command = ", "steps = ", "=",
                     '"', "'", "[", "]", "{", "}", ",", "\n", "#", "true", "1.5", "-3",
                     "1979-05-27", '"""', "\\u0000", "\\", "x.y.z = 1", "ssh = \"me@h\""]),
    st.text(max_size=10)), max_size=40).map("".join)

SCHEMA = {
    "default_agent": None, "theme": None, "limits": config_mod.LIMITS,
    "notify": config_mod.NOTIFY, "watch": config_mod.WATCH, "collisions": config_mod.COLLISIONS,
}
toml_value = st.recursive(
    st.one_of(st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
              st.text(max_size=20), st.datetimes()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10,
)


@st.composite
def wrong_typed_config(draw: st.DrawFn) -> dict[str, Any]:
    """Valid TOML whose keys are mostly real and whose values are anything."""
    data: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([*SCHEMA, "profiles", "hosts", "chains",
                                              "prices", "bogus"]), max_size=5, unique=True)):
        schema = SCHEMA.get(key)
        if key in ("default_agent", "theme"):
            data[key] = draw(toml_value)
        elif isinstance(schema, dict):
            data[key] = draw(st.dictionaries(st.sampled_from([*schema, "nope"]), toml_value,
                                             max_size=4))
        elif key in ("profiles", "hosts", "prices"):
            sub = {"profiles": config_mod.PROFILE, "hosts": config_mod.HOST,
                   "prices": config_mod.PRICE}[key]
            data[key] = draw(st.dictionaries(
                st.one_of(st.sampled_from(["claude", "mine", "x y", "a\nb"]), st.text(max_size=5)),
                st.one_of(st.dictionaries(st.sampled_from([*sub, "nope"]), toml_value, max_size=4),
                          toml_value),
                max_size=3))
        elif key == "chains":
            step = st.one_of(st.dictionaries(st.sampled_from(["agent", "task", "name", "x"]),
                                             toml_value, max_size=3), toml_value)
            data[key] = draw(st.dictionaries(st.text(max_size=5), st.one_of(
                st.fixed_dictionaries({"steps": st.lists(step, max_size=3)}), toml_value),
                max_size=2))
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
