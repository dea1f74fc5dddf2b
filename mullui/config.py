"""Load and validate mullui's TOML config; every key has a default.

``config.toml`` (config dir, or ``$MULLUI_HOME/config.toml``) is merged with the
repository's ``.mullui.toml`` (the repository wins).  Errors name the file, the line and
the key: ``config.toml line 3: [profiles.x] command must be a list of strings``.

A repository's file is written by whoever can commit to it - an agent included - so
until the user trusts its exact content (``mullui trust``: a sha256 in the user's state,
re-asked whenever the file changes) only keys that can neither run code nor weaken a
safety limit apply (:func:`untrusted_part`); the rest is ignored and named in
:meth:`Config.trust_notice`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import time as dtime
from pathlib import Path
from typing import Any

import tomli_w

from mullui.errors import ConfigError, MulluiError
from mullui.files import atomic_write
from mullui.placeholders import expand_argv

BUILTIN_PROFILES = ("claude", "codex", "aider", "gemini", "opencode", "shell")
#: ``[collisions] guard`` (and ``[profiles.X] guard``, ``spawn --guard``): what happens when
#: an agent is about to edit a file another unmerged agent has changed (mullui.guard).
GUARD_MODES = ("off", "warn", "ask", "block")

# ---- the schema ----------------------------------------------------------------------
# A checker returns None when the value is fine, else the phrase after "must be".
Check = Callable[[Any], str | None]


def _is(kind: type | tuple[type, ...], phrase: str) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            return phrase
        return None if isinstance(v, kind) else phrase

    return check


def _positive_int(v: Any) -> str | None:
    return (
        None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "a positive integer"
    )


def _nonneg_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "an integer >= 0"


def _nonneg_number(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    return None if ok else "a number >= 0"


#: The longest duration a key may give: ten years (timers, timedelta and tmux's own
#: options all hold it; 1e20 seconds would overflow each of them).
MAX_SECONDS = 10 * 365 * 24 * 3600


def _seconds(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SECONDS
    return None if ok else f"a whole number of seconds from 1 to {MAX_SECONDS} (ten years)"


def _seconds_float(v: Any) -> str | None:
    return _nonneg_number(v) or (None if v <= MAX_SECONDS else f"at most {MAX_SECONDS} (ten years)")


def _milliseconds(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SECONDS * 1000
    return None if ok else f"a whole number of milliseconds from 0 to {MAX_SECONDS * 1000}"


def _str_list(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else "a list of strings"


def _nonempty_str_list(v: Any) -> str | None:
    return _str_list(v) or (None if v else "a non-empty list of strings")


def _str_table(v: Any) -> str | None:
    ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    return None if ok else "a table of strings"


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _env_table(v: Any) -> str | None:
    problem = _str_table(v)
    if problem:
        return problem
    bad = next((k for k in v if not _ENV_NAME.fullmatch(k)), None)
    if bad is not None:
        return f"a table of environment variables ({json.dumps(bad)} is not a variable name)"
    return None


# ---- quiet hours (the notifier uses this parser too) -----------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily local-time window with no popups; it may wrap past midnight."""

    start: dtime
    end: dtime

    def contains(self, t: dtime) -> bool:
        t = t.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


_QUIET_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(text: str) -> QuietHours:
    """Parse ``"22:00-07:00"`` (local time; may wrap past midnight)."""
    m = _QUIET_RE.match(text)
    hint = f"notify.quiet_hours: expected 'HH:MM-HH:MM' such as '22:00-07:00', got {text!r}"
    if not m:
        raise ConfigError(hint)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ConfigError(hint)
    start, end = dtime(h1, m1), dtime(h2, m2)
    if start == end:
        raise ConfigError(
            f"notify.quiet_hours: start and end are equal in {text!r}; "
            "remove the key to disable quiet hours"
        )
    return QuietHours(start, end)


