"""``opencode``: OpenCode, watched through a plugin mullui writes for it.

Verified with OpenCode 1.18.33 (see docs/agents.md).  Wiring: OpenCode loads every
``*.js`` / ``*.ts`` file in ``plugins/`` (``plugin/`` before 1.x) of each config
directory, and ``OPENCODE_CONFIG_DIR`` adds one more config directory on top of the
global (``~/.config/opencode``) and project ones - it does not replace them.  ``prepare``
writes ``plugins/mullui.js`` into mullui's own config dir (one for all agents,
``profiles/_opencode``: see :meth:`OpenCodeProfile.config_dir`) and points
``OPENCODE_CONFIG_DIR`` at it; the user's config files are neither read nor written.  If
the user already sets ``OPENCODE_CONFIG_DIR``, a per-agent directory mirrors theirs with
symlinks (their plugins included) so nothing of theirs is lost.

The plugin subscribes to OpenCode's event bus and, for the few events that matter, spawns
``<hook argv> EVENT`` with a small JSON payload on stdin (argv, never a shell).  It keeps
just enough state to make those payloads useful: which sessions are subagents (their
idleness is not the agent's), the newest assistant text (the ``done`` message), token
and cost totals of assistant messages.

Signals (event names of OpenCode 1.x, seen with 1.18.33; ``permission.updated`` is the
0.x name; the ``permission.ask`` plugin hook is not called in 1.x, the bus event is):

=====================  =====================================================
session.busy           working (``session.status`` turned ``busy``)
session.idle           done, with the last assistant text and usage totals
permission.asked       blocked: a tool needs approval (``permission`` +
                       ``patterns``)
question.asked         blocked: the model asked the human a question
permission.replied /   working
question.replied /
question.rejected
session.error          blocked: the turn ended on an error the human must see
tool.execute.before    (plugin hook, edit / write only) the collision guard:
                       the answer path decides; ``block`` throws its reason;
                       ``ask`` with OpenCode's ``permission.edit`` not ``ask``
                       holds the call until ``mullui send`` writes the human's
                       decision (``guard.held_calls`` / ``guard.decide_held``)
tool.execute.after     (plugin hook) ``guard.unasked``: an edit the guard
                       answered ``ask`` ran without a ``permission.asked``
                       (config ``ask``, a session's "Allow always"): working,
                       the human told as for warn
=====================  =====================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from mullui.agents.base import (
    Dialog,
    Event,
    LaunchContext,
    Profile,
    answer_argv,
    model_and_args,
)
from mullui.guard import (
    ANSWER_DIR,
    DECISIONS_DIR,
    HOLD_S,
    OPENCODE_EDIT_TOOLS,
    OPENCODE_EVENT,
    decisions_dir,
    held_calls,
)
from mullui.reducer import GUARD_UNASKED_CAUSE

CONFIG_DIR_ENV = "OPENCODE_CONFIG_DIR"
SHARED_DIR = "_opencode"
PLUGIN_FILE = "mullui.js"
PLUGIN_DIRS = ("plugins", "plugin")

MAX_SUMMARY = 300

#: The plugin's report that an edit the collision guard answered ``ask`` ran without
#: OpenCode asking anybody (its config says ``ask``, so the plugin did not hold it, but
#: the session allows edits); the reducer tells the human as for ``warn``.
UNASKED_EVENT = GUARD_UNASKED_CAUSE.removeprefix("hook:")

_PLUGIN = """\
// Written by mullui: reports this OpenCode session's state to mullui's hook (the agent
// is named by MULLUI_AGENT_ID in OpenCode's environment).  Regenerated at every launch;
// edits are lost.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, unlinkSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";

const HOOK = __HOOK__;
const ANSWER = __ANSWER__;          // the hook that may answer (the collision guard)
const EDIT_TOOLS = __EDIT_TOOLS__;  // file-writing tool -> the arg naming its file
const children = new Set();   // subagent sessions: their idleness is not the agent's
const roles = new Map();      // messageID -> "user" | "assistant"
const lastText = new Map();   // sessionID -> newest assistant text
const usage = new Map();      // assistant messageID -> [tokens_in, tokens_out, cost]
const status = new Map();     // sessionID -> last reported status
const unasked = new Map();    // callID -> sessionID: the guard said "ask", OpenCode has not
const DECISIONS = __DECISIONS__;    // <state>/answer/decisions, under MULLUI_STATE_DIR
const HOLD_S = __HOLD_S__;          // how long a held edit waits for the human
const SLOW_CHECK_MS = 5000;         // a missed fs.watch event is caught this late at most
let editPermission = null;          // Promise: OpenCode's own permission.edit

