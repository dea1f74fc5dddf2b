"""Driving a real agent CLI through mullui: a user's HOME, a repository, an isolated
mullui (``MULLUI_HOME``, private tmux socket) and the per-CLI setup that points each CLI
at a loopback stub.  Shared by ``tests/integration/test_agent_clis.py`` and
``benchmarks/bench_agents.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, stop_supervisor
from tests.support.agents import make_repo, wait_for


def since(agent: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(agent["state_since"]).replace("Z", "+00:00")).timestamp()


@dataclass
class Pipeline:
    """A user's HOME, a repository and an isolated mullui driving one agent CLI."""

    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    agent_id: str = ""

    def __post_init__(self) -> None:
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.repo = make_repo(self.tmp / "repo")
        self.socket = f"mullui-clis-{uuid.uuid4().hex[:8]}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "MULLUI_HOME": str(self.tmp / "mullui"),
            "MULLUI_TMUX_SOCKET": self.socket,
            "MULLUI_NOTIFY": "none",
            **{k: v for k, v in os.environ.items() if k.startswith("GIT_")},
        }

    def mullui(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mullui", *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def spawn(self, task: str, agent: str) -> None:
        res = self.mullui("spawn", task, "--agent", agent, "--no-attach")
        assert res.returncode == 0, res.stderr
        self.agent_id = res.stdout.strip().splitlines()[-1]

    def agent(self) -> dict[str, Any]:
        res = self.mullui("ls", "--json")
        assert res.returncode == 0, res.stderr
        (a,) = json.loads(res.stdout)
        return dict(a)

    def why(self) -> str:
        """``mullui inbox``'s line for the agent: the question, or the last message."""
        res = self.mullui("inbox", "--json")
        assert res.returncode == 0, res.stderr
        return str(next(x["why"] for x in json.loads(res.stdout) if x["id"] == self.agent_id))

    def state(self, state: str, timeout: float) -> dict[str, Any]:
        return dict(
            wait_for(lambda: (a := self.agent())["state"] == state and a, timeout, state, 0.2)
        )

    def screen(self, target: str | None = None) -> str:
        target = target or self.agent()["tmux_target"]
        res = subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-t", target],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return res.stdout

    def drawn(self, text: str, timeout: float) -> float:
        """Wait until ``text`` is on the agent's screen; when it was first seen."""
        target = wait_for(lambda: self.agent()["tmux_target"], 60, "the agent's pane", 0.2)
        wait_for(lambda: text in self.screen(target), timeout, f"{text!r} on screen", 0.01)
        return time.time()

    def send(self, text: str) -> None:
        res = self.mullui("send", self.agent_id, text)
        assert res.returncode == 0, res.stderr

    def keys(self, *keys: str) -> None:
        target = self.agent()["tmux_target"]
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", target, *keys], timeout=10)

    def exited(self, timeout: float) -> dict[str, Any]:
        def gone() -> dict[str, Any] | None:
            a = self.agent()
            return a if a["exit_code"] is not None else None

        return dict(wait_for(gone, timeout, "the agent's exit", 0.2))

    def close(self) -> None:
        # The supervisor the spawns started by themselves (this env has autostart on).
        stop_supervisor(self.tmp / "mullui" / "state")
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


# ---- per CLI: the user's own config, and the environment that reaches the stub ---------

GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "ui": {"theme": "ANSI"},
}


def gemini_user(p: Pipeline) -> list[Path]:
    """The user's own ~/.gemini: API-key auth chosen, the repository trusted."""
    user = p.home / ".gemini"
    user.mkdir()
    (user / "settings.json").write_text(json.dumps(GEMINI_SETTINGS, indent=2) + "\n")
    (user / "trustedFolders.json").write_text(json.dumps({str(p.repo): "TRUST_FOLDER"}))
    return [user / "settings.json", user / "trustedFolders.json"]


def setup_gemini(p: Pipeline, stub_url: str) -> list[Path]:
    p.env.update(GOOGLE_GEMINI_BASE_URL=stub_url, GEMINI_API_KEY="stub-key")
    return gemini_user(p)


OPENCODE_USER_CONFIG = {"$schema": "https://opencode.ai/config.json", "username": "mullui-test"}


