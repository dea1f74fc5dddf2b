"""A throw-away HOME in which the real Claude Code CLI starts straight into a session.

A fresh HOME would stop Claude Code at its first-run screens (theme, login, "do you trust
this folder", "use this API key?").  Pre-answering them in ``~/.claude.json`` is enough
(Claude Code 2.1.197):

- ``hasCompletedOnboarding: true`` skips the theme/login walkthrough;
- ``customApiKeyResponses.approved`` holds the *last 20 characters* of an approved
  ``ANTHROPIC_API_KEY``;
- ``projects[<repo>].hasTrustDialogAccepted: true`` skips the trust dialog (a git
  worktree inherits its main repository's answer, so the main repo path is enough).

Do not add the legacy ``autoUpdates: false``: 2.1.197 "migrates" it by rewriting the
user's ``~/.claude/settings.json`` (adds ``env.DISABLE_AUTOUPDATER``), which would break
the promise that the user's settings stay untouched.  ``DISABLE_AUTOUPDATER=1`` in the
environment does the same job without a write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

#: a key the stub accepts; any string works, only its last 20 characters are recorded
DEFAULT_API_KEY = "sk-ant-api03-mullui-test-key-0123456789abcdefghij"

#: what the fake user's own ~/.claude/settings.json holds; tests assert it is untouched
USER_SETTINGS = {"theme": "dark", "env": {"MULLUI_TEST_USER_SETTING": "1"}}


@dataclass(frozen=True)
class ClaudeHome:
    home: Path
    env: dict[str, str]  # the full environment for the agent's process
    user_settings: Path  # ~/.claude/settings.json (pre-filled, must stay byte-identical)


def make_claude_home(
    home: Path,
    repos: list[Path],
    *,
    base_url: str,
    api_key: str = DEFAULT_API_KEY,
    extra_env: dict[str, str] | None = None,
) -> ClaudeHome:
    """Create ``home`` with a pre-answered ``.claude.json`` trusting ``repos``; return the
    environment that runs ``claude`` against ``base_url`` inside it."""
    home.mkdir(parents=True, exist_ok=True)
    state = {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": "2.1.197",
        "theme": "dark",
        "numStartups": 1,
        "bypassPermissionsModeAccepted": False,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {
            str(r.resolve()): {
                "hasTrustDialogAccepted": True,
                "hasCompletedProjectOnboarding": True,
                "allowedTools": [],
            }
            for r in repos
        },
    }
    (home / ".claude.json").write_text(json.dumps(state, indent=2))
    settings_dir = home / ".claude"
    settings_dir.mkdir(exist_ok=True)
    user_settings = settings_dir / "settings.json"
    user_settings.write_text(json.dumps(USER_SETTINGS, indent=2) + "\n")

    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "USER": os.environ.get("USER", "mullui"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "SHELL": "/bin/bash",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        # No internet in CI: skip telemetry, error reporting, update checks and the other
        # side traffic that would otherwise wait on DNS/connect timeouts.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra_env or {})
    return ClaudeHome(home=home, env=env, user_settings=user_settings)
