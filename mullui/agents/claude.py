"""``claude``: Claude Code, watched through its own hooks.

Wiring: ``prepare`` writes one settings file under the agent's private profile dir and the
agent runs ``claude --settings FILE``.  Settings passed that way are *added* to the user's
(``~/.claude/settings.json`` and the project's stay untouched and keep working).  Every
hook runs ``ctx.hook_argv EVENT`` (the fast path, ``fasthook/spool.sh``: no Python) with
the JSON payload on stdin, PreToolUse the answer path (:func:`answer_argv`); the agent id
and token reach it through ``MULLUI_AGENT_ID`` / ``MULLUI_AGENT_TOKEN`` in the window's
environment.

Hooks only *report*: they print nothing and exit 0, so Claude Code never reads a decision
from them (a ``PermissionRequest`` hook that printed a decision would answer the dialog
for the human).

Signals (Claude Code 2.1.197, see docs/agents.md for the payloads and timings):

==================  ==========================================================
PermissionRequest   blocked: the permission dialog just opened (~0.1 s after
                    the model's tool_use; the ``Notification`` about the same
                    dialog comes ~6 s later)
PreToolUse          working (blocked for AskUserQuestion / ExitPlanMode: the
                    tool *is* a question to the human; a sign of life for
                    Edit / Write / MultiEdit / NotebookEdit, which the collision
                    guard answers: see mullui.guard)
PostToolUse(...)    working (e.g. the human granted the permission)
UserPromptSubmit    working
Stop                done, with ``last_assistant_message`` - unless background
                    tasks are still in flight (then just a sign of life)
StopFailure         blocked: the turn ended on an API error the human must fix
Notification        blocked for ``permission_prompt`` (late duplicate),
                    ``idle_prompt``, ``elicitation_dialog``
SessionEnd          exit 0 when the user quit (``prompt_input_exit``,
                    ``logout``); ``clear``/``resume`` keep the process alive
==================  ==========================================================

Every payload's ``session_id`` / ``transcript_path`` also go out as a ``meta`` event, and
Stop / StopFailure / SubagentStop / SessionEnd add a ``usage`` event read from the
transcript (:mod:`mullui.usage`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mullui.agents.base import (
    ALLOW_WORDS,
    DENY_WORDS,
    Dialog,
    Event,
    LaunchContext,
    Profile,
    Reply,
    answer_argv,
    hook_command,
    meta_events,
    model_and_args,
    write_file,
)
from mullui.errors import MulluiError
from mullui.guard import CLAUDE_EDIT_TOOLS
from mullui.usage import Price, claude_session_usage, is_regular_file

SETTINGS_FILE = "claude-settings.json"

#: Hook events mullui registers, each because it carries something (docs/agents.md says
#: what).  Claude Code validates hook names in settings; every one of these exists in
#: 2.1.x (PermissionRequest, StopFailure arrived during 2.0/2.1).  Not registered:
#: SubagentStop (a subagent's end changes nothing; its usage is read at the main Stop),
#: PreCompact and the rest.
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
)

#: Tools whose ``PreToolUse`` mullui needs: the question tools (the agent is blocked on
#: the human) and the file-writing tools the collision guard may answer for.  Every other
#: tool's PreToolUse would only repeat "working" (PostToolUse reports it too).
PRE_TOOL_MATCHER = "AskUserQuestion|ExitPlanMode|Edit|MultiEdit|Write|NotebookEdit"

#: Seconds Claude Code lets one hook run.  Also raises the budget of SessionEnd hooks,
#: which 2.1.197 otherwise kills after 1.5 s (``CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS``)
#: - too short to read a long transcript on a loaded machine.
HOOK_TIMEOUT_S = 10

#: Tools whose call is itself a question to the human: the CLI shows a choice and waits.
QUESTION_TOOLS = ("AskUserQuestion", "ExitPlanMode")

#: SessionEnd reasons that mean the process is going away because the user quit.
QUIT_REASONS = ("prompt_input_exit", "logout")

#: Notification types that mean "waiting on the human".
BLOCKING_NOTIFICATIONS = ("permission_prompt", "idle_prompt", "elicitation_dialog")

USAGE_EVENTS = ("Stop", "StopFailure", "SubagentStop", "SessionEnd")

MAX_SUMMARY = 300


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rel(path: str, cwd: str | None) -> str:
    if cwd and path.startswith(cwd.rstrip("/") + "/"):
        return path[len(cwd.rstrip("/")) + 1 :]
    return path


def summarize_tool(tool: str, tool_input: Any, cwd: str | None = None) -> str:
    """``"<tool>: <what it wants>"`` - one line the human can decide on."""
    inp = tool_input if isinstance(tool_input, dict) else {}

    def s(key: str) -> str:
        v = inp.get(key)
        return v if isinstance(v, str) else ""

    detail = ""
    if tool == "Bash":
        detail = s("command")
    elif tool in ("Edit", "MultiEdit", "Write", "Read", "NotebookEdit"):
        detail = _rel(s("file_path") or s("notebook_path"), cwd)
    elif tool == "WebFetch":
        detail = s("url")
    elif tool == "WebSearch":
        detail = s("query")
    elif tool in ("Glob", "Grep"):
        detail = s("pattern")
    elif tool in ("Task", "Agent"):
        detail = s("description") or s("prompt")
    elif tool == "AskUserQuestion":
        qs = inp.get("questions")
        if isinstance(qs, list) and qs and isinstance(qs[0], dict):
            detail = str(qs[0].get("question") or "")
    elif tool == "ExitPlanMode":
        plan = s("plan").strip()
        detail = "approve the plan" + (f": {plan.splitlines()[0]}" if plan else "")
    if not detail and inp:
        detail = json.dumps(inp, ensure_ascii=False, sort_keys=True)
    return _clip(f"{tool}: {detail}" if detail else tool)


def _state(state: str, event: str, **extra: Any) -> Event:
    ev: Event = {"kind": "state", "state": state, "cause": f"hook:{event}"}
    ev.update(extra)
    return ev


def claude_state_file(env: Mapping[str, str]) -> Path:
    """Where Claude Code keeps its per-user state (onboarding, trusted folders, approved
    API keys): ``~/.claude.json``, or under ``CLAUDE_CONFIG_DIR`` (2.1.197's lookup,
    including the legacy ``<config dir>/.config.json``)."""
    home = Path(env.get("HOME") or Path.home())
    config_dir = env.get("CLAUDE_CONFIG_DIR")
    legacy = Path(config_dir or home / ".claude") / ".config.json"
    if legacy.exists():
        return legacy
    return Path(config_dir or home) / ".claude.json"


def first_run_problem(repo: Path, worktree: Path, env: Mapping[str, str]) -> str | None:
    """Why Claude Code would stop at a first-run screen in ``worktree``, or None.

    Those screens (onboarding, "do you trust this folder?", "use this API key?") come
    *before* any hook runs - Claude Code 2.1.197 runs no settings hooks in an untrusted
    folder - so mullui would see an agent that never says anything.  Better to refuse
    the launch with what to do.  Read-only: the user's file is never written.
    """
    if env.get("CLAUDE_CODE_SANDBOXED"):
        return None  # the CLI skips the trust check in a sandbox
    path = claude_state_file(env)
    setup = f"run `claude` once in {repo} and finish its first-run questions"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return f"Claude Code has never run for this user ({path} is missing): {setup}"
    except (OSError, ValueError) as e:
        return f"cannot read Claude Code's state file {path} ({e}): {setup}"
    if not isinstance(state, dict) or state.get("hasCompletedOnboarding") is not True:
        return f"Claude Code's first-run setup is not finished ({path}): {setup}"
    projects = state.get("projects")
    projects = projects if isinstance(projects, dict) else {}

    def trusted(p: Path) -> bool:
        entry = projects.get(str(p))
        return isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True

    # The CLI trusts the git root (a worktree's main repository) or any ancestor of cwd.
    candidates = [repo.resolve(), *[worktree.resolve(), *worktree.resolve().parents]]
    if not any(trusted(p) for p in candidates):
        return (
            f"Claude Code does not trust {repo} yet, and would wait at its trust dialog "
            f"where no hook can report it: run `claude` in {repo} once and choose "
            f"'Yes, I trust this folder'"
        )
    key = env.get("ANTHROPIC_API_KEY")
    if key:
        answers = state.get("customApiKeyResponses")
        answers = answers if isinstance(answers, dict) else {}
        known = [*answers.get("approved", []), *answers.get("rejected", [])]
        if key[-20:] not in known:
            return (
                "Claude Code would first ask whether to use ANTHROPIC_API_KEY: run `claude` "
                "once with this key set and answer its question"
            )
    return None


def transcript_of(ctx: LaunchContext) -> Path | None:
    """The conversation file of ``ctx.session_id``: the one the hooks reported, else
    ``<config dir>/projects/*/<id>.jsonl`` (2.1.197's layout); None when there is none."""
    if ctx.transcript_path:
        known = Path(ctx.transcript_path)
        return known if known.is_file() else None
    env = {**os.environ, **ctx.env}
    root = Path(env.get("CLAUDE_CONFIG_DIR") or Path(env.get("HOME") or Path.home()) / ".claude")
    if not ctx.session_id or "/" in ctx.session_id or "*" in ctx.session_id:
        return None
    for path in (root / "projects").glob(f"*/{ctx.session_id}.jsonl"):
        return path
    return None