def _quiet_hours(v: Any) -> str | None:
    if not isinstance(v, str):
        return 'a time range like "22:00-07:00"'
    # The notifier's own parser, so config load and notify time can never disagree
    # ("25:00-07:00" matched the old regex and only failed once watch started).
    try:
        parse_quiet_hours(v)
    except ConfigError:
        return 'a time range like "22:00-07:00" (hours 0-23, minutes 0-59, start != end)'
    return None


def _notify_mode(v: Any) -> str | None:
    return None if v in ("desktop", "terminal", "none") else 'one of "desktop", "terminal", "none"'


def _guard_mode(v: Any) -> str | None:
    ok = v in GUARD_MODES
    return None if ok else 'one of "off", "warn", "ask", "block"'


_str = _is(str, "a string")
_bool = _is(bool, "true or false")

LIMITS: dict[str, Check] = {
    "max_running": _positive_int,
    "max_cost_usd": _nonneg_number,
    "max_unreviewed": _nonneg_int,
    "stall_after_s": _seconds,
    "silence_after_s": _seconds,
    "history_after_s": _seconds,
    "auto_resume": _bool,
}
PROFILE: dict[str, Check] = {
    "command": _nonempty_str_list,
    "args": _str_list,
    "env": _env_table,
    "model": _str,
    "silence_after_s": _seconds,
    "resume": _str_list,
    "resume_prompt": _str,
    "hooks": _bool,
    "guard": _guard_mode,
}
HOST: dict[str, Check] = {
    "ssh": _str,
    "repo": _str,
    "max_running": _positive_int,
    "env": _env_table,
    "ssh_options": _str_list,
    "mullui": _str_list,
}


def _notify_states(v: Any) -> str | None:
    ok = isinstance(v, list) and all(x in ("blocked", "done", "failed") for x in v)
    return None if ok else 'a list drawn from "blocked", "done", "failed"'


NOTIFY: dict[str, Check] = {
    "mode": _notify_mode,
    "coalesce_ms": _milliseconds,
    "quiet_hours": _quiet_hours,
    # NotifyConfig takes seconds as a float: `escalate_after_s = 90.5` is fine.
    "escalate_after_s": _seconds_float,
    "attach_command": _nonempty_str_list,
    "states": _notify_states,
    "popup_when_tui_focused": _bool,
}
PRICE: dict[str, Check] = {
    "input": _nonneg_number,
    "output": _nonneg_number,
    "cache_read": _nonneg_number,
    "cache_write": _nonneg_number,
}
STEP: dict[str, Check] = {"agent": _str, "task": _str, "name": _str}
WATCH: dict[str, Check] = {"on_quit": _bool}
COLLISIONS: dict[str, Check] = {
    "interval_s": _seconds,
    "notify": _bool,
    "guard": _guard_mode,
}
TOP: dict[str, Check] = {"default_agent": _str, "theme": _str, "resume_prompt": _str}
#: Placeholders each command-valued key fills in (in shell text: "$MULLUI_..." references).
SHELL_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "command": ("task", "id", "worktree", "branch"),
    "attach_command": ("id", "name", "tmux_target", "socket"),
}
SECTIONS = ("limits", "profiles", "hosts", "chains", "notify", "prices", "watch", "collisions")


# ---- the result ----------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    max_running: int = 8
    max_cost_usd: float = 10.0
    max_unreviewed: int = 0  # 0 = no limit
    stall_after_s: int = 1800
    silence_after_s: int = 60
    #: a finished agent (done, failed, stopped) left alone this long moves to the history
    #: (``ls --all``, ``report``); merged and removed ones go at once (mullui.ledger)
    history_after_s: int = 14 * 86400
    auto_resume: bool = False  # resume interrupted agents when a supervisor starts


@dataclass(frozen=True)
class Host:
    name: str
    ssh: str
    repo: str
    max_running: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    ssh_options: tuple[str, ...] = ()
    mullui: tuple[str, ...] = ("mullui",)


@dataclass(frozen=True)
class ChainStep:
    agent: str
    task: str
    name: str | None = None


