"""Themes are data: shipped files, the user's own, remembered choice, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mullui.errors import MulluiError
from mullui.paths import Paths
from mullui.tui import themes
from tests.tui.conftest import make_app, until


def test_shipped_themes_load_dark_and_light(paths: Paths) -> None:
    loaded, problems = themes.load_themes(paths)
    names = {t.name: t for t in loaded}
    assert problems == []
    assert names["mullui-dark"].dark and not names["mullui-light"].dark
    for t in ("mullui-dark", "mullui-light"):
        assert set(themes.STATE_VARIABLES) <= set(names[t].variables)


def test_a_broken_theme_names_its_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nprimary = "not-a-colour"\n')
    with pytest.raises(MulluiError, match="bad.toml"):
        themes.theme_from_toml(bad)
    bad.write_text('name = "bad"\nprimary = "#fff"\nflavour = "x"\n')
    with pytest.raises(MulluiError, match="unknown key 'flavour'"):
        themes.theme_from_toml(bad)


async def test_user_theme_is_offered_and_the_choice_remembered(paths: Paths) -> None:
    paths.user_themes_dir.mkdir(parents=True, exist_ok=True)
    (paths.user_themes_dir / "mine.toml").write_text(
        'name = "mine"\nprimary = "#ff8800"\nbackground = "#101010"\n'
    )
    (paths.user_themes_dir / "broken.toml").write_text("name = \n")
    app = make_app(paths)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "mine" in app.available_themes
        assert app.theme == "mullui-dark"  # the default
        assert any("broken.toml" in str(n.message) for n in app._notifications)
        app.theme = "mine"
        await until(pilot, lambda: themes.remembered_theme(paths) == "mine")
        assert app.state_colours()["state-working"] == "#ff8800"  # derived from primary

    again = make_app(paths)
    async with again.run_test() as pilot:
        await pilot.pause()
        assert again.theme == "mine"
