"""``codex``: OpenAI Codex CLI, watched through ``notify`` and its own hooks.

Wiring (verified with codex-cli 0.171.0, see docs/agents.md): everything goes through
``-c key=value`` overrides on the command line, so ``~/.codex/config.toml`` is neither read
nor written by mullui.

- ``-c notify=[<hook argv>, "codex-notify"]``: after every turn Codex runs it with a JSON
  payload as the *last argv element* (``type: "agent-turn-complete"``, ``thread-id``,
  ``turn-id``, ``cwd``, ``input-messages``, ``last-assistant-message``; shape pinned by
  ``codex-rs/hooks/src/legacy_notify.rs``).  ``mullui hook`` merges that element into the
  payload.  This needs no trust and works on every Codex since 0.2x.
- ``-c hooks={PermissionRequest=[...], Stop=[...], ...}``: Claude-style command hooks, JSON
  on stdin.  Hooks from the command line are a "session flags" config layer, and Codex
  only runs a non-managed hook whose *trusted hash* is recorded in ``hooks.state``; so
  the same override carries ``state = {"/<session-flags>/config.toml:<event>:0:0" =
  {trusted_hash = "sha256:..."}}``, the hash computed the way Codex computes it
  (:func:`hook_trust_hash`).  Hooks never get ``--dangerously-bypass-hook-trust``: that
  would also run unreviewed hooks a repository brings along.

If a future Codex hashes differently, the hooks silently do not run; ``notify`` still
reports ``done`` and, because ``has_hooks`` is False, tmux silence still catches a
permission prompt (as ``silence:Ns``).  The integration test pins the hash against the
installed CLI.

Signals:

==================  ==========================================================
PermissionRequest   blocked: Codex asks to run a command / reach the network
UserPromptSubmit    working
PostToolUse         working (e.g. the human approved)
Stop                done, with ``last_assistant_message`` + usage
codex-notify        done, with ``last-assistant-message`` (the notify twin of Stop);
                    only for a thread with a session file - Codex also notifies
                    for its ephemeral bookkeeping threads (session title)
==================  ==========================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mullui.agents.base import (
    Dialog,
    Event,
    LaunchContext,
    Profile,
    hook_command,
    model_and_args,
)
from mullui.usage import Price, codex_session_usage

#: Hook events mullui registers (Codex 0.171.0 rejects unknown event names in ``hooks``),
#: each because it carries something (docs/agents.md).  Not PreToolUse: it would only
#: repeat "working" before every tool call (PostToolUse says it after an approval).
HOOK_EVENTS = ("UserPromptSubmit", "PermissionRequest", "PostToolUse", "Stop")

#: Seconds Codex lets one hook run (its default is 600; a hook that hangs must not stall
#: the agent's turn that long).
HOOK_TIMEOUT_S = 10

#: The config-layer path Codex 0.171.0 gives hooks from ``-c`` (``synthetic_layer_path(
#: "<session-flags>/config.toml")`` resolved against ``/``); part of each hook's state key.
SESSION_FLAGS_SOURCE = "/<session-flags>/config.toml"

#: The raw event name ``notify`` uses (the ``mullui hook`` EVENT argument).
NOTIFY_EVENT = "codex-notify"

MAX_SUMMARY = 300


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def toml_str(s: str) -> str:
    """``s`` as a TOML basic string (Codex parses every ``-c`` value as TOML)."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: Any) -> str:
    """An inline TOML value for strings, ints, bools, lists and tables (dicts)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_str(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def hook_event_label(event: str) -> str:
    """``PermissionRequest`` -> ``permission_request`` (Codex's key label)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in event).lstrip("_")


def hook_trust_hash(event: str, command: str, timeout_s: int) -> str:
    """The hash Codex records as a hook's ``trusted_hash``.

    Codex 0.171.0 hashes a normalized identity of the hook (``codex-rs/hooks/src/engine/
    discovery.rs`` ``command_hook_hash``, ``config/src/fingerprint.rs`` ``version_for_toml``):
    ``{"event_name": <label>, "hooks": [<the one handler, normalized>]}`` (no ``matcher``
    key when there is none: it goes through TOML, which drops ``None``), as JSON with
    sorted keys and no whitespace, SHA-256, ``sha256:<hex>``.
    """
    identity = {
        "event_name": hook_event_label(event),
        "hooks": [{"async": False, "command": command, "timeout": timeout_s, "type": "command"}],
    }
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def hooks_override(hook_argv: Iterable[str], timeout_s: int = HOOK_TIMEOUT_S) -> dict[str, Any]:
    """The ``hooks`` table for ``-c hooks=...``: one command hook per event, each trusted."""
    table: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for event in HOOK_EVENTS:
        # Codex runs a hook's command through the shell; hook_command keeps each argv
        # element one word.
        command = hook_command(tuple(hook_argv), event)
        table[event] = [{"hooks": [{"type": "command", "command": command, "timeout": timeout_s}]}]
        key = f"{SESSION_FLAGS_SOURCE}:{hook_event_label(event)}:0:0"
        state[key] = {"trusted_hash": hook_trust_hash(event, command, timeout_s)}
    table["state"] = state
    return table


def _state(state: str, cause: str, **extra: Any) -> Event:
    ev: Event = {"kind": "state", "state": state, "cause": cause}
    ev.update(extra)
    return ev


def summarize_request(tool: str, tool_input: Any) -> str:
    """One line the human can decide on: ``Bash: rm -rf build``."""
    inp = tool_input if isinstance(tool_input, dict) else {}
    command = inp.get("command")
    detail = command if isinstance(command, str) and command else ""
    if not detail:
        desc = inp.get("description")
        detail = desc if isinstance(desc, str) else ""
    if not detail and inp:
        detail = json.dumps(inp, ensure_ascii=False, sort_keys=True)
    tool = tool or "tool"
    return _clip(f"{tool}: {detail}" if detail else tool)


#: Codex 0.171.0's approval dialog ("Would you like to run the following command? 1. Yes,
#: proceed (y) / 2. Yes, and don't ask again ... (p) / 3. No, and tell Codex what to do
#: differently (esc)", footer "Press enter to confirm or esc to cancel"): a typed letter
#: is a shortcut (a text starting with ``y`` or ``p`` would allow it) and Enter picks the
#: highlighted "Yes".  ``y`` allows once; Esc denies ("Conversation interrupted") and the
#: prompt takes the text that follows.
CODEX_DIALOG = Dialog(
    causes=("hook:PermissionRequest",),
    marker="Press enter to confirm or esc to cancel",
    allow=("y",),
    deny=("Escape",),
)


class CodexProfile(Profile):
    name = "codex"
    dialog = CODEX_DIALOG
    #: Codex 0.171.0 takes an Enter that follows typed text within a few ms as part of a
    #: paste (a newline in the composer): the reply would sit there unsent.
    enter_delay_s = 0.5
    # Hooks report done and blocked, but their trust hash is version-sensitive (see the
    # module docstring): keep tmux silence on as the fallback.
    has_hooks = False
    reports_blocked = True

    def __init__(self, prices: Mapping[str, Price] | None = None, binary: str = "codex") -> None:
        #: config price overrides (``usage.prices_from_config``) for the usage events; usage
        #: itself is read by :func:`mullui.usage.codex_session_usage`
        self.prices = dict(prices or {})
        self.binary = binary

    # ---- launching -----------------------------------------------------------------
    def overrides(self, ctx: LaunchContext) -> list[str]:
        """The ``-c`` arguments that wire notify and the hooks to ``mullui hook``."""
        notify = [*ctx.hook_argv, NOTIFY_EVENT]
        argv = ["-c", "notify=" + toml_value(notify)]
        if ctx.options.get("hooks", True) is not False:
            argv += ["-c", "hooks=" + toml_value(hooks_override(ctx.hook_argv))]
        return argv

    def command(self, ctx: LaunchContext) -> list[str]:
        # "--" ends the options: a task that starts with "-" (or names a subcommand such as
        # "exec") stays the prompt.
        return [self.binary, *self.overrides(ctx), *model_and_args(ctx), "--", ctx.task]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``codex resume [-c ...] -- <thread id> [PROMPT]`` (0.171.0) continues the thread
        the agent's hooks and notify reported (``session_id`` / ``thread-id``) from its
        rollout file; None before any was reported or when its rollout is gone."""
        home = ctx.env.get("CODEX_HOME")
        if not ctx.session_id or find_rollout(ctx.session_id, Path(home) if home else None) is None:
            return None
        return [
            self.binary,
            "resume",
            *self.overrides(ctx),
            *model_and_args(ctx),
            "--",
            ctx.session_id,
            *([prompt] if prompt else []),
        ]

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        # Nothing to write: the wiring lives in argv (``-c``), outside every config file.
        return {}

    # ---- watching ------------------------------------------------------------------
    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        if event == NOTIFY_EVENT and _side_thread(payload):
            # Codex 0.171.0 also notifies for its own bookkeeping threads (the session title,
            # generated beside the first turn).  They are ephemeral - no session file - and
            # neither their "turn complete" nor their thread id is the agent's.
            return [{"kind": "activity", "cause": "hook:codex-notify:side-thread"}]
        out: list[Event] = []
        session = payload.get("session_id") or payload.get("thread-id")
        meta: dict[str, Any] = {}
        if isinstance(session, str) and session:
            meta["session_id"] = session
        transcript = payload.get("transcript_path")
        if isinstance(transcript, str) and transcript:
            meta["transcript_path"] = transcript
        if meta:
            out.append({"kind": "meta", **meta})
        out.extend(self._state_events(event, payload))
        if event in ("Stop", NOTIFY_EVENT):
            path = Path(transcript) if isinstance(transcript, str) and transcript else None
            if path is None and isinstance(session, str) and session:
                path = find_rollout(session)
            if path is not None:
                usage = codex_session_usage(path, self.prices)
                if usage.requests:
                    out.append(usage.as_event())
        if not any(e["kind"] in ("state", "exit") for e in out):
            out.append({"kind": "activity", "cause": f"hook:{event}"})
        return out

    def _state_events(self, event: str, p: dict[str, Any]) -> list[Event]:
        cause = f"hook:{event}"
        if event == "PermissionRequest":
            q = summarize_request(str(p.get("tool_name") or ""), p.get("tool_input"))
            return [_state("blocked", cause, question=q)]
        if event in ("UserPromptSubmit", "PreToolUse", "PostToolUse"):
            return [_state("working", cause)]
        if event == "Stop":
            msg = p.get("last_assistant_message")
            return [_state("done", cause, message=msg if isinstance(msg, str) else None)]
        if event == NOTIFY_EVENT:
            if p.get("type") != "agent-turn-complete":
                return []
            msg = p.get("last-assistant-message")
            return [_state("done", cause, message=msg if isinstance(msg, str) else None)]
        return []


def _side_thread(p: dict[str, Any]) -> bool:
    thread = p.get("thread-id")
    return isinstance(thread, str) and bool(thread) and find_rollout(thread) is None


# ---- usage from Codex session files ------------------------------------------------


def codex_home() -> Path:
    """Where Codex keeps sessions: ``$CODEX_HOME`` or ``~/.codex``."""
    env = os.environ.get("CODEX_HOME")
    return Path(env) if env else Path.home() / ".codex"


def find_rollout(thread_id: str, home: Path | None = None) -> Path | None:
    """The session file of ``thread_id``: ``sessions/YYYY/MM/DD/rollout-<ts>-<id>.jsonl``."""
    if not thread_id or "/" in thread_id or "*" in thread_id:
        return None
    root = (home or codex_home()) / "sessions"
    if not root.is_dir():
        return None
    # Newest day directories first: the session a hook reports on is the current one.
    for path in sorted(root.glob(f"*/*/*/rollout-*-{thread_id}.jsonl"), reverse=True):
        return path
    return None