#: Claude Code 2.1.197's permission dialog ("Do you want to proceed? 1. Yes / 2. Yes, and
#: ... / 3. No", footer "Esc to cancel · Tab to amend"): ``y``/``n`` do nothing there and
#: Enter picks the highlighted "1. Yes".  ``1`` allows once (``1``/``2``/``3`` typed alone
#: are pressed as the dialog's own keys); Esc (same as ``3``) denies and
#: leaves the prompt waiting: "Interrupted · What should Claude do instead?", where a typed
#: text goes to the model with the rejected tool call.  The collision guard's ``ask`` opens
#: the same dialog (cause ``collision:PATH``).
CLAUDE_DIALOG = Dialog(
    causes=("hook:PermissionRequest", "hook:Notification:permission_prompt", "collision:"),
    marker="Esc to cancel",
    allow=("1",),
    deny=("Escape",),
    options=("1", "2", "3"),
    denying=("3",),
)


#: One numbered option of a Claude Code dialog as the pane shows it (``❯`` is the cursor).
_OPTION = re.compile(r"^\s*(?:❯\s*)?(\d+)\.\s+(.*?)\s*$")


def dialog_options(screen: str) -> list[tuple[str, str]]:
    """The numbered options ``(key, label)`` of the dialog at the bottom of ``screen``:
    the last run ``1.``, ``2.``, ... (numbered lines above it - a plan's own steps, the
    transcript - are not options)."""
    found: list[tuple[str, str]] = []
    for line in screen.splitlines():
        m = _OPTION.match(line)
        if m is None:
            continue
        key, label = m.groups()
        if key == "1":
            found = [(key, label)]
        elif found and int(key) == len(found) + 1:
            found.append((key, label))
    return found


