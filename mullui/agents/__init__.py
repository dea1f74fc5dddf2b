"""Agent profiles: one module per agent CLI behind ``base.Profile``."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from mullui.agents.base import Profile
from mullui.agents.shell import CustomProfile
from mullui.errors import MulluiError
from mullui.usage import prices_from_config

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


#: Profiles that price their own usage events (in the hook process).
PRICED = ("claude", "codex")


def _prices_from_env() -> dict[str, Any]:
    """``[prices]`` from config, as the spawning mullui wrote them for this agent's hooks
    (``MULLUI_PRICES``): the hook process itself never parses the user's config."""
    path = os.environ.get("MULLUI_PRICES")
    if not path:
        return {}
    try:
        table = json.loads(Path(path).read_text())
        return dict(prices_from_config(table))
    except (OSError, ValueError, MulluiError):
        return {}


def get_profile(name: str, profiles_config: dict[str, dict[str, Any]] | None = None) -> Profile:
    """The profile called ``name``: built in, or ``[profiles.NAME]`` from config."""
    options = (profiles_config or {}).get(name, {})
    if name in BUILTIN and "command" not in options:
        mod, _, cls = BUILTIN[name].partition(":")
        try:
            klass = getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError) as e:
            raise MulluiError(f"profile {name!r} is not available in this build ({e})") from e
        kwargs: dict[str, Any] = {}
        if name in PRICED:
            prices = _prices_from_env()
            if prices:
                kwargs["prices"] = prices
        profile: Profile = klass(**kwargs)
        return profile
    if options:
        return CustomProfile(name, options)
    known = ", ".join(sorted(set(BUILTIN) | set(profiles_config or {})))
    raise MulluiError(
        f"unknown agent profile {name!r}: use one of {known}, or add [profiles.{name}]"
    )
