"""The change feed: agents' records in, one render out.

The Supervisor (run here as the :class:`~mullui.tui.adapter.Pipeline`) reports each
change from whichever thread it is on; :meth:`ChangeFeed.on_change` gathers them for a
moment (a burst of 100 events -> one render), applies them to :attr:`ChangeFeed.agents`
on the UI thread and asks the app to render.  When no notifier of ours runs (another TUI
supervises), the feed makes the in-app toasts itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from textual.app import App
from textual.timer import Timer

from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.tui import cells
from mullui.tui.adapter import AgentActions, Pipeline

#: How long changes are gathered before one render (a burst of 100 events -> 1 render).
COALESCE_S = 0.05

TOAST_SEVERITY = {State.BLOCKED: "warning", State.FAILED: "error", State.DONE: "information"}


class ChangeFeed:
    def __init__(
        self,
        app: App[Any],
        actions: AgentActions,
        *,
        now: Callable[[], datetime],
        render: Callable[[], None],
        is_focused: Callable[[str], bool],
        on_action: Callable[[str, str], None],
    ) -> None:
        """``render``: ask for one render; ``is_focused(agent_id)``: the human is looking at
        it (no popup); ``on_action(agent_id, action)``: a notification was clicked."""
        self.app = app
        self.actions = actions
        self.now = now
        self.render = render
        self.is_focused = is_focused
        self.on_action = on_action
        self.agents: dict[str, Agent] = {}
        self.pipeline: Pipeline | None = None
        self._pending: dict[str, Agent] = {}
        self._flush_timer: Timer | None = None
        self._thread = threading.get_ident()

    # ---- start and stop ---------------------------------------------------------------
    def start(self, *, supervise: bool) -> None:
        """On the UI thread, once mounted: the records on disk are shown by the caller;
        the reconciled view follows, then (``supervise``) the live changes."""
        self._thread = threading.get_ident()
        self.reload()
        if supervise:
            self.app.run_worker(self._run(), exclusive=True, group="feed")

    async def _run(self) -> None:
        self.pipeline = Pipeline(
            self.actions,
            on_change=self.on_change,
            toast=self.notifier_toast,
            on_action=self.notification_action,
            is_focused=self.is_focused,
            on_config=self.on_config,
            on_gone=self.on_gone,
        )
        try:
            await self.pipeline.run()
        except MulluiError as e:
            self.app.notify(f"{e.message} (live updates stopped)", severity="error", timeout=15)

    async def stop(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.stop()

    def reload(self) -> None:
        """The workspace's reconciled view (it asks tmux which windows are alive), read
        on a thread."""
        self.app.run_worker(self._load, thread=True, exclusive=True, group="load")

    def _load(self) -> None:
        try:
            agents = self.actions.agents()
        except MulluiError as e:
            self.app.call_from_thread(self.app.notify, e.message, severity="error")
            return
        self.app.call_from_thread(self.apply, agents, False, True)

    def poke(self, agent_id: str | None = None) -> None:
        """Catch up now, after one of our own actions (``None``: every agent)."""
        if self.pipeline is not None:
            self.pipeline.poke(agent_id)
        elif agent_id is None:
            self.reload()

    # ---- changes in -------------------------------------------------------------------
    def from_any_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() == self._thread:
            fn(*args, **kwargs)
        else:
            self.app.call_from_thread(fn, *args, **kwargs)

    def on_config(self, reloaded: str | None, error: str | None) -> None:
        """The supervisor reloaded the config files, or kept an invalid edit out."""
        handler = getattr(self.app, "config_changed", None)
        if handler is not None:
            self.from_any_thread(handler, reloaded, error)

    def on_change(self, agent: Agent, transitions: Any = ()) -> None:
        """The Supervisor's callback (agent, its new transitions); safe from any thread."""
        self.from_any_thread(self._queue_change, agent)

    def on_gone(self, ids: set[str]) -> None:
        """Agents that left the live store (folded into the history: ``ls --all`` and the
        report keep them): their rows go.  Safe from any thread."""
        self.from_any_thread(self._drop, set(ids))

    def _drop(self, ids: set[str]) -> None:
        for i in ids:
            self._pending.pop(i, None)
        dropped = [i for i in ids if self.agents.pop(i, None) is not None]
        if dropped:
            self.render()

    def _queue_change(self, agent: Agent) -> None:
        self._pending[agent.id] = agent
        if self._flush_timer is None:
            self._flush_timer = self.app.set_timer(COALESCE_S, self._flush_changes)

    def _flush_changes(self) -> None:
        self._flush_timer = None
        pending, self._pending = self._pending, {}
        self.apply(pending.values())

    @property
    def notifies(self) -> bool:
        """A notifier (ours, as the supervisor) sends the toasts; else we make our own."""
        return self.pipeline is not None and self.pipeline.notifier is not None

    def apply(self, agents: Iterable[Agent], toast: bool = True, whole: bool = False) -> None:
        """Take in current records (from the feed, a refresh or a test) and re-render;
        ``whole``: these are all the live agents (a reload), any other row goes."""
        agents = list(agents)
        if whole:
            ids = {a.id for a in agents}
            spool = self.actions.paths.spool_file
            # Not in the list and no events: gone (one spawned since the list was read
            # has its spool, and stays).
            for gone in [i for i in self.agents if i not in ids and not spool(i).exists()]:
                self.agents.pop(gone, None)
        for a in agents:
            old = self.agents.get(a.id)
            if a.removed:
                self.agents.pop(a.id, None)
                continue
            self.agents[a.id] = a
            if not toast or self.notifies or old is None or not a.in_inbox(self.now()):
                continue
            if old.seq != a.seq:
                sev = TOAST_SEVERITY.get(a.state)
                if sev:
                    self.app.notify(
                        cells.why(a),
                        title=f"{a.name} {a.state.value}",
                        severity=sev,  # type: ignore[arg-type]
                    )
            if not old.has_conflict_item() and cells.conflict_shown(a):
                label = cells.conflict_label(a)
                self.app.notify(cells.why(a), title=f"{a.name}: {label}", severity="error")
        self.render()

    # ---- the notifier's side ------------------------------------------------------------
    def notifier_toast(self, agent_id: str, title: str, body: str) -> None:
        """The notifier's in-app notice (deduplicated and coalesced like the popups)."""
        a = self.agents.get(agent_id)
        sev = TOAST_SEVERITY.get(a.state, "information") if a else "information"
        self.from_any_thread(self.app.notify, body, title=title, severity=sev)

    def notification_action(self, agent_id: str, action: str) -> None:
        """A desktop notification (or one of its buttons) was clicked."""
        self.from_any_thread(self.on_action, agent_id, action)