def _listing(options: list[tuple[str, str]]) -> str:
    return ", ".join(f"{key} {label}" for key, label in options) or "none on its screen"


#: The plan dialog's titles: "Ready to code?" (a plan file was written: its options are
#: read from the screen) and "Exit plan mode?" (no plan file: 1. Yes / 2. No).
PLAN_MARKERS = ("Ready to code?", "Exit plan mode?")


@dataclass(frozen=True)
class PlanDialog(Dialog):
    """Claude Code 2.1.197's plan approval (tool ExitPlanMode), measured::

        Ready to code?  Here is Claude's plan: ...
        ❯ 1. Yes, and use auto mode           (or "Yes, auto-accept edits")
          2. Yes, manually approve edits
          3. Tell Claude what to change       (a text field; Enter sends it)

    Enter picks the highlighted option, *auto mode*: a reply typed as is would approve
    the plan and let Claude edit unasked.  ``y`` picks the approval that keeps the human
    approving each edit ("manually approve edits"; a dialog whose only approval is one
    "Yes" option: that one); ``n`` is Esc: "User rejected Claude's plan", Claude stays in
    plan mode and waits at its prompt; other text goes into "Tell Claude what to change"
    (the model gets it with the rejection and plans again); an option's number alone
    picks that option.
    """

    def shown(self, screen: str) -> bool:
        return any(m in screen for m in PLAN_MARKERS)

    def reply(self, text: str, screen: str = "") -> Reply:
        options = dialog_options(screen)
        word = text.strip().lower()
        feedback = next((k for k, label in options if label.startswith("Tell Claude")), None)
        if word in ALLOW_WORDS:
            return Reply((_approval(options),))
        if word in DENY_WORDS:
            return Reply(self.deny, denies=True)
        if any(word == k for k, _ in options if k != feedback):
            approves = dict(options)[word].lower().startswith("yes")
            return Reply((word,), denies=not approves)
        if feedback is not None:
            return Reply((feedback,), text.strip(), field=feedback)
        return Reply(self.deny, text, denies=True)


