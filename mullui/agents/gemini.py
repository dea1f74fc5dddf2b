"""``gemini``: Google's Gemini CLI, watched through its settings hooks.

Wiring (verified with Gemini CLI 0.61.0, see docs/agents.md): Gemini CLI merges four
settings layers - system defaults, user (``~/.gemini/settings.json``), project
(``.gemini/settings.json``, only in a trusted folder), system overrides - and
*concatenates* their ``hooks``.  The two system layers can be moved with
``GEMINI_CLI_SYSTEM_DEFAULTS_PATH`` / ``..._SETTINGS_PATH``, but 0.61.0 skips such a file
unless it and every folder above it are owned by root and not group/world writable, so
they are out of reach of a normal user.  What is left is the user layer, reached through
``GEMINI_CLI_HOME`` (the folder that holds ``.gemini``): ``prepare`` builds a private home
under ``<profile_dir>/gemini-home`` whose ``.gemini/settings.json`` is the user's own
settings plus mullui's hooks, and whose every other entry (credentials, trusted folders,
sessions under ``tmp/``, extensions, ``GEMINI.md``, ...) is a symlink to the user's own
``~/.gemini``, so the CLI reads and writes those where it always does.  The user's
``settings.json`` is read, never written.  A user who turned hooks off
(``hooksConfig.enabled: false``) keeps them off: mullui then sees no hook events.

Every hook runs ``<hook argv> EVENT`` with the JSON payload on stdin and prints nothing
(the CLI parses a hook's stdout as JSON; empty stdout is no decision).  Hooks block the
agent while they run, so only events that carry information are registered, and
``BeforeTool`` only for the question tool (``matcher``).

Signals:

==================  ==========================================================
BeforeAgent         working (a prompt was submitted)
BeforeTool          blocked: ``ask_user`` asks the human a question
AfterTool           working (e.g. the human allowed the tool)
Notification        blocked for ``ToolPermission`` (fires before every
                    confirmation dialog), with its ``message``
AfterAgent          done, with ``prompt_response``; usage from the transcript
SessionStart        meta (session id, transcript)
SessionEnd          exit 0 when the user quit (``exit``, ``logout``,
                    ``prompt_input_exit``)
==================  ==========================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mullui.agents.base import (
    Dialog,
    Event,
    LaunchContext,
    Profile,
    answer_argv,
    hook_command,
    meta_events,
    model_and_args,
    write_file,
)
from mullui.errors import MulluiError
from mullui.guard import GEMINI_EDIT_TOOLS

HOME_ENV = "GEMINI_CLI_HOME"
PRIVATE_HOME = "gemini-home"
TRUST_ENV = "GEMINI_CLI_TRUST_WORKSPACE"
TRUSTED_FOLDERS_ENV = "GEMINI_CLI_TRUSTED_FOLDERS_PATH"

#: (event, matcher) pairs mullui registers: only events that carry information, since
#: every hook blocks the agent while it runs.
HOOKS: tuple[tuple[str, str | None], ...] = (
    ("SessionStart", None),
    ("BeforeAgent", None),
    # ask_user: a question to the human; the file-writing tools: the collision guard
    # answers them (mullui.guard).
    ("BeforeTool", "ask_user|" + "|".join(GEMINI_EDIT_TOOLS)),
    ("AfterTool", None),
    ("Notification", "ToolPermission"),
    ("AfterAgent", None),
    ("SessionEnd", None),
)
HOOK_EVENTS = tuple(event for event, _ in HOOKS)

#: Gemini CLI hook timeouts are in milliseconds.
HOOK_TIMEOUT_MS = 10_000

#: ``Notification`` types that mean "waiting on the human".
BLOCKING_NOTIFICATIONS = ("ToolPermission",)

#: ``SessionEnd`` reasons that mean the process is going away because the user quit.
QUIT_REASONS = ("exit", "logout", "prompt_input_exit")

#: Tools whose call is a question to the human.
QUESTION_TOOLS = ("ask_user",)

MAX_SUMMARY = 300


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user_gemini_dir(env: dict[str, str] | None = None) -> Path:
    """The user's own ``.gemini`` folder (``$GEMINI_CLI_HOME/.gemini`` or ``~/.gemini``)."""
    environ = env if env is not None else dict(os.environ)
    home = environ.get(HOME_ENV) or environ.get("HOME") or str(Path.home())
    return Path(home) / ".gemini"


