"""Where an agent runs: one interface, one implementation per kind of place.

An agent's location is chosen once (``mullui.operations.locations.location_for``) and
every operation on the agent goes through it: this machine (``local.py``: tmux +
worktrees) or a host over SSH (``mullui.remote.dispatch``: the host's own mullui).  A new
kind of place (a container, say) is one more module with a class implementing this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from mullui.context import Context
from mullui.model import RESUME_MANUAL, Agent


@dataclass(frozen=True)
class Resume:
    """How to start a stopped or failed agent again (``mullui resume``)."""

    #: what the agent receives on resume (None: the configured / profile's default;
    #: "": nothing, the conversation just reopens)
    prompt: str | None = None
    #: the cause its history records: ``resume:manual`` or ``resume:after-restart``
    cause: str = RESUME_MANUAL
    #: start it again with its task, a new conversation (the CLI cannot resume this one)
    fresh: bool = False
    #: raise this agent's own ``max_cost_usd`` to this many dollars first
    budget: float | None = None
    #: make its worktree again from its branch when it was removed by hand
    recreate: bool = False


class Location(ABC):
    """The operations whose doing depends on where the agent runs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @abstractmethod
    def spawn(
        self,
        task: str,
        *,
        agent: str | None,
        name: str | None,
        base: str | None,
        after: str | None,
        extra: dict[str, Any] | None,
    ) -> Agent:
        """Create an agent here; start it now or leave it queued (the limits decide)."""

    @abstractmethod
    def start(self, a: Agent) -> Agent:
        """Launch a queued agent (the queue's tick calls this)."""

    @abstractmethod
    def resume(self, a: Agent, how: Resume) -> Agent:
        """Start a stopped or failed agent again in its own worktree and branch, continuing
        its CLI's conversation (now, or queued when ``max_running`` has no free slot);
        refuses with one line and changes nothing when it cannot."""

    @abstractmethod
    def send(self, a: Agent, text: str, *, raw: bool = False) -> None:
        """Type the reply ``text`` into the agent's pane: + Enter, or - while it is blocked
        on its CLI's permission dialog - as that dialog's keys (``raw``: exactly ``text``
        + Enter, whatever the agent waits on)."""

    @abstractmethod
    def stop(self, a: Agent) -> Agent:
        """Stop the agent's process at the user's request; its work stays."""

    @abstractmethod
    def halt(self, a: Agent) -> None:
        """Stop the process of an agent already marked failed (over budget)."""

    @abstractmethod
    def release(self, a: Agent) -> None:
        """The agent's process has ended: free what it held (its worktree's lock)."""

    @abstractmethod
    def rm(self, a: Agent, *, force: bool = False) -> tuple[Agent, str | None]:
        """Remove the agent's worktree and window, refusing to lose work; returns the
        record and the sha that uncommitted work was saved as (``--force``)."""

    @abstractmethod
    def attach_argv(self, a: Agent) -> list[str] | None:
        """The argv that shows the agent's pane in this terminal (None: done already)."""

    @abstractmethod
    def diff(self, a: Agent, *, color: bool = True) -> str:
        """The agent's changes against its base."""

    @abstractmethod
    def logs(self, a: Agent, *, follow: bool = False, raw: bool = False) -> int:
        """Print the agent's pane log (``follow``: until the agent ends; ``raw``: every
        byte, escape sequences unfiltered); exit status."""

    @abstractmethod
    def branch_here(self, a: Agent) -> Agent:
        """The agent as seen from the local repository, its branch there, ready for a
        merge (a remote agent's branch is fetched first)."""
