"""The mullui App: the composition root of the TUI.

It holds the workspace (``actions``), the change feed (:mod:`mullui.tui.feed`: records
in, one render out) and the theme, and hands the main screen what it shows.  Keys and the
palette (:mod:`mullui.tui.commands`) run ``action_*`` here; each picks the selected agent
and hands it to its flow, which lives beside its screen (``screens/merge.py``'s
``merge``...) and reaches the app only through :class:`~mullui.tui.host.Host`.  Screens
tell the app things with messages (:mod:`mullui.tui.messages`), never by importing it.
Blocking workspace calls (tmux, git) run in thread workers (:meth:`MulluiApp.blocking`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from textual import events, work
from textual.app import App, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Collapsible

from mullui import presence
from mullui.errors import MulluiError
from mullui.model import RUNNING, Agent, State
from mullui.paths import Paths, get_paths
from mullui.store import Store
from mullui.tui import commands, literal, messages, themes
from mullui.tui.adapter import AgentActions, keep_watching, open_actions
from mullui.tui.feed import ChangeFeed
from mullui.tui.focus import TerminalFocus
from mullui.tui.screens import (
    confirm,
    merge,
    new_agent,
    reply,
    report,
    resume,
    snooze,
    text_view,
)
from mullui.tui.screens.collisions import CollisionsScreen, check_with_radar
from mullui.tui.screens.help import HelpScreen
from mullui.tui.screens.main import MainScreen

Clock = Callable[[], datetime]
R = TypeVar("R")

#: "waited 12m" columns advance on this one app-wide timer (no per-agent timers).
TICK_S = 30.0

#: Running or queued: a supervisor is still needed after the TUI quits.
STILL_GOING = RUNNING | {State.QUEUED}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MulluiApp(App[None]):
    """The full-screen TUI.  Quitting never stops agents."""

    CSS_PATH = "app.tcss"
    TITLE = "mullui"
    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (160, "-wide"),
    ]
    BINDINGS = [Binding("ctrl+c", "quit", "quit", show=False, priority=True)]
    COMMANDS = App.COMMANDS | {commands.MulluiCommands}

    def __init__(
        self,
        *,
        paths: Paths | None = None,
        actions: AgentActions | None = None,
        clock: Clock | None = None,
        supervise: bool = True,
        cwd: Path | None = None,
        title: str | None = None,
        default_profile: str = "claude",
    ) -> None:
        super().__init__()
        self.paths = paths or get_paths()
        self.store = Store(self.paths)
        self.actions: AgentActions = actions or open_actions(self.paths, cwd)
        self.now: Clock = clock or _utcnow
        self.supervise = supervise
        self.default_profile = default_profile
        if title:
            self.title = literal.visible(title)
        self.feed = ChangeFeed(
            self,
            self.actions,
            now=self.now,
            render=self.request_render,
            is_focused=self._is_focused,
            on_action=self._notification_clicked,
        )
        #: whether the human looks at this TUI, for the watch's popups (mullui.presence)
        self.terminal_focus = TerminalFocus(self.paths.state_dir, self._popup_clicked)
        self._wake_timer: Timer | None = None
        self._render_queued = False
        self._colours: tuple[str, dict[str, str]] | None = None
        self.theme_problems: list[themes.ThemeProblem] = []
        self.foreground_runs: list[list[str]] = []  # argv run while suspended (attach)
        #: the error of a config edit kept out (the last good config stays), shown on the
        #: status line until the file is fixed
        self.config_error: str | None = None
        #: who supervises, shown only when nobody does while agents are live
        self._supervisor_line: str | None = None
        self._supervisor_checked_at = float("-inf")

    @property
    def agents(self) -> dict[str, Agent]:
        """Every agent, current (the feed's view)."""
        return self.feed.agents

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every toast is literal: its text names agents, branches, files and quotes what
        agents said, so it is never parsed as markup (``[/tmp/x]`` raised MarkupError,
        ``[@click=...]`` became an action) and its control characters are made visible."""
        super().notify(
            literal.visible(message, one_line=False),
            title=literal.visible(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # ---- start ----------------------------------------------------------------------
    def on_mount(self) -> None:
        loaded, self.theme_problems = themes.load_themes(self.paths)
        for t in loaded:
            self.register_theme(t)
        wanted = themes.remembered_theme(self.paths) or themes.DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for p in self.theme_problems:
            self.notify(p.message, title="theme not loaded", severity="warning", timeout=8)
        self._trust_notice()
        if hasattr(self.actions, "notice"):
            # What the workspace tells the user in one line (a spawn's uncommitted files
            # it leaves out, an ack of unmerged work): a toast, from whichever thread.
            self.actions.notice = self._workspace_notice
        self.push_screen(MainScreen(self.log_path))
        # A fast first frame from the records on disk, then the workspace's reconciled
        # view (it asks tmux which windows are alive) from a thread, then the live feed.
        self.feed.apply(self.store.all(), toast=False)
        self.feed.start(supervise=self.supervise)
        if self.supervise:
            # Only a TUI that shows live changes may hold the watch's popups back.
            self.run_worker(self.terminal_focus.run(), group="presence")
            # immediate: attach runs its child on this thread, so a posted callback would
            # only run once the human is back.
            self.app_suspend_signal.subscribe(self, lambda _: self._suspended(True), True)
            self.app_resume_signal.subscribe(self, lambda _: self._suspended(False), True)
        self.set_interval(TICK_S, self.request_render)

    def _trust_notice(self) -> None:
        """What the repository's untrusted ``.mullui.toml`` could not set, and how to
        trust it (the config is loaded before the app starts: no I/O here)."""
        try:
            notice = self.actions.config.trust_notice()  # type: ignore[attr-defined]
        except (AttributeError, MulluiError):
            return
        if notice:
            self.notify(
                notice,
                title="repository config not trusted",
                severity="warning",
                timeout=20,
                markup=False,
            )

    def _workspace_notice(self, line: str) -> None:
        self.feed.from_any_thread(self.notify, line, severity="warning", timeout=12)

    async def on_unmount(self) -> None:
        self.terminal_focus.close()
        await self.feed.stop()

    # ---- where the human looks (the watch's popups wait while they look here) -----------
    def on_app_focus(self, _: events.AppFocus) -> None:
        """The terminal reported focus-in (runs before Textual sets ``app_focus``)."""
        self.terminal_focus.terminal_reported(True)

    def on_app_blur(self, _: events.AppBlur) -> None:
        self.terminal_focus.terminal_reported(False)

    def watch_app_focus(self, focused: bool) -> None:
        if focused:  # a key or click after a focus-out (Textual's own rule)
            self.terminal_focus.key_after_blur()

    def _suspended(self, suspended: bool) -> None:
        self.terminal_focus.set_suspended(suspended)

    def _popup_clicked(self, agent_id: str, action: str) -> None:
        """A popup of the watch was clicked (a request file the watch wrote for us)."""
        if agent_id not in self.agents:
            # Clicked before our feed brought its change: read its record, show it now.
            a = self.store.get(agent_id)
            if a is None or a.removed:
                self.notify(f"no agent {agent_id} any more", severity="warning")
                return
            self.feed.apply([a], toast=False)
            self._render()
        self._notification_clicked(agent_id, action)

    def _notification_clicked(self, agent_id: str, action: str) -> None:
        """A desktop notification (or one of its buttons) was clicked (UI thread)."""
        self.select_agent(agent_id)
        if action == "attach":
            self.action_attach()
        elif action == "snooze":
            self.action_snooze()

    def _is_focused(self, agent_id: str) -> bool:
        """The human is looking at this agent now (its row selected, and the terminal
        reported focus: ``app_focus`` alone is True in a terminal that never reports, even
        with the human away): nothing needed, not even a toast."""
        if self.terminal_focus.written != presence.FOCUSED:
            return False
        try:
            return self.main.selected_id == agent_id
        except LookupError:
            return False

    @property
    def main(self) -> MainScreen:
        for s in self.screen_stack:
            if isinstance(s, MainScreen):
                return s
        raise LookupError("main screen not mounted")

    # ---- rendering --------------------------------------------------------------------
    def config_changed(self, reloaded: str | None, error: str | None) -> None:
        """The running supervisor reloaded the config files (``reloaded``: what changed),
        or kept an invalid edit out (``error``; None once fixed)."""
        if reloaded is not None:
            self.notify(literal.visible(reloaded), title="config", timeout=4, markup=False)
            wanted = getattr(getattr(self.actions, "config", None), "theme", None)
            if wanted and wanted in self.available_themes and wanted != self.theme:
                self.theme = wanted
        elif error != self.config_error:
            if error is not None:
                self.notify(
                    literal.visible(error),
                    title="config not reloaded: the last good one stays",
                    severity="error",
                    timeout=15,
                    markup=False,
                )
            else:
                self.notify("the config file is in force again", title="config fixed", timeout=4)
            self.config_error = error
        self.request_render()

    def request_render(self) -> None:
        if not self._render_queued:
            self._render_queued = True
            self.call_later(self._render)

    def _render(self) -> None:
        self._render_queued = False
        try:
            main = self.main
        except LookupError:
            return
        if not (main.is_mounted and main.is_attached):
            # pushed and not composed yet (its mount asks for a render), or taken down
            # with the app (a render queued meanwhile has nothing to draw on)
            return
        now = self.now()
        agents = list(self.agents.values())
        title = self.title
        if self.config_error is not None:
            title = f"{title}  ⚠ config not reloaded: {literal.visible(self.config_error)}"
        warning = self._supervisor_warning()
        if warning:
            title = f"{title}  ⚠ {warning}"
        main.show(agents, now, self.state_colours(), title)
        self._arm_wake_timer(agents, now)

    def _supervisor_warning(self) -> str | None:
        """ "no supervisor: ..." when agents are live and nothing supervises them (else
        None).  Asked on a render (a change), at most once a second: no timer of its own."""
        pipeline = self.feed.pipeline
        if pipeline is None:
            return None
        now = time.monotonic()
        if now - self._supervisor_checked_at >= 1.0:
            self._supervisor_checked_at = now
            line = pipeline.status_line()
            self._supervisor_line = line if line.startswith("no supervisor:") else None
        return self._supervisor_line

    def _arm_wake_timer(self, agents: list[Agent], now: datetime) -> None:
        """One timer for the next snooze to end (snoozes end on time, not on a poll)."""
        wakes = [a.snoozed_until for a in agents if a.snoozed_until and a.snoozed_until > now]
        if self._wake_timer is not None:
            self._wake_timer.stop()
            self._wake_timer = None
        if wakes:
            delay = (min(wakes) - now).total_seconds() + 0.5
            self._wake_timer = self.set_timer(min(delay, 3600.0), self.request_render)

    def on_render_wanted(self, _: messages.RenderWanted) -> None:
        self.request_render()

    def refresh_agent(self, agent_id: str) -> None:
        """Re-read one record after an action (the feed reports it too; this is quicker)."""
        a = self.store.get(agent_id)
        if a is not None:
            self.feed.apply([a], toast=False)

    def select_agent(self, agent_id: str) -> bool:
        """Show ``agent_id`` selected on the main screen (a clicked desktop notification)."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, MainScreen):
            self.pop_screen()
        return self.main.select_anywhere(agent_id)

    def on_select_agent(self, message: messages.SelectAgent) -> None:
        self.select_agent(message.agent_id)

    # ---- theme ----------------------------------------------------------------------
    def _theme_changed(self, theme: Theme) -> None:
        self._colours = None
        self.request_render()
        try:
            themes.remember_theme(self.paths, theme.name)
        except MulluiError as e:
            self.notify(e.message, severity="warning")

    def state_colours(self) -> dict[str, str]:
        """The state colours of the current theme (its variables, or its own palette)."""
        theme = self.current_theme
        if self._colours is not None and self._colours[0] == theme.name:
            return self._colours[1]
        derived = themes.state_colours(theme)
        self._colours = (theme.name, derived)
        return derived

    # ---- what flows use (mullui.tui.host.Host) ------------------------------------------
    def selected(self) -> Agent | None:
        """The selected agent, or a hint toast saying how to select one."""
        try:
            agent_id = self.main.selected_id
        except LookupError:
            return None
        a = self.agents.get(agent_id) if agent_id else None
        if a is None:
            self.notify(
                "No agent selected: move to one with j/k (tab switches lists)"
                if self.agents
                else "No agents yet: n starts one",
                severity="warning",
            )
        return a

    def log_path(self, a: Agent) -> Path | None:
        try:
            return self.actions.log_path(a.id)
        except MulluiError:
            return None

    def show(self, screen: Screen[R], then: Callable[[R | None], None] | None = None) -> None:
        self.push_screen(screen, then)

    def close(self, screen: Screen[Any]) -> None:
        if self.screen is screen:
            self.pop_screen()

    def quiet_for_dialog(self) -> None:
        """Toasts sit above every screen: on 80 columns a burst of them (the demo's start)
        hid the question being answered.  Each is in the inbox already."""
        self.clear_notifications()

    def started(self, a: Agent) -> None:
        self.feed.apply([a], toast=False)
        if a.chain:
            self.feed.reload()  # spawn returns the first step; the others exist too
        self.select_agent(a.id)

    @work(thread=True, group="actions")
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
    ) -> None:
        """Run a blocking workspace call off the UI thread; refusals become a toast."""
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            # A refusal (MulluiError) is one line for the human.  Anything else is a bug,
            # but one failed action must not take the TUI (the supervisor) down with it.
            msg = e.message if isinstance(e, MulluiError) else f"internal error: {e!r} (a bug)"
            self.call_from_thread(self.notify, msg, title=label, severity="error", timeout=8)
            if on_error is not None:
                self.call_from_thread(on_error)
            return
        if agent_id:
            a = self.store.get(agent_id)
            if a is not None:
                self.call_from_thread(self.feed.apply, [a], False)
            self.call_from_thread(self.feed.poke, agent_id)
        if done is not None:
            self.call_from_thread(self.notify, done(result), title=label)
        if then is not None:
            self.call_from_thread(then, result)

    # ---- actions (keys, palette) ------------------------------------------------------
    def action_press(self, key: str) -> None:
        """A click on a key in the footer."""
        self.simulate_key(key)

    def action_attach(self) -> None:
        focused = self.focused
        if focused is not None and isinstance(focused.parent, Collapsible):
            focused.parent.collapsed = not focused.parent.collapsed  # enter on "snoozed (n)"
            return
        a = self.selected()
        if a is None:
            return
        self.blocking(
            "attach",
            self.actions.attach_argv,
            a.id,
            then=lambda argv: self.run_foreground(argv, a),
        )

    def run_foreground(self, argv: list[str] | None, a: Agent) -> None:
        """Attach: suspend the app, run ``argv`` in the terminal, come back when it exits.

        ``None`` means the workspace already switched the tmux client (we run inside the
        agents' tmux server): nothing to run, the TUI stays in its own window.
        """
        if argv is None:
            self.notify(f"switched to {a.name}; switch back to this window to return")
            return
        self.foreground_runs.append(argv)
        try:
            with self.suspend():
                # Textual restores the terminal (cooked mode, main screen) for the child
                # and re-enters application mode when it exits (tmux detach -> return).
                proc = subprocess.run(argv, check=False)
        except SuspendNotSupported:
            self.notify(
                f"cannot attach from here: run `mullui attach {a.id}` in a terminal",
                severity="error",
            )
            return
        except OSError as e:
            self.notify(f"cannot run {argv[0]}: {e.strerror}", severity="error")
            return
        if proc.returncode != 0:
            self.notify(
                f"attach to {a.name} ended with exit code {proc.returncode}", severity="warning"
            )
        self.refresh_agent(a.id)

    def action_reply(self) -> None:
        a = self.selected()
        if a is not None:
            reply.reply(self, a)

    def _inbox_item(self, verb: str) -> Agent | None:
        a = self.selected()
        if a is None:
            return None
        if not a.needs_human():
            self.notify(
                f"Only inbox items can be {verb}: {a.name} is {a.state.value}", severity="warning"
            )
            return None
        return a

    def action_snooze(self) -> None:
        a = self._inbox_item("snoozed")
        if a is not None:
            snooze.snooze(self, a, snooze.SnoozeChoice("30 minutes", minutes=30))

    def action_snooze_pick(self) -> None:
        a = self._inbox_item("snoozed")
        if a is not None:
            snooze.pick_snooze(self, a)

    def action_wake(self) -> None:
        a = self.selected()
        if a is None:
            return
        if not (a.snooze_until_change or a.snoozed_until):
            self.notify(f"{a.name} is not snoozed", severity="warning")
            return
        self.blocking(
            "wake",
            self.actions.wake,
            a.id,
            agent_id=a.id,
            done=lambda _: f"{a.name} is back in the inbox",
        )

    def action_ack(self) -> None:
        a = self._inbox_item("acked")
        if a is not None:
            self.blocking(
                "ack", self.actions.ack, a.id, agent_id=a.id, done=lambda _: f"{a.name} handled"
            )

    def action_merge(self) -> None:
        a = self.selected()
        if a is not None:
            merge.merge(self, a)

    def action_stop(self) -> None:
        a = self.selected()
        if a is not None:
            confirm.stop(self, a)

    def action_resume(self) -> None:
        a = self.selected()
        if a is not None:
            resume.resume(self, a)

    def action_resume_all(self) -> None:
        resume.resume_all(self)

    def action_new_agent(self) -> None:
        new_agent.new_agent(self)

    def action_log(self) -> None:
        a = self.selected()
        if a is not None:
            text_view.log(self, a)

    def action_diff(self) -> None:
        a = self.selected()
        if a is not None:
            text_view.diff(self, a)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_report(self) -> None:
        report.show_report(self)

    def action_collisions(self) -> None:
        actions = self.actions
        self.push_screen(
            CollisionsScreen(list(self.agents.values()), check=lambda: check_with_radar(actions))
        )

    def on_collisions_checked(self, _: messages.CollisionsChecked) -> None:
        self.feed.poke(None)

    def action_focus_area(self, which: str) -> None:
        self.main.query_one(f"#{which}").focus()

    def running(self) -> list[Agent]:
        return [a for a in self.agents.values() if a.state in STILL_GOING]

    def action_quit(self) -> None:  # type: ignore[override]
        """Leave; never stops an agent.  ``run()`` starts ``mullui watch`` afterwards."""
        n = len(self.running())
        message = None
        if n:
            message = (
                f"mullui: {n} agent{'s' if n != 1 else ''} still running (quitting never "
                "stops them); notifications continue through `mullui watch`."
            )
        self.exit(message=message)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own (theme, keys, screenshot...); ours come from commands.py."""
        for cmd in super().get_system_commands(screen):
            if cmd.title not in commands.REPLACED:
                yield cmd


def run(cwd: Path | None = None, *, keep_watch: bool = True) -> int:
    """``mullui`` with no command: the TUI for the current repository.  After it quits
    with agents still running, ``mullui watch`` keeps the notifications coming (unless
    ``keep_watch`` is False: the demo ends its own agents)."""
    cwd = cwd or Path.cwd()
    actions = open_actions(get_paths(), cwd)
    app = MulluiApp(
        actions=actions,
        paths=actions.paths,
        cwd=cwd,
        title=title_for(actions, cwd),
        default_profile=_default_profile(actions),
    )
    app.run()
    if keep_watch and app.running():
        keep_watching(actions)
    return app.return_code or 0


def title_for(actions: AgentActions, cwd: Path) -> str:
    """``mullui · project``: the repository's top-level directory, wherever in it (a
    subdirectory, a linked worktree) the TUI was started."""
    try:
        repo = actions.repo_or_none()
    except MulluiError:
        repo = None
    return f"mullui · {(repo or cwd).name}"


def _default_profile(actions: AgentActions) -> str:
    try:
        return str(actions.config.default_agent)  # type: ignore[attr-defined]
    except (AttributeError, MulluiError):
        return "claude"


def main(argv: list[str] | None = None) -> int:
    """``python -m mullui.tui``."""
    return run()
