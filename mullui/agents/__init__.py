"""Agent profiles: one module per agent CLI behind ``base.Profile``."""

from __future__ import annotations

import importlib
from typing import Any

from mullui.agents.base import Profile
from mullui.errors import MulluiError

# name -> "module:Class"; imported lazily so `mullui hook` stays fast.
BUILTIN: dict[str, str] = {
    "shell": "mullui.agents.shell:ShellProfile",
    "claude": "mullui.agents.claude:ClaudeProfile",
    "codex": "mullui.agents.codex:CodexProfile",
    "aider": "mullui.agents.aider:AiderProfile",
    "gemini": "mullui.agents.gemini:GeminiProfile",
    "opencode": "mullui.agents.opencode:OpenCodeProfile",
    "demo": "mullui.agents.demo:DemoProfile",
}


def get_profile(name: str, profiles_config: dict[str, dict[str, Any]] | None = None) -> Profile:
    """The profile called ``name``: built in, or ``[profiles.NAME]`` from config."""
    options = (profiles_config or {}).get(name, {})
    if name in BUILTIN and "command" not in options:
        mod, _, cls = BUILTIN[name].partition(":")
        try:
            klass = getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError) as e:
            raise MulluiError(f"profile {name!r} is not available in this build ({e})") from e
        profile: Profile = klass()
        return profile
    if options:
        from mullui.agents.shell import CustomProfile

        return CustomProfile(name, options)
    known = ", ".join(sorted(set(BUILTIN) | set(profiles_config or {})))
    raise MulluiError(
        f"unknown agent profile {name!r}: use one of {known}, or add [profiles.{name}]"
    )