// OpenCode's own permission for edits ("ask" | "allow" | "deny"; null: unknown), from its
// merged config (global, project, OPENCODE_CONFIG_DIR, OPENCODE_CONFIG_CONTENT).
function editRule(client) {
  if (!editPermission) editPermission = (async () => {
    try {
      const r = await client.config.get();
      const cfg = (r && r.data) || {};
      let p = cfg.permission;
      if (p && typeof p === "object") p = p.edit;
      if (p && typeof p === "object") {  // per pattern: any "ask" is OpenCode's dialog
        const v = Object.values(p);
        p = v.includes("ask") ? "ask" : v.length && v.every((x) => x === "deny") ? "deny" : "allow";
      }
      return typeof p === "string" ? p : "allow";  // OpenCode's default allows edits
    } catch (e) {
      return null;
    }
  })();
  return editPermission;
}

// Hold a tool call until mullui writes the human's decision (`mullui send`): resolves to
// {allow, said}, or null when none came within HOLD_S or the wait could not be set up.
function hold(callID, path) {
  return new Promise((resolve) => {
    const agent = process.env.MULLUI_AGENT_ID || "";
    if (!DECISIONS || !agent) return resolve(null);
    const base = `${agent}.${String(callID).replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const wait = join(DECISIONS, `${base}.wait`), name = `${base}.answer`;
    const ans = join(DECISIONS, name);
    let done = false, watcher = null, slow = null, timer = null;
    const finish = (d) => {
      if (done) return;
      done = true;
      clearInterval(slow);
      clearTimeout(timer);
      try { if (watcher) watcher.close(); } catch (e) {}
      for (const f of [wait, ans]) { try { unlinkSync(f); } catch (e) {} }
      resolve(d);
    };
    const check = () => {
      let text;
      try { text = readFileSync(ans, "utf8"); } catch (e) { return; }
      try {
        const d = JSON.parse(text);
        finish({ allow: d.allow === true, said: typeof d.said === "string" ? d.said : null });
      } catch (e) {
        finish({ allow: false, said: null });
      }
    };
    try {
      mkdirSync(DECISIONS, { recursive: true, mode: 0o700 });
      watcher = watch(DECISIONS, (type, f) => { if (!f || f === name) check(); });
      watcher.on("error", () => {});
      const tmp = join(DECISIONS, `.${base}.${process.pid}.tmp`);
      writeFileSync(tmp, JSON.stringify({ callID, path }), { mode: 0o600 });
      renameSync(tmp, wait);
    } catch (e) {
      return finish(null);
    }
    slow = setInterval(check, SLOW_CHECK_MS);
    timer = setTimeout(() => finish(null), HOLD_S * 1000);
    check();
  });
}

function report(event, payload) {
  try {
    const child = spawn(HOOK[0], [...HOOK.slice(1), event], {
      stdio: ["pipe", "ignore", "ignore"],
      env: process.env,
    });
    child.on("error", () => {});
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(payload));
  } catch (e) {
    // A hook that cannot run must never break the agent.
  }
}

// The collision guard's answer for an edit: the answer hook's stdout ("" when it has none).
function answer(event, payload) {
  return new Promise((resolve) => {
    let out = "";
    try {
      const child = spawn(ANSWER[0], [...ANSWER.slice(1), event], {
        stdio: ["pipe", "pipe", "ignore"],
        env: process.env,
      });
      child.stdout.on("data", (d) => { out += d; });
      child.on("error", () => resolve(""));
      child.on("close", () => resolve(out));
      child.stdin.on("error", () => {});
      child.stdin.end(JSON.stringify(payload));
    } catch (e) {
      resolve("");
    }
  });
}

function totals() {
  let tin = 0, tout = 0, cost = 0;
  for (const [i, o, c] of usage.values()) { tin += i; tout += o; cost += c; }
  return { tokens_in: tin, tokens_out: tout, cost_usd: cost };
}

function idle(sessionID) {
  if (children.has(sessionID) || status.get(sessionID) === "idle") return;
  status.set(sessionID, "idle");
  report("session.idle", { sessionID, last_message: lastText.get(sessionID) ?? null, ...totals() });
}

const num = (v) => (typeof v === "number" && v > 0 ? v : 0);

export const MulluiPlugin = async ({ directory, client } = {}) => ({
  // The collision guard: an edit of a file another agent changed.  Throwing refuses the
  // tool call; the model reads the message as the tool's error.
  "tool.execute.before": async (input, output) => {
    const key = EDIT_TOOLS[input && input.tool];
    const args = (output && output.args) || {};
    if (!key || typeof args[key] !== "string") return;
    const said = await answer("tool.execute.before", {
      sessionID: input.sessionID ?? null, tool: input.tool, callID: input.callID ?? null,
      cwd: directory || process.cwd(), args: { [key]: args[key] },
    });
    let decision = null;
    try { decision = said.trim() ? JSON.parse(said) : null; } catch (e) { return; }
    if (decision && decision.decision === "block") throw new Error(String(decision.reason));
    if (!decision || decision.decision !== "ask" || !input.callID) return;
    // "ask": when OpenCode's own edit permission asks, its dialog takes the answer
    // (permission.asked, with this callID).  Otherwise this call waits here - OpenCode
    // awaits the hook - until the human answers through mullui (the agent is blocked on
    // the guard's cause meanwhile).
    if ((client ? await editRule(client) : null) === "ask") {
      unasked.set(input.callID, input.sessionID ?? null);  // an earlier "Allow always"
      return;
    }
    const reason = String(decision.reason);
    const human = await hold(input.callID, decision.path ?? null);
    if (human && human.allow) return;
    if (!human)
      throw new Error(`${reason} No answer came from the human within ${HOLD_S / 60} minutes: ` +
                      "the edit was not made.");
    throw new Error(`${reason} The human refused this edit.` +
                    (human.said ? ` The human said: ${human.said}` : ""));
  },
  "tool.execute.after": async (input) => {
    const callID = input && input.callID;
    if (!callID || !unasked.has(callID)) return;
    const sessionID = input.sessionID ?? unasked.get(callID);
    unasked.delete(callID);
    report("guard.unasked", { sessionID, tool: input.tool, callID });
  },
  event: async ({ event }) => {
    const p = (event && event.properties) || {};
    switch (event && event.type) {
      case "session.created":
      case "session.updated": {
        const info = p.info || {};
        if (info.parentID) children.add(info.id);
        return;
      }
      case "message.updated": {
        const m = p.info || {};
        roles.set(m.id, m.role);
        if (m.role === "assistant" && m.tokens) {
          const t = m.tokens, c = t.cache || {};
          usage.set(m.id, [num(t.input) + num(c.read) + num(c.write),
                           num(t.output) + num(t.reasoning), num(m.cost)]);
        }
        return;
      }
      case "message.part.updated": {
        const part = p.part || {};
        if (part.type === "text" && !part.synthetic && roles.get(part.messageID) === "assistant")
          lastText.set(part.sessionID, part.text);
        return;
      }
      case "session.status": {
        const type = p.status && p.status.type;
        if (type === "idle") return idle(p.sessionID);
        if (type !== "busy" || children.has(p.sessionID)) return;
        if (status.get(p.sessionID) === "busy") return;
        status.set(p.sessionID, "busy");
        return report("session.busy", { sessionID: p.sessionID });
      }
      case "session.idle":
        return idle(p.sessionID);
      case "permission.asked":
      case "permission.updated":
        if (p.tool && p.tool.callID) unasked.delete(p.tool.callID);
        status.delete(p.sessionID);
        return report(event.type, {
          sessionID: p.sessionID, permission: p.permission ?? p.type ?? null,
          patterns: p.patterns ?? p.pattern ?? null, title: p.title ?? null,
        });
      case "question.asked":
        status.delete(p.sessionID);
        return report(event.type, { sessionID: p.sessionID, questions: p.questions ?? null });
      case "permission.replied":
      case "question.replied":
      case "question.rejected":
        return report(event.type, { sessionID: p.sessionID });
      case "session.error":
        if (children.has(p.sessionID)) return;
        status.delete(p.sessionID);
        return report(event.type, { sessionID: p.sessionID ?? null, error: p.error ?? null });
    }
  },
});
"""


def plugin_source(ctx: LaunchContext) -> str:
    """The plugin's JavaScript; the hook argvs go in as JSON (= JS) literals."""
    return (
        _PLUGIN.replace("__HOOK__", json.dumps(list(ctx.hook_argv)))
        .replace("__ANSWER__", json.dumps(list(answer_argv(ctx))))
        .replace("__EDIT_TOOLS__", json.dumps(OPENCODE_EDIT_TOOLS))
        .replace("__DECISIONS__", _DECISIONS_JS)
        .replace("__HOLD_S__", str(HOLD_S))
    )


#: Where the plugin waits for the human's decisions, from the agent's ``MULLUI_STATE_DIR``
#: (the plugin file is shared by all agents): a JS expression.
_DECISIONS_JS = (
    "process.env.MULLUI_STATE_DIR ? "
    f"join(process.env.MULLUI_STATE_DIR, ...{json.dumps([ANSWER_DIR, DECISIONS_DIR])}) : null"
)


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state(state: str, cause: str, **extra: Any) -> Event:
    ev: Event = {"kind": "state", "state": state, "cause": cause}
    ev.update(extra)
    return ev


def _mirror(user_dir: Path, ours: Path) -> Path:
    """Link the user's config dir entries into ``ours``; return our plugins dir."""
    plugins = ours / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    if not user_dir.is_dir():
        return plugins
    for entry in user_dir.iterdir():
        if entry.name in PLUGIN_DIRS and entry.is_dir():
            for f in entry.iterdir():
                link = plugins / f.name
                if f.name != PLUGIN_FILE and not link.exists():
                    link.symlink_to(f.resolve())
            continue
        link = ours / entry.name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(entry.resolve())
    return plugins


#: OpenCode 1.18.33's permission prompt ("Permission required ... Allow once / Allow
#: always / Reject", Enter confirms the highlighted "Allow once"): ``n`` + Enter ran the
#: command (measured).  Enter allows once; Esc rejects, and the prompt then takes text.
#: The collision guard's ``ask`` reaches the human through it (with ``permission.edit``
#: at ``ask``; its ``permission.asked`` keeps the guard's cause): typed as is, ``n`` +
#: Enter *wrote* the file (measured, tests/integration/test_collision_guard.py).
OPENCODE_DIALOG = Dialog(
    causes=("hook:permission.asked", "hook:permission.updated", "collision:"),
    marker="Permission required",
    allow=("Enter",),
    deny=("Escape",),
)


class OpenCodeProfile(Profile):
    name = "opencode"
    has_hooks = True
    reports_blocked = True
    guard_event = OPENCODE_EVENT
    dialog = OPENCODE_DIALOG
    #: like Codex, an Enter right after typed text is taken as part of a paste
    enter_delay_s = 0.5

    def __init__(self, binary: str = "opencode") -> None:
        self.binary = binary

    # ---- launching -----------------------------------------------------------------
    def config_dir(self, ctx: LaunchContext) -> Path:
        """mullui's config dir for OpenCode: one for all agents (``profiles/_opencode``,
        beside the agents' own profile dirs), since OpenCode runs ``npm install
        @opencode-ai/plugin`` in every config dir it loads that lacks it (40 s at load 8 on
        2 cores, and the network): once, not per agent.  The plugin is the same for every
        agent; the agent is named by its environment.  Per agent only when the user's own
        ``OPENCODE_CONFIG_DIR`` has to be mirrored."""
        if ({**os.environ, **ctx.env}).get(CONFIG_DIR_ENV):
            return ctx.profile_dir / "opencode"
        return ctx.profile_dir.parent / SHARED_DIR

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        state_dir = ctx.env.get("MULLUI_STATE_DIR")
        if state_dir:  # a process that held an edit and died left its wait file
            for call in held_calls(state_dir, ctx.agent_id):
                for end in ("wait", "answer"):
                    with contextlib.suppress(OSError):
                        os.unlink(
                            os.path.join(decisions_dir(state_dir), f"{ctx.agent_id}.{call}.{end}")
                        )
        ours = self.config_dir(ctx)
        ours.mkdir(parents=True, exist_ok=True, mode=0o700)
        user_dir = ({**os.environ, **ctx.env}).get(CONFIG_DIR_ENV)
        if user_dir and Path(user_dir).resolve() != ours.resolve():
            plugins = _mirror(Path(user_dir), ours)
        else:
            plugins = ours / "plugins"
            plugins.mkdir(exist_ok=True)
        path = plugins / PLUGIN_FILE
        text = plugin_source(ctx)
        try:
            same = path.read_text() == text
        except OSError:
            same = False
        if not same:
            # Several spawns may write it at once: each through its own temporary file.
            tmp = path.with_name(f".{PLUGIN_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        return {CONFIG_DIR_ENV: str(ours)}

    def command(self, ctx: LaunchContext) -> list[str]:
        # The TUI with ``--prompt`` submits the task and stays interactive (``opencode run``
        # would be one-shot).  yargs would read a value starting with "-" as an option;
        # the "--opt=value" form keeps it the value.
        if ctx.task.startswith("-"):
            prompt = [f"--prompt={ctx.task}"]
        else:
            prompt = ["--prompt", ctx.task]
        return [self.binary, *model_and_args(ctx), *prompt]

    #: 1.18.33 reopens the session with ``--session`` but leaves ``--prompt`` unsent (the
    #: input stays empty; tests/integration/test_resume_clis.py)
    resume_takes_prompt = False
    #: the plugin's totals start from zero in a resumed process (no old message.updated)
    resume_keeps_usage = False

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """``opencode --session <id>`` continues OpenCode's own session (its id, ``ses_...``,
        reaches mullui as ``meta``); before any is known, ``--continue`` (the newest).  It
        takes no prompt with it (:attr:`resume_takes_prompt`)."""
        if ctx.session_id.startswith("ses_"):
            return [self.binary, *model_and_args(ctx), "--session", ctx.session_id]
        return [self.binary, *model_and_args(ctx), "--continue"]

    # ---- watching ------------------------------------------------------------------
    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        out: list[Event] = []
        session = payload.get("sessionID")
        if isinstance(session, str) and session:
            out.append({"kind": "meta", "session_id": session})
        out.extend(self._state_events(event, payload))
        if event == "session.idle":
            usage = _usage(payload)
            if usage is not None:
                out.append(usage)
        if not any(e["kind"] in ("state", "exit") for e in out):
            out.append({"kind": "activity", "cause": f"hook:{event}"})
        return out

    def _state_events(self, event: str, p: dict[str, Any]) -> list[Event]:
        cause = f"hook:{event}"
        if event in ("session.busy", "permission.replied", "question.replied", "question.rejected"):
            return [_state("working", cause)]
        if event == "session.idle":
            msg = p.get("last_message")
            return [_state("done", cause, message=msg if isinstance(msg, str) else None)]
        if event in ("permission.asked", "permission.updated"):
            return [_state("blocked", cause, question=_permission_question(p))]
        if event == "question.asked":
            return [_state("blocked", cause, question=_question(p.get("questions")))]
        if event == "session.error":
            return [_state("blocked", cause, question=_error(p.get("error")))]
        if event == UNASKED_EVENT:
            # The guard's ``ask`` had the agent blocked, but OpenCode ran the edit without
            # asking (``permission.edit`` allows it): it is working, not waiting.
            return [_state("working", GUARD_UNASKED_CAUSE)]
        return []


def _permission_question(p: dict[str, Any]) -> str:
    title = p.get("title")
    if isinstance(title, str) and title:
        return _clip(title)
    permission = str(p.get("permission") or "permission")
    patterns = p.get("patterns")
    if isinstance(patterns, str):
        patterns = [patterns]
    shown = ", ".join(str(x) for x in patterns) if isinstance(patterns, list) else ""
    return _clip(f"{permission}: {shown}" if shown else permission)


def _question(questions: Any) -> str:
    if isinstance(questions, list) and questions and isinstance(questions[0], dict):
        q = questions[0].get("question") or questions[0].get("header")
        if isinstance(q, str) and q:
            return _clip(q)
    return "OpenCode asks a question (see its pane)"


def _error(error: Any) -> str:
    if isinstance(error, dict):
        data = error.get("data")
        message = data.get("message") if isinstance(data, dict) else None
        name = error.get("name")
        text = ": ".join(str(x) for x in (name, message) if isinstance(x, str) and x)
        if text:
            return _clip(f"error: {text}")
    return "error (see its pane)"


def _usage(p: dict[str, Any]) -> Event | None:
    def nonneg_int(v: Any) -> int:
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    tin, tout = nonneg_int(p.get("tokens_in")), nonneg_int(p.get("tokens_out"))
    cost = p.get("cost_usd")
    cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else 0.0
    if not tin and not tout:
        return None
    return {"kind": "usage", "tokens_in": tin, "tokens_out": tout, "cost_usd": round(cost, 6)}
