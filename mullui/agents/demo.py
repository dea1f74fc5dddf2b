"""``demo``: the scripted agents of ``mullui demo``; they report through the same hook
path as real agents (``mullui hook``), so the demo shows the real pipeline."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mullui.agents.base import Event, LaunchContext, Profile


class DemoProfile(Profile):
    name = "demo"
    has_hooks = True
    reports_blocked = True
    resume_reruns = True

    def prepare(self, ctx: LaunchContext) -> dict[str, str]:
        """The scripted agent is ``python -m mullui.demo.agent``: this very mullui, found
        first (a checkout run as ``python -m mullui`` is not installed; a pane's
        environment comes from its tmux server, whoever started it)."""
        root = str(Path(__file__).resolve().parents[2])
        rest = ctx.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        return {"PYTHONPATH": os.pathsep.join(p for p in (root, rest) if p)}

    def command(self, ctx: LaunchContext) -> list[str]:
        script = str(ctx.options.get("script", "refactor"))
        return [sys.executable, "-m", "mullui.demo.agent", script, ctx.task]

    def resume_command(self, ctx: LaunchContext, prompt: str | None = None) -> list[str] | None:
        """The scripted demo has no conversation: it runs its script again."""
        return self.command(ctx)

    def translate(self, event: str, payload: dict[str, Any], argv: list[str]) -> list[Event]:
        if event == "Working":
            return [{"kind": "state", "state": "working", "cause": "hook:Working"}]
        if event == "Ask":
            return [
                {
                    "kind": "state",
                    "state": "blocked",
                    "cause": "hook:Ask",
                    "question": str(payload.get("question", "")),
                }
            ]
        if event == "Stop":
            out: list[Event] = [
                {
                    "kind": "state",
                    "state": "done",
                    "cause": "hook:Stop",
                    "message": str(payload.get("message", "")),
                }
            ]
            if "tokens_in" in payload:
                out.append(
                    {
                        "kind": "usage",
                        "tokens_in": int(payload["tokens_in"]),
                        "tokens_out": int(payload.get("tokens_out", 0)),
                        "cost_usd": float(payload.get("cost_usd", 0.0)),
                    }
                )
            return out
        return [{"kind": "activity", "cause": f"hook:{event}"}]