@dataclass(frozen=True)
class Config:
    default_agent: str = "claude"
    theme: str | None = None
    resume_prompt: str | None = None  # what a resumed agent receives (mullui resume)
    limits: Limits = field(default_factory=Limits)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    chains: dict[str, tuple[ChainStep, ...]] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    watch_on_quit: bool = True
    collisions_interval_s: int = 5
    collisions_notify: bool = True
    collisions_guard: str = "warn"  # off | warn | ask | block (mullui.guard)
    sources: tuple[Path, ...] = ()
    #: the repository file whose keys were ignored for want of trust, and those keys
    untrusted: Path | None = None
    ignored: tuple[str, ...] = ()

    def profile_names(self) -> list[str]:
        return sorted(set(BUILTIN_PROFILES) | set(self.profiles))

    def trust_notice(self) -> str | None:
        """One line naming what an untrusted repository file tried to set, or None."""
        if self.untrusted is None or not self.ignored:
            return None
        keys = ", ".join(self.ignored)
        return (
            f"ignored {keys} from {self.untrusted}: a repository's file may set these only "
            f"once you trust its content (they can run code or loosen limits); read it, "
            f"then `mullui trust {self.untrusted}`"
        )


# ---- locating keys for messages ---------------------------------------------------------
def _line_of(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """Best-effort line number of ``key`` inside ``[table]`` (or of the table header)."""
    lines = text.splitlines()
    header = ".".join(table)
    current = ""
    header_line = None
    for i, raw in enumerate(lines, 1):
        s = raw.strip()
        m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", s)
        if m:
            current = re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', "").replace("'", "")
            if current == header and header_line is None:
                header_line = i
            continue
        if key is None:
            continue
        km = re.match(r'^["\']?([A-Za-z0-9_\-. ]+?)["\']?\s*=', s)
        if not km:
            continue
        full = km.group(1).strip()
        if current == header and full == key:
            return i
        if current == "" and header and full == f"{header}.{key}":
            return i
        if current and header.startswith(current + ".") is False and current == "" and full == key:
            return i
    if header_line is not None:
        return header_line
    if key is not None and not table:
        for i, raw in enumerate(lines, 1):
            if re.match(rf"^\s*{re.escape(key)}\s*=", raw):
                return i
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _toml_key(name: str) -> str:
    """``name`` as TOML spells it in a table header: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


class _Validator:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def fail(self, table: tuple[str, ...], key: str | None, what: str) -> ConfigError:
        line = _line_of(self.text, table, key)
        where = f"{self.path.name} line {line}" if line else self.path.name
        label = f"[{'.'.join(_toml_key(t) for t in table)}] " if table else ""
        # A quoted key may hold a newline ([profiles."a\nb"]): the message stays one line.
        what = _CONTROL.sub(lambda m: json.dumps(m.group())[1:-1], what)
        return ConfigError(f"{where}: {label}{what} ({self.path})")

    def table(self, data: Any, table: tuple[str, ...], schema: dict[str, Check]) -> None:
        if not isinstance(data, dict):
            raise self.fail(table[:-1], table[-1], f"{table[-1]} must be a table")
        for k, v in data.items():
            if k not in schema:
                known = ", ".join(sorted(schema))
                raise self.fail(table, k, f"unknown key {k!r} (known: {known})")
            problem = schema[k](v)
            if problem:
                raise self.fail(table, k, f"{k} must be {problem}")
            if k in SHELL_PLACEHOLDERS:
                self.shell_placeholders(table, k, v)

    def shell_placeholders(self, table: tuple[str, ...], key: str, argv: list[str]) -> None:
        """A placeholder inside quotes in shell text (``sh -c``, after ``ssh``) could only
        be spliced into it: refused here, at load, rather than when the command runs."""
        try:
            expand_argv(argv, dict.fromkeys(SHELL_PLACEHOLDERS[key], ""), key)
        except MulluiError as e:
            raise self.fail(table, key, e.message) from None

    def no_nul(self, value: Any, table: tuple[str, ...], key: str | None) -> None:
        """No string anywhere - key or value - holds a NUL (TOML allows ``\\u0000``; no
        program argument, environment variable or path can carry one)."""
        if isinstance(value, str):
            if "\x00" in value:
                raise self.fail(table, key, f"{key} must not contain a NUL byte")
        elif isinstance(value, list):
            for item in value:
                self.no_nul(item, table, key)
        elif isinstance(value, dict):
            sub = (*table, key) if key is not None else table
            for k, v in value.items():
                if "\x00" in k:
                    raise self.fail(sub, None, "a key must not contain a NUL byte")
                self.no_nul(v, sub, k)

    def validate(self, data: dict[str, Any]) -> None:
        self.no_nul(data, (), None)
        for k, v in data.items():
            if k in TOP:
                problem = TOP[k](v)
                if problem:
                    raise self.fail((), k, f"{k} must be {problem}")
            elif k not in SECTIONS:
                known = ", ".join([*TOP, *SECTIONS])
                raise self.fail((), k, f"unknown key {k!r} (known: {known})")
        simple = {"limits": LIMITS, "notify": NOTIFY, "watch": WATCH, "collisions": COLLISIONS}
        for sec, schema in simple.items():
            if sec in data:
                self.table(data[sec], (sec,), schema)
        for sec, schema in (("profiles", PROFILE), ("hosts", HOST), ("prices", PRICE)):
            if sec not in data:
                continue
            if not isinstance(data[sec], dict):
                raise self.fail((), sec, f"{sec} must be a table")
            for name, body in data[sec].items():
                self.table(body, (sec, name), schema)
                if sec == "hosts":
                    for req in ("ssh", "repo"):
                        if req not in body:
                            raise self.fail((sec, name), None, f"{req} is required")
                if sec == "profiles" and name not in BUILTIN_PROFILES and "command" not in body:
                    raise self.fail((sec, name), None, "command is required for a custom profile")
        if "chains" in data:
            if not isinstance(data["chains"], dict):
                raise self.fail((), "chains", "chains must be a table")
            for name, body in data["chains"].items():
                t = ("chains", name)
                if not isinstance(body, dict):
                    raise self.fail(("chains",), name, f"{name} must be a table")
                for k in body:
                    if k != "steps":
                        raise self.fail(t, k, f"unknown key {k!r} (known: steps)")
                steps = body.get("steps")
                if not isinstance(steps, list) or not steps:
                    raise self.fail(t, "steps", "steps must be a non-empty list of tables")
                for i, step in enumerate(steps, 1):
                    if not isinstance(step, dict):
                        raise self.fail(t, "steps", f"step {i} must be a table")
                    for k, v in step.items():
                        if k not in STEP:
                            raise self.fail(t, "steps", f"step {i}: unknown key {k!r}")
                        problem = STEP[k](v)
                        if problem:
                            raise self.fail(t, "steps", f"step {i}: {k} must be {problem}")
                    if "task" not in step:
                        raise self.fail(t, "steps", f"step {i}: task is required")


def _read_text(path: Path) -> str | None:
    """A config file's text; None when there is none."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from e


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        short = re.sub(r"\s*\(at line.*\)", "", msg)
        where = f"{path.name} line {m.group(1)}" if m else path.name
        raise ConfigError(f"{where}: TOML syntax error: {short} ({path})") from None
    _Validator(path, text).validate(data)
    return data


def read_toml(path: Path) -> dict[str, Any]:
    """Parse and validate one config file; a missing file is empty."""
    text = _read_text(path)
    return {} if text is None else _parse(path, text)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load(config_file: Path, repo: Path | None = None, trust_file: Path | None = None) -> Config:
    """The effective config: ``config_file`` merged with ``repo/.mullui.toml``.

    The repository file applies whole only when ``trust_file`` records its exact
    content; otherwise only its :func:`untrusted_part` does.
    """
    data = read_toml(config_file)
    sources = [config_file] if data else []
    untrusted: Path | None = None
    ignored: list[str] = []
    if repo is not None:
        local = repo / ".mullui.toml"
        text = _read_text(local)
        extra = _parse(local, text) if text is not None else {}
        if extra:
            sources.append(local)
            if text is None or not is_trusted(trust_file, local, text):
                extra, ignored = untrusted_part(data, extra)
                if ignored:
                    untrusted = local
        data = _merge(data, extra)
    cfg = build(data, tuple(sources))
    return replace(cfg, untrusted=untrusted, ignored=tuple(ignored)) if ignored else cfg


# ---- what a repository may set without trust ---------------------------------------------
#: Profiles whose task is a prompt, never a command line: an untrusted file may name them
#: as ``default_agent`` or in a chain's steps (``shell`` and custom profiles run the task).
PROMPT_AGENTS = ("claude", "codex", "aider", "gemini", "opencode")
#: Limits a repository may only tighten without trust (raising them spends more).
_CAPS = ("max_running", "max_cost_usd")


def untrusted_part(user: dict[str, Any], repo: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The part of a validated, untrusted ``repo`` table that cannot run code or weaken a
    safety limit (given the ``user``'s own table), and the dotted keys left out.

    Kept: ``theme``; ``default_agent`` naming a prompt agent; ``[limits]`` (caps only
    lowered); ``[notify]`` but ``attach_command``; ``[watch]``; ``[collisions]`` (its
    ``guard`` only made stricter); chains
    whose steps all run prompt agents; a profile's ``silence_after_s``.  Left out: every
    other profile key (command, args, env, model, resume, hooks), ``[hosts]`` (ssh
    options run commands), ``[prices]`` (they decide the budget), ``attach_command``.
    """
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    user_limits = user.get("limits", {})
    defaults = Limits()
    user_profiles = user.get("profiles", {})

    def prompt_agent(name: Any) -> bool:
        """A built-in prompt agent the user has not given a command of their own (which
        might run its task as shell text)."""
        return name in PROMPT_AGENTS and "command" not in user_profiles.get(name, {})

    for key, value in repo.items():
        if key == "theme" or key == "watch":
            kept[key] = value
        elif key == "collisions":
            # The collision guard may be made stricter, not switched down.
            mine = user.get("collisions", {}).get("guard", Config.collisions_guard)
            guard = value.get("guard", mine)
            if GUARD_MODES.index(guard) < GUARD_MODES.index(mine):
                ignored.append("collisions.guard")
                value = {k: v for k, v in value.items() if k != "guard"}
            kept[key] = value
        elif key == "default_agent":
            if prompt_agent(value):
                kept[key] = value
            else:
                ignored.append(key)
        elif key == "limits":
            table: dict[str, Any] = {}
            for k, v in value.items():
                mine = user_limits.get(k, getattr(defaults, k))
                looser = (
                    (k in _CAPS and v > mine)
                    or (k == "max_unreviewed" and mine and (v == 0 or v > mine))
                    or (k == "auto_resume" and v and not mine)  # it would spend on its own
                )
                if looser:
                    ignored.append(f"limits.{k}")
                else:
                    table[k] = v
            kept[key] = table
        elif key == "notify":
            kept[key] = {k: v for k, v in value.items() if k != "attach_command"}
            if "attach_command" in value:
                ignored.append("notify.attach_command")
        elif key == "chains":
            default = repo.get("default_agent")
            if not prompt_agent(default):
                default = user.get("default_agent", "claude")
            chains: dict[str, Any] = {}
            for name, body in value.items():
                if all(prompt_agent(st.get("agent") or default) for st in body["steps"]):
                    chains[name] = body
                else:
                    ignored.append(f"chains.{_toml_key(name)}")
            kept[key] = chains
        elif key == "profiles":
            known = set(BUILTIN_PROFILES) | set(user_profiles)
            profiles: dict[str, Any] = {}
            for name, body in value.items():
                for k in body:
                    if k == "silence_after_s" and name in known:
                        profiles.setdefault(name, {})[k] = body[k]
                    else:
                        ignored.append(f"profiles.{_toml_key(name)}.{k}")
            kept[key] = profiles
        else:  # hosts, prices, and anything a later schema adds: trust first
            if isinstance(value, dict) and value:
                ignored.extend(f"{key}.{_toml_key(n)}" for n in value)
            else:
                ignored.append(key)
    return kept, ignored


# ---- trust: a sha256 of each trusted file's content, in the user's state ---------------------
def content_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _trusted(trust_file: Path) -> dict[str, str]:
    try:
        data = json.loads(trust_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or torn: nothing is trusted, which is the safe reading
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def is_trusted(trust_file: Path | None, path: Path, text: str) -> bool:
    """Whether the user trusted exactly this ``text`` as the content of ``path``."""
    if trust_file is None:
        return False
    return _trusted(trust_file).get(str(path.absolute())) == content_digest(text)


def _beyond(full: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """What ``full`` sets that ``kept`` (its untrusted part) does not."""
    out: dict[str, Any] = {}
    for k, v in full.items():
        if k not in kept:
            out[k] = v
        elif isinstance(v, dict) and isinstance(kept[k], dict):
            sub = _beyond(v, kept[k])
            if sub:
                out[k] = sub
        elif v != kept[k]:
            out[k] = v
    return out


def trust(trust_file: Path, path: Path) -> tuple[str, list[str], str]:
    """Record ``path``'s current content as trusted.  Returns its digest, the keys that
    now apply (those an untrusted copy would ignore) and them with their values (TOML),
    for the user to see what was trusted."""
    path = path.absolute()
    text = _read_text(path)
    if text is None:
        raise ConfigError(f"no config file {path}: give a repository or its .mullui.toml")
    data = _parse(path, text)  # an invalid file is refused, not trusted
    kept, keys = untrusted_part({}, data)
    table = _trusted(trust_file)
    digest = content_digest(text)
    table[str(path)] = digest
    trust_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(trust_file, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode())
    return digest, keys, dumps(_beyond(data, kept))


def revoke(trust_file: Path, path: Path) -> bool:
    """Forget ``path``'s trust; False when it was not trusted."""
    table = _trusted(trust_file)
    if table.pop(str(path.absolute()), None) is None:
        return False
    atomic_write(trust_file, (json.dumps(table, indent=1, sort_keys=True) + "\n").encode())
    return True


def build(data: dict[str, Any], sources: tuple[Path, ...] = ()) -> Config:
    lim = data.get("limits", {})
    hosts = {
        n: Host(
            name=n,
            ssh=h["ssh"],
            repo=h["repo"],
            max_running=h.get("max_running"),
            env=dict(h.get("env", {})),
            ssh_options=tuple(h.get("ssh_options", ())),
            mullui=tuple(h.get("mullui", ("mullui",))),
        )
        for n, h in data.get("hosts", {}).items()
    }
    chains = {
        n: tuple(ChainStep(s.get("agent", ""), s["task"], s.get("name")) for s in c["steps"])
        for n, c in data.get("chains", {}).items()
    }
    watch = data.get("watch", {})
    col = data.get("collisions", {})
    return Config(
        default_agent=data.get("default_agent", "claude"),
        theme=data.get("theme"),
        limits=Limits(
            max_running=lim.get("max_running", 8),
            max_cost_usd=float(lim.get("max_cost_usd", 10.0)),
            max_unreviewed=lim.get("max_unreviewed", 0),
            stall_after_s=lim.get("stall_after_s", 1800),
            silence_after_s=lim.get("silence_after_s", 60),
            history_after_s=lim.get("history_after_s", 14 * 86400),
            auto_resume=bool(lim.get("auto_resume", False)),
        ),
        resume_prompt=data.get("resume_prompt"),
        profiles={k: dict(v) for k, v in data.get("profiles", {}).items()},
        hosts=hosts,
        chains=chains,
        notify=dict(data.get("notify", {})),
        prices={
            k: {kk: float(vv) for kk, vv in v.items()} for k, v in data.get("prices", {}).items()
        },
        watch_on_quit=watch.get("on_quit", True),
        collisions_interval_s=col.get("interval_s", 5),
        collisions_notify=col.get("notify", True),
        collisions_guard=col.get("guard", "warn"),
        sources=sources,
    )


def dumps(data: dict[str, Any]) -> str:
    """TOML text for ``data`` (tomli-w), for writing config the user can edit."""
    return tomli_w.dumps(data)
