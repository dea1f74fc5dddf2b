"""``gemini``: Google's Gemini CLI, watched through its settings hooks.

Wiring: Gemini CLI reads settings from four layers - system defaults, user
(``~/.gemini/settings.json``), project (``.gemini/settings.json``), system overrides - and
*concatenates* the ``hooks`` of all of them.  The lowest layer's path can be moved with
``GEMINI_CLI_SYSTEM_DEFAULTS_PATH``.  ``prepare`` writes a copy of the machine's system
defaults (if any) with mullui's hooks added to ``<profile_dir>/gemini-system-defaults.json``
and points that variable at it: the user's and the project's settings are neither read
nor written, and their own hooks keep running.  Being the *lowest* layer, mullui's
``hooksConfig.enabled = true`` yields to a user who turned hooks off (then only tmux
signals remain; see docs/agents.md).

Every hook runs ``<hook argv> EVENT`` with the JSON payload on stdin (fields from the
Gemini CLI hooks reference, ``docs/hooks/reference.md``) and prints nothing, so Gemini
never reads a decision from it.

Signals:

==================  ==========================================================
BeforeAgent         working (a prompt was submitted)
BeforeTool          working
AfterTool           working
Notification        blocked for ``ToolPermission`` (the approval dialog), with
                    its ``message``
AfterAgent          done, with ``prompt_response``
SessionEnd          exit 0 when the user quit (``exit``, ``logout``,
                    ``prompt_input_exit``)
==================  ==========================================================
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from mullui.agents.base import (
    Event,
    LaunchContext,
    Profile,
    meta_events,
    model_and_args,
    write_file,
)
from mullui.errors import MulluiError

DEFAULTS_FILE = "gemini-system-defaults.json"
DEFAULTS_ENV = "GEMINI_CLI_SYSTEM_DEFAULTS_PATH"

HOOK_EVENTS = (
    "SessionStart",
    "BeforeAgent",
    "BeforeTool",
    "AfterTool",
    "Notification",
    "AfterAgent",
    "SessionEnd",
)

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


def system_defaults_path(env: dict[str, str] | None = None) -> Path:
    """Where this machine's Gemini CLI system defaults live (before mullui moves them)."""
    environ = env if env is not None else dict(os.environ)
    if environ.get(DEFAULTS_ENV):
        return Path(environ[DEFAULTS_ENV])
    if sys.platform == "darwin":
        return Path("/Library/Application Support/GeminiCli/system-defaults.json")
    return Path("/etc/gemini-cli/system-defaults.json")


def _state(state: str, cause: str, **extra: Any) -> Event:
    ev: Event = {"kind": "state", "state": state, "cause": cause}
    ev.update(extra)
    return ev


class GeminiProfile(Profile):
    name = "gemini"
    has_hooks = True
    reports_blocked = True

    def __init__(self, binary: str = "gemini") -> None:
        self.binary = binary

    # ---- launching -----------------------------------------------------------------
    def defaults_path(self, ctx: LaunchContext) -> Path:
        return ctx.profile_dir / DEFAULTS_FILE

    def settings(self, ctx: LaunchContext, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """``base`` (the machine's system defaults) plus one command hook per event."""
        doc: dict[str, Any] = json.loads(json.dumps(base or {}))  # deep copy
        hooks = doc.get("hooks")
        if not isinstance(hooks, dict):
            hooks = {}
        for event in HOOK_EVENTS:
            # Gemini CLI runs ``command`` through a shell; shlex.join keeps each argv
            # element one word.
            command = shlex.join([*ctx.hook_argv, event])
            entry = {
                "hooks": [
                    {
                        "name": f"mullui-{event}",
                        "type": "command",
                        "command": command,
                        "timeout": HOOK_TIMEOUT_MS,
                    }
                ]
            }
            existing = hooks.get(event)
            hooks[event] = [*existing, entry] if isinstance(existing, list) else [entry]
        doc["hooks"] = hooks
        config = doc.get("hooksConfig")
        config = dict(config) if isinstance(config, dict) else {}
        config.setdefault("enabled", True)
        doc["hooksConfig"] = config
        return doc

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        source = system_defaults_path({**os.environ, **ctx.env})
        base: dict[str, Any] = {}
        if source.is_file():
            try:
                loaded = json.loads(source.read_text())
            except (OSError, ValueError) as e:
                # Dropping the machine's defaults silently would change the agent's
                # behaviour behind the user's back.
                raise MulluiError(
                    f"cannot read Gemini CLI system defaults {source} ({e}); fix the file or "
                    f"set {DEFAULTS_ENV} to a plain JSON file"
                ) from e
            if isinstance(loaded, dict):
                base = loaded
        ctx.profile_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.defaults_path(ctx)
        write_file(path, json.dumps(self.settings(ctx, base), indent=2) + "\n")
        return {DEFAULTS_ENV: str(path)}

    def command(self, ctx: LaunchContext) -> list[str]:
        # ``--prompt-interactive`` runs the task and stays in the chat (a bare positional
        # prompt is one-shot).  yargs would read a value starting with "-" as an option;
        # the "--opt=value" form keeps it the value.
        if ctx.task.startswith("-"):
            prompt = [f"--prompt-interactive={ctx.task}"]
        else:
            prompt = ["--prompt-interactive", ctx.task]
        return [self.binary, *model_and_args(ctx), *prompt]

    # ---- watching ------------------------------------------------------------------
    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        out: list[Event] = meta_events(payload)
        out.extend(self._state_events(event, payload))
        if not any(e["kind"] in ("state", "exit") for e in out):
            out.append({"kind": "activity", "cause": f"hook:{event}"})
        return out

    def _state_events(self, event: str, p: dict[str, Any]) -> list[Event]:
        cause = f"hook:{event}"
        if event == "BeforeTool":
            tool = str(p.get("tool_name") or "")
            if tool in QUESTION_TOOLS:
                return [_state("blocked", cause, question=_question(tool, p.get("tool_input")))]
            return [_state("working", cause)]
        if event in ("BeforeAgent", "AfterTool"):
            return [_state("working", cause)]
        if event == "Notification":
            kind = str(p.get("notification_type") or "")
            if kind not in BLOCKING_NOTIFICATIONS:
                return []
            message = p.get("message")
            said = _clip(message) if isinstance(message, str) and message else None
            return [_state("blocked", f"hook:Notification:{kind}", question=said)]
        if event == "AfterAgent":
            msg = p.get("prompt_response")
            return [_state("done", cause, message=msg if isinstance(msg, str) else None)]
        if event == "SessionEnd":
            reason = str(p.get("reason") or "other")
            if reason in QUIT_REASONS:
                return [{"kind": "exit", "exit_code": 0, "cause": f"hook:SessionEnd:{reason}"}]
            return []
        return []


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