def strip_json_comments(text: str) -> str:
    """``settings.json`` may carry ``//`` and ``/* */`` comments (the CLI strips them)."""
    out: list[str] = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _state(state: str, cause: str, **extra: Any) -> Event:
    ev: Event = {"kind": "state", "state": state, "cause": cause}
    ev.update(extra)
    return ev


#: Gemini CLI 0.61.0's tool confirmation ("Allow execution of [Shell]? 1. Allow once /
#: 2. Allow for this session / 3. No, suggest changes (esc)"): like Claude Code's, a typed
#: ``n`` does nothing there and Enter picks the highlighted "1. Allow once" (measured:
#: ``n`` + Enter ran the command).  The collision guard's ``ask`` opens it too.
GEMINI_DIALOG = Dialog(
    causes=("hook:Notification:ToolPermission", "collision:"),
    marker="suggest changes (esc)",
    allow=("1",),
    deny=("Escape",),
    options=("1", "2", "3"),
    denying=("3",),
)


class GeminiProfile(Profile):
    name = "gemini"
    has_hooks = True
    reports_blocked = True
    guard_event = "BeforeTool"
    dialog = GEMINI_DIALOG
    #: like Codex, an Enter right after typed text is taken as part of a paste
    enter_delay_s = 0.5

    def __init__(self, binary: str = "gemini") -> None:
        self.binary = binary

    # ---- launching -----------------------------------------------------------------
    def private_home(self, ctx: LaunchContext) -> Path:
        return ctx.profile_dir / PRIVATE_HOME

    def settings(self, ctx: LaunchContext, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """``base`` (the user's settings) plus one command hook per event."""
        doc: dict[str, Any] = json.loads(json.dumps(base or {}))  # deep copy
        hooks = doc.get("hooks")
        hooks = dict(hooks) if isinstance(hooks, dict) else {}
        for event, matcher in HOOKS:
            # Gemini CLI runs ``command`` through a shell; hook_command keeps each argv
            # element one word.
            # BeforeTool is the one event the CLI waits on that may get an answer (the
            # collision guard, for write_file / replace): the answer path.
            argv = answer_argv(ctx) if event == "BeforeTool" else ctx.hook_argv
            command = hook_command(argv, event)
            entry: dict[str, Any] = {
                "hooks": [
                    {
                        "name": f"mullui-{event}",
                        "type": "command",
                        "command": command,
                        "timeout": HOOK_TIMEOUT_MS,
                    }
                ]
            }
            if matcher:
                entry = {"matcher": matcher, **entry}
            existing = hooks.get(event)
            hooks[event] = [*existing, entry] if isinstance(existing, list) else [entry]
        doc["hooks"] = hooks
        return doc

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        environ = {**os.environ, **ctx.env}
        user_dir = user_gemini_dir(environ)
        source = user_dir / "settings.json"
        base: dict[str, Any] = {}
        if source.is_file():
            try:
                loaded = json.loads(strip_json_comments(source.read_text()) or "{}")
            except (OSError, ValueError) as e:
                # Dropping the user's settings silently would change the agent's
                # behaviour behind their back.
                raise MulluiError(
                    f"cannot read Gemini CLI settings {source} ({e}); fix the file "
                    "(gemini itself would refuse it too)"
                ) from e
            if isinstance(loaded, dict):
                base = loaded
        home = self.private_home(ctx)
        ours = home / ".gemini"
        ours.mkdir(parents=True, exist_ok=True, mode=0o700)
        _link_entries(user_dir, ours, skip=("settings.json",))
        user_home = environ.get("HOME")
        if user_home and (Path(user_home) / ".env").exists():
            _link(Path(user_home) / ".env", home / ".env")
        write_file(ours / "settings.json", json.dumps(self.settings(ctx, base), indent=2) + "\n")
        env = {HOME_ENV: str(home)}
        if TRUSTED_FOLDERS_ENV not in environ:
            # Trust is read where the user keeps it, not from the private home.
            env[TRUSTED_FOLDERS_ENV] = str(user_dir / "trustedFolders.json")
        if TRUST_ENV not in environ and repo_is_trusted(ctx.repo, environ):
            # The user trusts the repository: its worktree is the same project.
            env[TRUST_ENV] = "true"
        return env

    def command(self, ctx: LaunchContext) -> list[str]:
        # ``--prompt-interactive`` runs the task and stays in the chat (a bare positional
        # prompt is one-shot).  yargs would read a value starting with "-" as an option;
        # the "--opt=value" form keeps it the value.
        if ctx.task.startswith("-"):
            prompt = [f"--prompt-interactive={ctx.task}"]
        else:
            prompt = ["--prompt-interactive", ctx.task]
        return [self.binary, "--session-id", ctx.session_id, *model_and_args(ctx), *prompt]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``gemini --resume <session id>`` continues the pinned session (0.61.0); the
        prompt goes in with ``--prompt-interactive`` (the chat stays open)."""
        argv = [self.binary, "--resume", ctx.session_id, *model_and_args(ctx)]
        if prompt:
            argv.append(f"--prompt-interactive={prompt}")
        return argv

    # ---- watching ------------------------------------------------------------------
    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        out: list[Event] = meta_events(payload)
        out.extend(self._state_events(event, payload))
        if event == "AfterAgent":
            usage = transcript_usage(payload.get("transcript_path"))
            if usage is not None:
                out.append(usage)
        if not any(e["kind"] in ("state", "exit") for e in out):
            out.append({"kind": "activity", "cause": f"hook:{event}"})
        return out

    def _state_events(self, event: str, p: dict[str, Any]) -> list[Event]:
        cause = f"hook:{event}"
        if event == "BeforeTool":
            tool = str(p.get("tool_name") or "")
            if tool in QUESTION_TOOLS:
                return [_state("blocked", cause, question=_question(tool, p.get("tool_input")))]
            if tool in GEMINI_EDIT_TOOLS:
                return []  # a sign of life: the collision guard answers it (see claude.py)
            return [_state("working", cause)]
        if event in ("BeforeAgent", "AfterTool"):
            return [_state("working", cause)]
        if event == "Notification":
            kind = str(p.get("notification_type") or "")
            if kind not in BLOCKING_NOTIFICATIONS:
                return []
            return [
                _state("blocked", f"hook:Notification:{kind}", question=_permission_question(p))
            ]
        if event == "AfterAgent":
            msg = p.get("prompt_response")
            return [_state("done", cause, message=msg if isinstance(msg, str) else None)]
        if event == "SessionEnd":
            reason = str(p.get("reason") or "other")
            if reason in QUIT_REASONS:
                return [{"kind": "exit", "exit_code": 0, "cause": f"hook:SessionEnd:{reason}"}]
            return []
        return []


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        if link.is_dir() and not link.is_symlink():
            return  # made by an earlier run of the CLI; leave its content alone
        link.unlink()
    link.symlink_to(target)


def _link_entries(user_dir: Path, ours: Path, skip: tuple[str, ...]) -> None:
    """Symlink every entry of the user's ``.gemini`` into ours (except ``skip``)."""
    if not user_dir.is_dir():
        return
    for entry in user_dir.iterdir():
        if entry.name not in skip:
            _link(entry.absolute(), ours / entry.name)


def repo_is_trusted(repo: Path, environ: dict[str, str]) -> bool:
    """Whether the user's ``trustedFolders.json`` trusts ``repo`` (the folder or a parent
    marked ``TRUST_FOLDER``, or a child of a folder marked ``TRUST_PARENT``'s parent), as
    the CLI itself decides for a folder.  Read only."""
    path = Path(
        environ.get(TRUSTED_FOLDERS_ENV) or user_gemini_dir(environ) / "trustedFolders.json"
    )
    try:
        rules = json.loads(strip_json_comments(path.read_text()) or "{}")
    except (OSError, ValueError):
        return False
    if not isinstance(rules, dict):
        return False
    target = repo.resolve()
    for folder, level in rules.items():
        if not isinstance(folder, str) or level not in ("TRUST_FOLDER", "TRUST_PARENT"):
            continue
        root = Path(folder).expanduser().resolve()
        if level == "TRUST_PARENT":
            root = root.parent
        if target == root or root in target.parents:
            return True
    return False


def transcript_usage(path: Any) -> Event | None:
    """Token totals of a Gemini CLI session file: every ``gemini`` message carries
    ``tokens: {input, output, cached, thoughts, tool, total}``.  0.61.0 writes JSON lines
    (``tmp/<project>/chats/session-*.jsonl``; a message is written again, same ``id``,
    as it grows, and ``{"$set": {"messages": [...]}}`` lines replace the list), older
    versions one JSON document (``{"messages": [...]}``).  Each message id counts once.
    Gemini CLI reports no cost."""
    if not isinstance(path, str) or not path:
        return None
    p = Path(path)
    try:
        if not p.is_file():
            return None
        text = p.read_text()
    except OSError:
        return None
    records: list[Any] = []
    try:
        records = [json.loads(text)]
    except ValueError:
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
    by_id: dict[str, dict[str, Any]] = {}
    for rec in records:
        if not isinstance(rec, dict):
            continue
        nested = rec.get("messages") or (rec.get("$set") or {}).get("messages")
        for m in nested if isinstance(nested, list) else [rec]:
            if isinstance(m, dict) and m.get("type") == "gemini" and isinstance(m.get("id"), str):
                tokens = m.get("tokens")
                if isinstance(tokens, dict):
                    by_id[m["id"]] = tokens

    def n(t: dict[str, Any], key: str) -> int:
        v = t.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    tin = sum(n(t, "input") for t in by_id.values())
    tout = sum(n(t, "output") + n(t, "thoughts") for t in by_id.values())
    if not tin and not tout:
        return None
    return {"kind": "usage", "tokens_in": tin, "tokens_out": tout, "cost_usd": 0.0}


def _permission_question(p: dict[str, Any]) -> str | None:
    """One line the human can decide on, from the confirmation's ``details`` (0.61.0:
    ``type`` exec / edit / mcp / info with ``command``, ``fileName``, ``toolName``...),
    else the notification's ``message``."""
    d = p.get("details") if isinstance(p.get("details"), dict) else {}
    assert isinstance(d, dict)

    def s(key: str) -> str:
        v = d.get(key)
        return v if isinstance(v, str) else ""

    kind = s("type")
    if kind == "exec" and s("command"):
        return _clip(f"Shell: {s('command')}")
    if kind == "edit" and (s("fileName") or s("filePath")):
        return _clip(f"Edit: {s('fileName') or s('filePath')}")
    if kind == "mcp" and s("toolName"):
        return _clip(f"MCP: {s('serverName')} {s('toolName')}".replace("  ", " "))
    message = p.get("message")
    return _clip(message) if isinstance(message, str) and message else None


def _question(tool: str, tool_input: Any) -> str:
    inp = tool_input if isinstance(tool_input, dict) else {}
    for key in ("question", "prompt", "message"):
        v = inp.get(key)
        if isinstance(v, str) and v:
            return _clip(f"{tool}: {v}")
    qs = inp.get("questions")
    if isinstance(qs, list) and qs and isinstance(qs[0], dict):
        v = qs[0].get("question")
        if isinstance(v, str) and v:
            return _clip(f"{tool}: {v}")
    return _clip(f"{tool}: {json.dumps(inp, ensure_ascii=False, sort_keys=True)}" if inp else tool)
