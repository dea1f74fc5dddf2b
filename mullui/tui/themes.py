"""Themes as data: every ``themes/*.toml`` shipped plus the user's own, as Textual themes.

A theme file holds Textual's ``Theme`` fields (``name``, ``primary``, ``background``, ...,
``dark``) and an optional ``[variables]`` table.  mullui reads a few variables of its
own (``state-working``, ``state-blocked``, ``state-done``, ``state-failed``,
``state-idle``) to colour agent states; a theme without them gets colours derived from
its ``primary`` / ``warning`` / ``success`` / ``error``.

The chosen theme is remembered in ``Paths.ui_state`` (a small JSON file), not in
``config.toml``: the user's hand-written config is never rewritten behind their back.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.theme import Theme

from mullui.errors import MulluiError
from mullui.paths import Paths
from mullui.store import atomic_write_json
from mullui.tui.cells import FALLBACK_COLOURS

DEFAULT_THEME = "mullui-dark"

_THEME_FIELDS = {
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "dark",
    "luminosity_spread",
    "text_alpha",
}

STATE_VARIABLES = ("state-working", "state-blocked", "state-done", "state-failed", "state-idle")


def state_colours(theme: Theme) -> dict[str, str]:
    """The state colours of ``theme``: its ``state-*`` variables, else from its palette."""
    derived = {
        "state-working": theme.primary,
        "state-blocked": theme.warning or FALLBACK_COLOURS["state-blocked"],
        "state-done": theme.success or FALLBACK_COLOURS["state-done"],
        "state-failed": theme.error or FALLBACK_COLOURS["state-failed"],
        "state-idle": FALLBACK_COLOURS["state-idle"],
    }
    for k in STATE_VARIABLES:
        if k in theme.variables:
            derived[k] = theme.variables[k]
    return derived


def builtin_theme_dirs() -> list[Path]:
    """Where shipped themes live: ``themes/`` at the top of a source checkout (or an
    editable install), and ``mullui/themes/`` inside an installed wheel."""
    pkg = Path(__file__).resolve().parent.parent
    return [d for d in (pkg.parent / "themes", pkg / "themes") if d.is_dir()]


@dataclass(frozen=True)
class ThemeProblem:
    """A theme file that could not be loaded (shown once as a notification)."""

    path: Path
    message: str


def theme_from_toml(path: Path) -> Theme:
    """One theme file as a Textual ``Theme``; raises MulluiError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise MulluiError(f"{path}: cannot read theme ({e})") from e
    except tomllib.TOMLDecodeError as e:
        raise MulluiError(f"{path}: not valid TOML ({e})") from e
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise MulluiError(f"{path}: `name` must be a non-empty string")
    if not isinstance(data.get("primary"), str):
        raise MulluiError(f'{path}: `primary` (a colour like "#7AA2F7") is required')
    unknown = set(data) - _THEME_FIELDS - {"name", "variables"}
    if unknown:
        raise MulluiError(f"{path}: unknown key {sorted(unknown)[0]!r} in theme")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise MulluiError(f"{path}: [variables] must be a table of strings")
    kw: dict[str, Any] = {k: v for k, v in data.items() if k in _THEME_FIELDS}
    try:
        theme = Theme(name=name, variables=dict(variables), **kw)
        theme.to_color_system()  # parse the colours now, so a typo names its file
    except Exception as e:  # Textual raises ColorParseError / TypeError / ValueError
        raise MulluiError(f"{path}: {e}") from e
    return theme


def load_themes(paths: Paths) -> tuple[list[Theme], list[ThemeProblem]]:
    """Every shipped theme, then the user's (a user theme with a shipped name wins)."""
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    dirs = [*builtin_theme_dirs(), paths.user_themes_dir]
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            try:
                t = theme_from_toml(f)
            except MulluiError as e:
                problems.append(ThemeProblem(f, e.message))
                continue
            themes[t.name] = t
    return list(themes.values()), problems


def remembered_theme(paths: Paths) -> str | None:
    """The theme last chosen in the TUI, if any."""
    try:
        data = json.loads(paths.ui_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) else None


def remember_theme(paths: Paths, name: str) -> None:
    """Persist the chosen theme (atomic replace; other UI keys are kept)."""
    try:
        data = json.loads(paths.ui_state.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data["theme"] = name
    atomic_write_json(paths.ui_state, data)
