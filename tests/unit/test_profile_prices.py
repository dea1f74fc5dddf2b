"""[prices] from config reach the hook process's usage pricing through MULLUI_PRICES."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mullui.agents import get_profile


def test_config_prices_reach_priced_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"claude-sonnet-4-5": {"output": 99.0}}))
    monkeypatch.setenv("MULLUI_PRICES", str(f))
    claude = get_profile("claude")
    assert claude.prices["claude-sonnet-4-5"].output == 99.0  # type: ignore[attr-defined]
    assert claude.prices["claude-sonnet-4-5"].input == 3.0  # type: ignore[attr-defined]


def test_broken_prices_file_falls_back_to_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "prices.json"
    f.write_text("{torn")
    monkeypatch.setenv("MULLUI_PRICES", str(f))
    assert get_profile("claude").prices == {}  # type: ignore[attr-defined]