def _approval(options: list[tuple[str, str]]) -> str:
    """The key of the approval that keeps the human in control of edits."""
    yes = [(k, label) for k, label in options if label.lower().startswith("yes")]
    manual = [k for k, label in yes if "manually approve" in label.lower()]
    if manual:
        return manual[0]
    if len(yes) == 1:
        return yes[0][0]
    raise MulluiError(
        f"the plan dialog offers no approval that keeps edits asking ({_listing(options)}): "
        "nothing sent; reply with an option's number to pick it"
    )


#: The tab row of an AskUserQuestion with several questions: ``←  ☐ DB  ☒ Lang  ✔ Submit  →``
_TABS = re.compile(r"^\s*←.*✔ Submit", re.MULTILINE)
#: Its last step, once every question has an answer
REVIEW = "Review your answers"


def _review(screen: str) -> str:
    """The answers the review step lists, on one line (``Which database? → SQLite; ...``)."""
    lines = screen.split(REVIEW, 1)[-1].split("Ready to submit", 1)[0].splitlines()
    pairs: list[str] = []
    for line in (x.strip() for x in lines):
        if line.startswith("●"):
            pairs.append(line[1:].strip())
        elif line.startswith("→") and pairs:
            pairs[-1] += f" {line}"
    return "; ".join(pairs)


#: A multi-select question's option: ``[ ] Python``, ``[✔] Go`` (checked)
_BOX = re.compile(r"^\[(.)\]\s*(.*)$")


def _pick_several(text: str, options: list[tuple[str, str]]) -> Reply:
    """A multi-select question: the options ``text`` names (numbers or labels, split at
    commas) end up checked, the others not - each toggled by its number as needed - and
    Tab moves on (the next question, or the review)."""
    boxes = {k: m.groups() for k, label in options if (m := _BOX.match(label))}
    labels = {" ".join(label.split()).casefold(): k for k, (_, label) in boxes.items()}
    whole = " ".join(text.split()).casefold()
    names = [whole] if whole in labels else [x.strip() for x in whole.split(",") if x.strip()]
    wanted: set[str] = set()
    for name in names:
        key = name if name in boxes else labels.get(name)
        if key is None or boxes[key][1].startswith("Type something"):
            listing = ", ".join(
                f"{k} {label}"
                for k, (_, label) in boxes.items()
                if not label.startswith("Type something")
            )
            raise MulluiError(
                f"{name!r} is not one of the options of Claude's question: nothing sent; "
                f"name several with commas, from {listing}"
            )
        wanted.add(key)
    toggles = [k for k, (mark, _) in boxes.items() if (mark != " ") != (k in wanted)]
    return Reply((*toggles, "Tab"), stays_open=True)


