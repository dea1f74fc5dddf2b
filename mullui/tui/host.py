"""What a flow needs of the app: a flow is one key's work, from the selected agent through
its dialog to the workspace call (merge asks, then merges), and lives beside its screen.

Flows take a :class:`Host` (the app is the one there is) instead of importing the app,
so the screens' modules sit below ``app.py`` and nothing imports back up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen

from mullui.model import Agent
from mullui.tui.adapter import AgentActions

R = TypeVar("R")
Clock = Callable[[], datetime]


class Host(Protocol):
    actions: AgentActions
    now: Clock
    default_profile: str

    @property
    def agents(self) -> dict[str, Agent]: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None: ...

    def show(self, screen: Screen[R], then: Callable[[R | None], None] | None = None) -> None:
        """Push ``screen``; ``then`` gets what it is dismissed with."""

    def close(self, screen: Screen[Any]) -> None:
        """Pop ``screen`` if it is the one on top."""

    def blocking(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        agent_id: str | None = None,
        done: Callable[[Any], str] | None = None,
        then: Callable[[Any], None] | None = None,
        on_error: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> object:
        """Run a blocking workspace call off the UI thread; a refusal is a toast."""

    def quiet_for_dialog(self) -> None:
        """Clear the toasts before a dialog (they would hide its question)."""

    def started(self, a: Agent) -> None:
        """A new agent exists: show it, selected."""

    def log_path(self, a: Agent) -> Path | None: ...
