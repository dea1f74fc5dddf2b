"""The collision guard's index: after each pass, which files each agent has changed.

One small file per repository (``mullui.guard`` owns its format and reads it from agents'
edit hooks, without git).  Written atomically and only when its content changed, so an
idle fleet writes nothing; a repository whose agents have all been merged or removed gets
an index with no files (nothing left to guard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mullui import guard
from mullui.agents import get_profile
from mullui.collisions import ChangeSet
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent
from mullui.radar.members import eligible


def _guard_event(profile: str, profiles: Mapping[str, Any]) -> str | None:
    """The edit hook event the agent's CLI sends (None: none, or a profile no longer
    configured: nothing it sends can be answered from a table)."""
    try:
        return get_profile(profile, dict(profiles)).guard_event
    except MulluiError:
        return None


def publish(ctx: Context, local: Sequence[Agent], sets: Mapping[str, ChangeSet]) -> None:
    """Write every repository's index from this pass: its eligible agents and their files
    (``sets``: change sets by agent id; an agent without one has no files yet)."""
    cfg = ctx.config
    profiles = {
        name: str(opts["guard"])
        for name, opts in cfg.profiles.items()
        if isinstance(opts, dict) and isinstance(opts.get("guard"), str)
    }
    by_repo: dict[str, list[Agent]] = {}
    for a in local:
        if a.repo and a.host is None:
            by_repo.setdefault(a.repo, []).append(a)
    for repo, agents in by_repo.items():
        members: dict[str, dict[str, Any]] = {}
        files: dict[str, list[str]] = {}
        for a in agents:
            if not eligible(a):
                continue
            override = a.extra.get("guard")
            members[a.id] = {
                "name": a.name,
                "branch": a.branch,
                "worktree": a.worktree,
                "profile": a.profile,
                "guard": override if isinstance(override, str) else None,
                "event": _guard_event(a.profile, cfg.profiles),
            }
            cs = sets.get(a.id)
            for f in cs.files if cs is not None else ():
                files.setdefault(f, []).append(a.id)
        doc = guard.build_index(repo, members, files, cfg.collisions_guard, profiles)
        try:
            guard.write_index(ctx.paths.state_dir, doc)
        except (OSError, MulluiError) as e:  # a full disk must not stop the radar
            raise MulluiError(f"collision guard index for {repo} not written: {e}") from e
