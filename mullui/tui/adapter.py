"""The one place the TUI meets the core: the workspace (actions) and the supervisor
(changes in, notifications out).

``AgentActions`` is the part of ``mullui.workspace.Workspace`` the TUI calls; every method
blocks (tmux, git), so the app calls them from thread workers.  :class:`Pipeline` runs a
``Supervisor`` inside the app's event loop that *follows* the change journal: the one that
notifies and runs the queue is a hidden ``mullui watch`` (started when something is live),
so it outlives the TUI however the TUI ends, and any number of TUIs may be open.  Nothing
ever takes the lock from its holder.  Only when no watch may be started
(``MULLUI_WATCH_AUTOSTART=0``) and none runs does the TUI supervise itself while open.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mullui.errors import MulluiError
from mullui.model import Agent
from mullui.operations.location import Resume
from mullui.paths import Paths

#: ``on_change(agent, transitions)`` as the Supervisor calls it.
OnChange = Callable[[Agent, Any], None]
#: ``toast(agent_id, title, body)``: an in-app notice from the notifier.
Toast = Callable[[str, str, str], None]
#: ``on_action(agent_id, action)``: a notification clicked ("attach", "snooze", "select").
OnAction = Callable[[str, str], None]


class AgentActions(Protocol):
    """What the TUI asks of the workspace.  Every method may raise MulluiError."""

    paths: Paths

    def agents(self) -> list[Agent]: ...

    def spawn(
        self,
        task: str,
        *,
        agent: str | None = None,
        name: str | None = None,
        base: str | None = None,
        after: str | None = None,
        chain: str | None = None,
        host: str | None = None,
    ) -> Agent: ...

    def send(self, ref: str, text: str) -> Any: ...

    def reply_hint(self, a: Agent) -> str | None: ...

    def attach_argv(self, ref: str) -> list[str] | None: ...

    def stop(self, ref: str) -> Any: ...

    def resume(self, ref: str, how: Resume | None = None) -> Agent: ...

    def snooze(
        self,
        ref: str,
        *,
        minutes: int | None = None,
        until: datetime | None = None,
        until_change: bool = False,
    ) -> Any: ...

    def wake(self, ref: str) -> Any: ...

    def ack(self, ref: str) -> Any: ...

    def merge(self, ref: str, into: str | None = None) -> str: ...

    def diff(self, ref: str, *, color: bool = True) -> str: ...

    def log_path(self, ref: str) -> Path: ...

    def profile_names(self) -> list[str]: ...

    def current_branch(self) -> str | None: ...

    def repo_or_none(self) -> Path | None: ...


def open_actions(paths: Paths, cwd: Path | None = None) -> AgentActions:
    from mullui.workspace import Workspace

    ws: AgentActions = Workspace(paths=paths, cwd=cwd)
    return ws


class Pipeline:
    """The supervisor loop run by the TUI, with its lock and notifier."""

    def __init__(
        self,
        actions: AgentActions,
        *,
        on_change: OnChange,
        toast: Toast,
        on_action: OnAction,
        is_focused: Callable[[str], bool],
        on_config: Callable[[str | None, str | None], None] | None = None,
        on_gone: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.actions = actions
        #: the ids of agents that left the live store (folded into the history)
        self.on_gone = on_gone
        #: (a reload's line, None) or (None, an invalid edit's error / None when fixed)
        self.on_config = on_config
        self.on_change = on_change
        self.toast = toast
        self.on_action = on_action
        self.is_focused = is_focused
        self.supervisor: Any = None
        self.notifier: Any = None
        self.lock: Any = None
        self.owner = False  # True: we hold supervisor.lock and send the notifications
        self.autostart = True  # a hidden `mullui watch` supervises (not this TUI)
        self.standby: Any = None  # loop.Standby: takes over when that watch dies

    async def run(self) -> None:
        from mullui import autostart, loop, watch
        from mullui import supervisor as sup

        ws: Any = self.actions
        self.lock = loop.SupervisorLock(ws.paths.supervisor_lock)
        self.autostart = autostart.enabled()
        if self.autostart:
            if loop.needs_supervisor(ws.store.all()):
                loop.ensure_running(ws, started_by="tui")
            else:  # nothing to start one for yet: remember how, for agents' hooks
                loop.ensure_running(ws, started_by="tui", start=False)
        else:
            self.owner = self.lock.acquire()
        if self.owner:
            try:
                self.notifier = watch.make_notifier(
                    ws,
                    self.on_action,
                    terminal=None,  # a notification written to the tty would tear the TUI
                    toast=self.toast,
                    is_focused=self.is_focused,
                    in_app=watch.tui_focused(ws),
                )
                if self.notifier is not None:
                    await self.notifier.start()
            except MulluiError as e:
                print(f"mullui: notifications off: {e}", file=sys.stderr)
                self.notifier = None
            self.supervisor = sup.Supervisor(
                ws,
                on_change=self.on_change,
                notifier=self.notifier,
                on_config=self.on_config,
                on_gone=self.on_gone,
            )
        else:
            # The watch supervises: follow the changes, notify nobody, start nothing;
            # whatever became live makes sure a watch runs (one refused flock if it does),
            # and a standby takes over the moment that watch dies (no event needed).
            if self.autostart:
                self.standby = loop.Standby(ws, started_by="tui").start()
            self.supervisor = sup.Supervisor(
                ws,
                on_change=self._follow,
                notify=False,
                run_queue=False,
                on_config=self.on_config,
                on_gone=self.on_gone,
            )
        await self.supervisor.run()

    def _follow(self, agent: Agent, transitions: Any) -> None:
        from mullui import loop

        self.on_change(agent, transitions)
        if self.autostart and loop.needs_supervisor([agent]):
            # The standby starts a watch if none runs (it is blocked on the lock while one
            # does): a wake-up costs nothing per change.
            self.standby.wake()

    def status_line(self) -> str:
        """Who supervises, for the TUI's status line (reads /proc/locks: call it from a
        timer or after a change, not per frame)."""
        from mullui import watch

        if self.owner:
            return "supervisor: this TUI"
        try:
            return watch.supervisor_line(self.actions)  # type: ignore[arg-type]
        except MulluiError as e:
            return f"supervisor: unknown ({e.message})"

    def poke(self, agent_id: str | None = None) -> None:
        """Catch up now (after one of our own actions)."""
        if self.supervisor is not None:
            self.supervisor.poke(agent_id)

    async def stop(self) -> None:
        """Quit or hand over: popups the supervisor already decided on still go out
        (its cursor counts them as told), then the notifier closes and the lock goes."""
        from mullui import watch

        if self.standby is not None:
            self.standby.close()
        if self.supervisor is not None:
            await self.supervisor.stop()
            if self.owner:
                try:
                    await watch.finish_notifications(self.supervisor, self.notifier)
                except Exception as e:  # quitting must finish whatever the notifier does
                    print(f"mullui: notifications not finished: {e!r}", file=sys.stderr)
                self.notifier = None
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                await self.notifier.close()
        if self.lock is not None and self.owner:
            self.lock.release()
            self.owner = False


def keep_watching(actions: AgentActions) -> bool:
    """After the TUI quits: make sure a supervisor runs while agents are live (a hidden
    ``mullui watch`` usually already does; with autostart off, ``[watch] on_quit``, default
    on, still starts one).  True when a supervisor runs afterwards."""
    from mullui import autostart, loop

    ws: Any = actions
    try:
        on_quit = bool(ws.config.watch_on_quit)
    except MulluiError as e:
        print(f"mullui: {e}", file=sys.stderr)
        return False
    if autostart.held(ws.paths.state_dir):
        return True
    if not on_quit and not autostart.enabled():
        return False
    return bool(loop.ensure_running(ws, started_by="tui", force=on_quit))