def setup_opencode(p: Pipeline, stub_url: str, cost: tuple[float, float] = (3, 15)) -> list[Path]:
    """The user's own ``opencode.json`` (must stay untouched) and, inline through
    ``OPENCODE_CONFIG_CONTENT``, a provider on the stub with ``cost`` ($ per million
    input / output tokens) and tool permissions set to ask."""
    user = p.home / ".config" / "opencode" / "opencode.json"
    user.parent.mkdir(parents=True)
    user.write_text(json.dumps(OPENCODE_USER_CONFIG, indent=2) + "\n")
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "Stub",
        "options": {"baseURL": stub_url, "apiKey": "stub-key"},
        "models": {
            "stub-model": {"name": "Stub model", "cost": {"input": cost[0], "output": cost[1]}}
        },
    }
    inline = {
        "provider": {"stub": provider},
        "model": "stub/stub-model",
        "small_model": "stub/stub-model",
        "permission": {"bash": "ask", "edit": "ask"},
        "autoupdate": False,
        "share": "disabled",
    }
    p.env.update(
        OPENCODE_CONFIG_CONTENT=json.dumps(inline),
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_MODELS_FETCH="1",
        OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
        OPENCODE_DISABLE_LSP_DOWNLOAD="1",
    )
    return [user]


AIDER_USER_CONFIG = "# the user's own\ndark-mode: true\n"
AIDER_ARGS = [
    "--no-check-update",
    "--analytics-disable",
    "--no-show-release-notes",
    "--no-show-model-warnings",
    "--no-gitignore",
    "--no-auto-commits",
    "--edit-format",
    "diff",
]


#: litellm model info: $3 / $15 per million input / output tokens
AIDER_MODEL = {
    "max_input_tokens": 128000,
    "max_output_tokens": 8192,
    "input_cost_per_token": 3e-06,
    "output_cost_per_token": 1.5e-05,
    "litellm_provider": "openai",
    "mode": "chat",
}


def setup_aider(p: Pipeline, stub_url: str) -> list[Path]:
    """The user's own ``~/.aider.conf.yml`` (must stay untouched); mullui's
    ``[profiles.aider]`` with the stub's model and the flags that keep aider offline and
    quiet before the model speaks."""
    user = p.home / ".aider.conf.yml"
    user.write_text(AIDER_USER_CONFIG)
    # The model's prices, so aider neither fetches litellm's price list (each lookup of an
    # unknown model retried it, 5 s timeout) nor reports a cost of 0.
    metadata = p.tmp / "aider-models.json"
    metadata.write_text(json.dumps({"openai/stub-model": AIDER_MODEL}))
    args = [*AIDER_ARGS, "--model-metadata-file", str(metadata)]
    config = p.tmp / "mullui" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.aider]\nmodel = "openai/stub-model"\nargs = {json.dumps(args)}\n')
    p.env.update(
        OPENAI_API_BASE=stub_url, OPENAI_API_KEY="stub-key", LITELLM_LOCAL_MODEL_COST_MAP="True"
    )
    return [user]


def setup_claude(p: Pipeline, stub_url: str) -> list[Path]:
    """A HOME in which Claude Code starts straight into a session on the stub
    (``claude_env.make_claude_home``); the user's own settings file, which must stay
    untouched."""
    from tests.support.claude_env import make_claude_home

    home = make_claude_home(p.home, [p.repo], base_url=stub_url)
    p.env.update(home.env)
    return [home.user_settings]


def setup_codex(p: Pipeline, stub_url: str) -> list[Path]:
    """The user's ``~/.codex/config.toml`` trusting the repository (Codex extends that to
    its worktrees) and mullui's ``[profiles.codex]`` pointing Codex at the stub."""
    codex_home = p.home / ".codex"
    codex_home.mkdir(parents=True)
    user = codex_home / "config.toml"
    user.write_text(f'[projects."{p.repo}"]\ntrust_level = "trusted"\n')
    provider = f'{{name="stub", base_url="{stub_url}", wire_api="responses"}}'
    args = ["-c", 'model_provider="stub"', "-c", f"model_providers.stub={provider}"]
    config = p.tmp / "mullui" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.codex]\nmodel = "gpt-5"\nargs = {json.dumps(args)}\n')
    p.env.update(CODEX_HOME=str(codex_home))
    return [user]
