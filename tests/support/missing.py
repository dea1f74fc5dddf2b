"""A test that needs a system piece this machine lacks: skipped on a developer's machine,
a failure under CI (``CI=true``), where ``.ci/run`` installs every piece and runs as root,
so a skip there would hide a broken install step."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str) -> NoReturn:
    """Skip (locally) or fail (under CI) because ``what`` is not available here."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what}: .ci/run provides it, so CI must not skip", pytrace=False)
    pytest.skip(what)