@dataclass(frozen=True)
class QuestionDialog(Dialog):
    """Claude Code 2.1.197's AskUserQuestion, measured::

        Which database?
        ❯ 1. Postgres
          2. SQLite
          3. Type something.       (a text field; Enter answers with it)
          4. Chat about this       (rejects: "the user wants to clarify")
        Enter to select · ↑/↓ to navigate · Esc to cancel

    An option's number pressed alone answers at once (no Enter).  A reply that is an
    option's number or its label (case aside) picks it; ``n`` is Esc ("User declined to
    answer questions"); other text goes into "Type something." as the answer, or - a
    dialog without one - is refused, naming the options.

    Several questions at once (a tab row ``←  ☐ DB  ☐ Lang  ✔ Submit  →``): each answer
    moves to the next question, the last to "Review your answers ... 1. Submit answers
    / 2. Cancel".  One reply answers the question on the screen (:meth:`asks` gives the
    next one for the inbox); on the review ``y`` submits.  A multi-select question
    (``[ ]`` options, toggled by their numbers; it has the tab row even alone) takes
    the options' numbers or labels, separated by commas.
    """

    def shown(self, screen: str) -> bool:
        return self.marker in screen or REVIEW in screen  # the review has no footer

    def asks(self, screen: str) -> str | None:
        if REVIEW in screen:
            missing = " (not all questions answered)" if "not answered all" in screen else ""
            return f"AskUserQuestion: submit these answers?{missing} {_review(screen)}".strip()
        tabs = _TABS.search(screen)
        if tabs is None:
            return None
        after = (x.strip() for x in screen[tabs.end() :].splitlines()[1:])
        question = next((x for x in after if x), "")
        return f"AskUserQuestion: {question}" if question else None

    def reply(self, text: str, screen: str = "") -> Reply:
        options = dialog_options(screen)
        want = " ".join(text.split()).casefold()
        several = _TABS.search(screen) is not None
        if REVIEW in screen:
            submit = next((k for k, label in options if label.startswith("Submit")), None)
            if want in ALLOW_WORDS and submit is not None:
                return Reply((submit,))
        if want in DENY_WORDS:
            return Reply(self.deny, denies=True)
        if any(_BOX.match(label) for _, label in options):
            return _pick_several(text, options)
        free = next((k for k, label in options if label.startswith("Type something")), None)
        choices = [(k, label) for k, label in options if k != free]
        for key, label in choices:
            if want in (key, " ".join(label.split()).casefold()):
                return Reply((key,), stays_open=several and REVIEW not in screen)
        if free is not None:
            return Reply((free,), text.strip(), field=free, stays_open=several)
        said = " ".join(text.split())
        raise MulluiError(
            f"{said!r} is not one of the options of Claude's question: nothing sent; "
            f"reply with one of {_listing(choices)}"
        )


#: Causes of ``blocked`` while a question tool's dialog is open: the PermissionRequest
#: (and its late Notification twin) 2.1.197 sends for ExitPlanMode / AskUserQuestion too,
#: and the PreToolUse that comes ~20-200 ms before it.
_QUESTION_CAUSES = (
    "hook:PreToolUse",
    "hook:PermissionRequest",
    "hook:Notification:permission_prompt",
)

PLAN_DIALOG = PlanDialog(
    causes=_QUESTION_CAUSES,
    marker=PLAN_MARKERS[0],
    hint=(
        "y approves the plan (each edit still asks) · n refuses, Claude keeps planning · "
        "other text refuses and tells Claude what to change"
    ),
    name="plan approval dialog",
)

QUESTION_DIALOG = QuestionDialog(
    causes=_QUESTION_CAUSES,
    marker="Enter to select",
    hint=(
        "an option's number or label picks it (a multi-select: several, with commas) · "
        "n declines to answer · other text is your own answer · several questions: one "
        "reply each, then y submits"
    ),
    name="question dialog",
)


class ClaudeProfile(Profile):
    name = "claude"
    has_hooks = True
    reports_blocked = True
    guard_event = "PreToolUse"
    dialog = CLAUDE_DIALOG

    def dialog_for(self, cause: str, question: str | None) -> Dialog | None:
        # The question tools open dialogs of their own (summarize_tool's "<tool>: ..."
        # prefix says which tool blocks); every other tool the permission dialog.
        tool = (question or "").split(":", 1)[0]
        if tool in QUESTION_TOOLS:
            d = PLAN_DIALOG if tool == "ExitPlanMode" else QUESTION_DIALOG
            return d if d.is_open(cause) else None
        return super().dialog_for(cause, question)

    def __init__(self, prices: Mapping[str, Price] | None = None, binary: str = "claude") -> None:
        #: config price overrides (``usage.prices_from_config``) for the usage events
        self.prices = dict(prices or {})
        self.binary = binary
        #: how long a Stop may wait for the transcript to hold the final answer (the
        #: raw-spool catch-up lowers it to a short wait, and to none for an old event)
        self.transcript_wait_s = TRANSCRIPT_WAIT_S

    # ---- launching -----------------------------------------------------------------
    def settings_path(self, ctx: LaunchContext) -> Path:
        return ctx.profile_dir / SETTINGS_FILE

    def settings(self, ctx: LaunchContext) -> dict[str, Any]:
        """The ``--settings`` document: one command hook per event, nothing else."""
        hooks: dict[str, Any] = {}
        for event in HOOK_EVENTS:
            # A shell runs this string (Claude Code's command hooks); hook_command keeps
            # every argv element one word whatever the interpreter's path holds.  The
            # exec form (``args``) exists in 2.1.197 but older versions would ignore it and
            # run ``command`` alone.  PreToolUse is the one event the CLI waits on that
            # may get an answer (the collision guard): the answer path.
            argv = answer_argv(ctx) if event == "PreToolUse" else ctx.hook_argv
            command = hook_command(argv, event)
            entry: dict[str, Any] = {
                "hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]
            }
            if event == "PreToolUse":
                entry = {"matcher": PRE_TOOL_MATCHER, **entry}
            hooks[event] = [entry]
        return {"hooks": hooks}

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        problem = first_run_problem(ctx.repo, ctx.worktree, {**os.environ, **ctx.env})
        if problem:
            raise MulluiError(problem)
        ctx.profile_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.settings_path(ctx)
        write_file(path, json.dumps(self.settings(ctx), indent=2) + "\n")
        return {}

    def command(self, ctx: LaunchContext) -> list[str]:
        # "--" ends the options: a task that starts with "-" stays the prompt.
        return [
            self.binary,
            "--settings",
            str(self.settings_path(ctx)),
            "--session-id",
            ctx.session_id,
            *model_and_args(ctx),
            "--",
            ctx.task,
        ]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``claude --resume <id>`` continues the same session id and transcript (2.1.197);
        None when the CLI never wrote that conversation (killed before its first turn:
        ``--resume`` would only say "No conversation found")."""
        if transcript_of(ctx) is None:
            return None
        return [
            self.binary,
            "--resume",
            ctx.session_id,
            "--settings",
            str(self.settings_path(ctx)),
            *model_and_args(ctx),
            *(["--", prompt] if prompt else []),
        ]

    # ---- watching ------------------------------------------------------------------
    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        out: list[Event] = meta_events(payload)
        out.extend(self._state_events(event, payload))
        if event in USAGE_EVENTS and isinstance(payload.get("transcript_path"), str):
            transcript = Path(payload["transcript_path"])
            last = payload.get("last_assistant_message")
            if event == "Stop" and isinstance(last, str) and self.transcript_wait_s > 0:
                wait_for_transcript(transcript, last, self.transcript_wait_s)
            usage = claude_session_usage(transcript, self.prices)
            if usage.requests:
                out.append(usage.as_event())
        if not any(e["kind"] in ("state", "exit") for e in out):
            out.append({"kind": "activity", "cause": f"hook:{event}"})
        return out

    def _state_events(self, event: str, p: dict[str, Any]) -> list[Event]:
        cwd = p.get("cwd") if isinstance(p.get("cwd"), str) else None
        tool = str(p.get("tool_name") or "")
        in_subagent = bool(p.get("agent_id"))

        if event == "PermissionRequest":
            # Also from a subagent: the dialog blocks the whole session.
            return [
                _state("blocked", event, question=summarize_tool(tool, p.get("tool_input"), cwd))
            ]

        if event == "PreToolUse":
            if tool in QUESTION_TOOLS:
                q = summarize_tool(tool, p.get("tool_input"), cwd)
                return [_state("blocked", event, question=q)]
            if tool in CLAUDE_EDIT_TOOLS:
                # The collision guard answers this very call (mullui.guard) and writes its
                # verdict (``ask``: blocked) at once, while this event may be folded later
                # (the fast hook path): "working" here would undo it.  A sign of life only;
                # PostToolUse says working once the edit ran.
                return []
            return [_state("working", event)]

        if event in ("PostToolUse", "PostToolUseFailure", "UserPromptSubmit"):
            return [_state("working", event)]

        if event == "Notification":
            kind = str(p.get("notification_type") or "")
            if kind not in BLOCKING_NOTIFICATIONS:
                return []
            cause = f"hook:Notification:{kind}"
            if kind == "permission_prompt":
                # The late twin of PermissionRequest (~6 s after the dialog opened): no
                # question of its own, so the reducer keeps the precise one it has.
                return [{"kind": "state", "state": "blocked", "cause": cause, "question": None}]
            message = p.get("message")
            said = _clip(message) if isinstance(message, str) and message else None
            return [{"kind": "state", "state": "blocked", "cause": cause, "question": said}]

        if event == "Stop":
            if in_subagent:
                return []
            running = _in_flight(p.get("background_tasks"))
            if running:
                # "Paused waiting for background work to wake it": not the human's turn.
                return [{"kind": "activity", "cause": f"hook:Stop:background:{running}"}]
            msg = p.get("last_assistant_message")
            return [_state("done", event, message=msg if isinstance(msg, str) else None)]

        if event == "StopFailure":
            error = str(p.get("error") or "unknown")
            details = p.get("error_details")
            q = f"API error: {error}" + (f" ({details})" if isinstance(details, str) else "")
            return [
                {
                    "kind": "state",
                    "state": "blocked",
                    "cause": f"hook:StopFailure:{error}",
                    "question": _clip(q),
                }
            ]

        if event == "SessionEnd":
            reason = str(p.get("reason") or "other")
            if reason in QUIT_REASONS:
                return [{"kind": "exit", "exit_code": 0, "cause": f"hook:SessionEnd:{reason}"}]
            # clear/resume: same process, new session (SessionStart follows).  "other"
            # covers signals too: leave the exit code to tmux's pane-died.
            return []

        return []


#: How long a Stop hook waits for the transcript to catch up (see wait_for_transcript).
TRANSCRIPT_WAIT_S = 2.0
TAIL_BYTES = 256 * 1024


def wait_for_transcript(path: Path, last_message: str, timeout: float = TRANSCRIPT_WAIT_S) -> bool:
    """Wait until the transcript holds the turn's final answer; False on timeout.

    Claude Code 2.1.197 queues transcript writes and drains them every 100 ms, and the Stop
    hook can run before the final response is on disk: seen under load (2 cores, load 12),
    the usage read at Stop then missed the last response.  The final text (its first line,
    JSON-escaped as the CLI writes it) appearing in the file's tail means it is there.
    """
    first = last_message.strip().split("\n", 1)[0][:100]
    if not first or not is_regular_file(path):
        return True
    needle = json.dumps(first, ensure_ascii=False)[1:-1].encode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                if needle in f.read():
                    return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _in_flight(tasks: Any) -> int:
    """How many background tasks a Stop payload says are still running or pending."""
    if not isinstance(tasks, list):
        return 0
    done = ("completed", "failed", "killed", "stopped", "cancelled", "canceled", "error")
    return sum(
        1 for t in tasks if isinstance(t, dict) and str(t.get("status", "")).lower() not in done
    )
