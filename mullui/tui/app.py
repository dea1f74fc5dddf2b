"""The mullui App: holds the agents, runs the change feed, and performs every action.

Data flows one way: the change feed (the Supervisor) calls :meth:`MulluiApp.on_change`
-> the app coalesces changes for a moment -> ``MainScreen.show`` renders what differs.
Actions go the other way: a key -> an ``action_*`` here -> a thread worker calls the
workspace (tmux, git: blocking) -> a toast on refusal, the record refreshed on success.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SuspendNotSupported, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Collapsible

from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.paths import Paths, get_paths
from mullui.store import Store
from mullui.tui import cells, literal, themes
from mullui.tui.adapter import AgentActions, Pipeline, keep_watching, open_actions
from mullui.tui.screens.collisions import CollisionsScreen, rows_from_report
from mullui.tui.screens.confirm import ConfirmScreen
from mullui.tui.screens.help import HelpScreen
from mullui.tui.screens.main import MainScreen
from mullui.tui.screens.merge import MergeQuestion, MergeScreen
from mullui.tui.screens.new_agent import NewAgent, NewAgentScreen
from mullui.tui.screens.reply import ReplyScreen
from mullui.tui.screens.report import ReportScreen
from mullui.tui.screens.snooze import SnoozeChoice, SnoozeScreen
from mullui.tui.screens.text_view import DiffScreen, LogScreen

Clock = Callable[[], datetime]

#: How long changes are gathered before one render (a burst of 100 events -> 1 render).
COALESCE_S = 0.05
#: "waited 12m" columns advance on this one app-wide timer (no per-agent timers).
TICK_S = 30.0

RUNNING = (State.QUEUED, State.STARTING, State.WORKING, State.BLOCKED)
TOAST_SEVERITY = {State.BLOCKED: "warning", State.FAILED: "error", State.DONE: "information"}


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
        self.agents: dict[str, Agent] = {}
        self.pipeline: Pipeline | None = None
        self._pending: dict[str, Agent] = {}
        self._flush_timer: Timer | None = None
        self._wake_timer: Timer | None = None
        self._render_queued = False
        self._thread = threading.get_ident()
        self._colours: tuple[str, dict[str, str]] | None = None
        self.theme_problems: list[themes.ThemeProblem] = []
        self.foreground_runs: list[list[str]] = []  # argv run while suspended (attach)

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
        self._thread = threading.get_ident()
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
        self.push_screen(MainScreen())
        # A fast first frame from the records on disk, then the workspace's reconciled
        # view (it asks tmux which windows are alive) from a thread.
        self.apply_changes(self.store.all(), toast=False)
        self._load_reconciled()
        if self.supervise:
            self._run_feed()
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

    @work(thread=True, exclusive=True, group="load")
    def _load_reconciled(self) -> None:
        try:
            agents = self.actions.agents()
        except MulluiError as e:
            self.call_from_thread(self.notify, e.message, severity="error")
            return
        self.call_from_thread(self.apply_changes, agents, False)

    @work(exclusive=True, group="feed")
    async def _run_feed(self) -> None:
        self.pipeline = Pipeline(
            self.actions,
            on_change=self.on_change,
            toast=self._notifier_toast,
            on_action=self._notification_action,
            is_focused=self._is_focused,
        )
        try:
            await self.pipeline.run()
        except MulluiError as e:
            self.notify(f"{e.message} (live updates stopped)", severity="error", timeout=15)

    async def on_unmount(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.stop()

    def _from_any_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() == self._thread:
            fn(*args, **kwargs)
        else:
            self.call_from_thread(fn, *args, **kwargs)

    def _notifier_toast(self, agent_id: str, title: str, body: str) -> None:
        """The notifier's in-app notice (deduplicated and coalesced like the popups)."""
        a = self.agents.get(agent_id)
        sev = TOAST_SEVERITY.get(a.state, "information") if a else "information"
        self._from_any_thread(self.notify, body, title=title, severity=sev)

    def _notification_action(self, agent_id: str, action: str) -> None:
        """A desktop notification (or one of its buttons) was clicked."""

        def act() -> None:
            self.select_agent(agent_id)
            if action == "attach":
                self.action_attach()
            elif action == "snooze":
                self.action_snooze()

        self._from_any_thread(act)

    def _is_focused(self, agent_id: str) -> bool:
        """The human is looking at this agent now: no popup needed."""
        try:
            return bool(self.app_focus) and self.main.selected_id == agent_id
        except LookupError:
            return False

    @property
    def main(self) -> MainScreen:
        for s in self.screen_stack:
            if isinstance(s, MainScreen):
                return s
        raise LookupError("main screen not mounted")

    # ---- changes in -----------------------------------------------------------------
    def on_change(self, agent: Agent, transitions: Any = ()) -> None:
        """The Supervisor's callback (agent, its new transitions); safe from any thread."""
        self._from_any_thread(self._queue_change, agent)

    def _queue_change(self, agent: Agent) -> None:
        self._pending[agent.id] = agent
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(COALESCE_S, self._flush_changes)

    def _flush_changes(self) -> None:
        self._flush_timer = None
        pending, self._pending = self._pending, {}
        self.apply_changes(pending.values())

    @property
    def notifies(self) -> bool:
        """A notifier (ours, as the supervisor) sends the toasts; else we make our own."""
        return self.pipeline is not None and self.pipeline.notifier is not None

    def apply_changes(self, agents: Iterable[Agent], toast: bool = True) -> None:
        """Take in current records (from the feed, a refresh or a test) and re-render."""
        for a in agents:
            old = self.agents.get(a.id)
            if a.removed:
                self.agents.pop(a.id, None)
                continue
            self.agents[a.id] = a
            if (
                toast
                and not self.notifies
                and old is not None
                and old.seq != a.seq
                and a.in_inbox(self.now())
            ):
                sev = TOAST_SEVERITY.get(a.state)
                if sev:
                    self.notify(
                        cells.why(a),
                        title=f"{a.name} {a.state.value}",
                        severity=sev,  # type: ignore[arg-type]
                    )
            if (
                toast
                and not self.notifies
                and old is not None
                and not old.has_conflict_item()
                and cells.conflict_shown(a)
                and a.in_inbox(self.now())
            ):
                label = cells.conflict_label(a)
                self.notify(cells.why(a), title=f"{a.name}: {label}", severity="error")
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
        now = self.now()
        agents = list(self.agents.values())
        main.show(agents, now)
        self._arm_wake_timer(agents, now)

    def _arm_wake_timer(self, agents: list[Agent], now: datetime) -> None:
        """One timer for the next snooze to end (snoozes end on time, not on a poll)."""
        wakes = [a.snoozed_until for a in agents if a.snoozed_until and a.snoozed_until > now]
        if self._wake_timer is not None:
            self._wake_timer.stop()
            self._wake_timer = None
        if wakes:
            delay = (min(wakes) - now).total_seconds() + 0.5
            self._wake_timer = self.set_timer(min(delay, 3600.0), self.request_render)

    def refresh_agent(self, agent_id: str) -> None:
        """Re-read one record after an action (the feed reports it too; this is quicker)."""
        a = self.store.get(agent_id)
        if a is not None:
            self.apply_changes([a], toast=False)

    def select_agent(self, agent_id: str) -> bool:
        """Show ``agent_id`` selected on the main screen (a clicked desktop notification)."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, MainScreen):
            self.pop_screen()
        return self.main.select_anywhere(agent_id)

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
        derived = {
            "state-working": theme.primary,
            "state-blocked": theme.warning or cells.FALLBACK_COLOURS["state-blocked"],
            "state-done": theme.success or cells.FALLBACK_COLOURS["state-done"],
            "state-failed": theme.error or cells.FALLBACK_COLOURS["state-failed"],
            "state-idle": cells.FALLBACK_COLOURS["state-idle"],
        }
        for k in themes.STATE_VARIABLES:
            if k in theme.variables:
                derived[k] = theme.variables[k]
        self._colours = (theme.name, derived)
        return derived

    # ---- helpers for actions ----------------------------------------------------------
    def selected(self, need: str = "") -> Agent | None:
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
                self.call_from_thread(self.apply_changes, [a], False)
            if self.pipeline is not None:
                self.call_from_thread(self.pipeline.poke, agent_id)
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
        if a is None:
            return

        def send(text: str | None) -> None:
            if text is None:
                return
            if not text.strip():
                self.notify("Nothing sent: the reply was empty", severity="warning")
                return
            self.blocking(
                "reply",
                self.actions.send,
                a.id,
                text,
                agent_id=a.id,
                done=lambda _: f"sent to {a.name}",
            )

        question = cells.why(a) if a.state is State.BLOCKED else ""
        self._quiet_for_dialog()
        self.push_screen(ReplyScreen(a.name, question), send)

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
            self._snooze(a, SnoozeChoice("30 minutes", minutes=30))

    def action_snooze_pick(self) -> None:
        a = self._inbox_item("snoozed")
        if a is None:
            return

        def chosen(choice: SnoozeChoice | None) -> None:
            if choice is not None:
                self._snooze(a, choice)

        self.push_screen(SnoozeScreen(a.name, self.now()), chosen)

    def _snooze(self, a: Agent, choice: SnoozeChoice) -> None:
        self.blocking(
            "snooze",
            self.actions.snooze,
            a.id,
            agent_id=a.id,
            minutes=choice.minutes,
            until=choice.until,
            until_change=choice.until_change,
            done=lambda _: f"{a.name} snoozed: {choice.label}",
        )

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
        """Ask first (review.plan: target, files), refuse in one line (conflicts named),
        then merge in a thread worker; git can take a while on a big repository."""
        a = self.selected()
        if a is None:
            return
        self.blocking("merge", self._merge_question, a.id, then=self._ask_merge)

    def _merge_question(self, agent_id: str) -> MergeQuestion:
        from mullui import review

        ws: Any = self.actions
        p = review.plan(ws, ws.get(agent_id))
        if p.problem:
            raise MulluiError(p.problem)
        a = p.agent
        return MergeQuestion(
            agent_id=a.id,
            agent_name=a.name,
            question=p.question(),
            branch=a.branch or "?",
            target=p.target,
            files=tuple(p.files),
            checkout=p.checkout,
            follow_up=a.after is not None and a.base is not None and a.base != p.target,
        )

    def _quiet_for_dialog(self) -> None:
        """Toasts sit above every screen: on 80 columns a burst of them (the demo's start)
        hid the question being answered.  Each is in the inbox already."""
        self.clear_notifications()

    def _ask_merge(self, q: MergeQuestion) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.blocking(
                    "merge",
                    self.actions.merge,
                    q.agent_id,
                    into=q.target,
                    agent_id=q.agent_id,
                    done=lambda msg: str(msg) or f"merged {q.agent_name}",
                )

        self._quiet_for_dialog()
        self.push_screen(MergeScreen(q), confirmed)

    def action_stop(self) -> None:
        a = self.selected()
        if a is None:
            return
        if a.state not in RUNNING and a.state is not State.DONE:
            self.notify(f"{a.name} is already {a.state.value}", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.blocking(
                    "stop",
                    self.actions.stop,
                    a.id,
                    agent_id=a.id,
                    done=lambda _: f"stopped {a.name}",
                )

        self.push_screen(
            ConfirmScreen(
                f"Stop {a.name}?", "Its process ends; its worktree and branch stay.", "Stop"
            ),
            confirmed,
        )

    def action_new_agent(self) -> None:
        self.blocking("new agent", self._new_agent_defaults, then=self._open_new_agent)

    def _new_agent_defaults(self) -> tuple[list[str], str | None, list[str]]:
        ws: Any = self.actions
        try:
            chains = sorted(ws.config.chains)
        except (AttributeError, MulluiError):
            chains = []  # a broken config is reported by spawn itself, in one line
        return self.actions.profile_names(), self.actions.current_branch(), chains

    def _open_new_agent(self, defaults: tuple[list[str], str | None, list[str]]) -> None:
        profiles, base, chains = defaults
        # Newest first: a follow-up usually follows what was just started.
        after = [
            (f"{a.name} ({a.state.value})", a.id)
            for a in sorted(self.agents.values(), key=lambda a: a.created_at, reverse=True)
            if a.state not in (State.STOPPED,) and not a.removed
        ]

        def start(req: NewAgent | None) -> None:
            if req is None:
                return
            self.blocking(
                "new agent",
                self.actions.spawn,
                req.task,
                agent=None if req.chain else req.profile,
                name=req.name,
                base=req.base,
                after=req.after,
                chain=req.chain,
                then=self._started,
                done=lambda a: (
                    f"started {a.name}"
                    if a.state is not State.QUEUED
                    else f"queued {a.name}: {a.cause}"
                ),
            )

        self.push_screen(
            NewAgentScreen(profiles, self.default_profile, base, after=after, chains=chains),
            start,
        )

    def _started(self, a: Agent) -> None:
        self.apply_changes([a], toast=False)
        if a.chain:
            self._load_reconciled()  # spawn returns the first step; the others exist too
        self.select_agent(a.id)

    def action_log(self) -> None:
        a = self.selected()
        if a is not None:
            self.push_screen(LogScreen(f"Log · {a.name} · {a.task[:80]}", self.log_path(a)))

    def action_diff(self) -> None:
        a = self.selected()
        if a is None:
            return
        screen = DiffScreen(
            a.name, f"Diff · {a.name} · {a.branch or '?'} against {a.base or 'its base'}"
        )
        self.push_screen(screen)
        self.blocking(
            "diff",
            self.actions.diff,
            a.id,
            color=True,
            then=screen.show_diff,
            on_error=self._pop_if(screen),
        )

    def _pop_if(self, screen: Screen[Any]) -> Callable[[], None]:
        def pop() -> None:
            if self.screen is screen:
                self.pop_screen()

        return pop

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_report(self) -> None:
        self.blocking("report", self._ledger, then=lambda led: self.push_screen(ReportScreen(led)))

    def _ledger(self) -> dict[str, Any]:
        """report.ledger reads every spool and runs git numstat: a thread's job."""
        from mullui import report

        ws: Any = self.actions
        return report.ledger(ws, now=self.now())

    def action_collisions(self) -> None:
        screen = CollisionsScreen(list(self.agents.values()))
        self.push_screen(screen)
        self._check_collisions(screen)

    @work(thread=True, exclusive=True, group="collisions")
    def _check_collisions(self, screen: CollisionsScreen) -> None:
        """Ask the radar (git merge-tree over every agent's work) for its full answer."""
        from mullui import radar

        ws: Any = self.actions
        try:
            found = rows_from_report(radar.collisions_report(ws))
        except Exception as e:
            # A refusal is one line; anything else is a bug, shown, not a crashed TUI.
            msg = e.message if isinstance(e, MulluiError) else f"internal error: {e!r} (a bug)"
            self.call_from_thread(screen.show_error, msg)
            return
        self.call_from_thread(screen.show_report, found)
        # The report refreshed the records (collisions, conflict items): show them now.
        if self.pipeline is not None:
            self.call_from_thread(self.pipeline.poke, None)
        else:
            self.call_from_thread(self._load_reconciled)

    def action_focus_area(self, which: str) -> None:
        self.main.query_one(f"#{which}").focus()

    def running(self) -> list[Agent]:
        return [a for a in self.agents.values() if a.state in RUNNING]

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
        ours = [
            ("Attach", "Switch to the selected agent's tmux pane (enter)", self.action_attach),
            ("Reply", "Type one line into the agent's pane (r)", self.action_reply),
            ("Snooze 30 minutes", "Hide the inbox item for 30 minutes (s)", self.action_snooze),
            (
                "Snooze…",
                "15 min / 1 h / 4 h / tomorrow 9:00 / until it changes (S)",
                self.action_snooze_pick,
            ),
            ("Wake", "End the snooze of the selected item (w)", self.action_wake),
            (
                "New agent",
                "Start an agent: task, profile, base, name; after another, or a chain (n)",
                self.action_new_agent,
            ),
            ("Log", "The selected agent's full log (l)", self.action_log),
            ("Diff", "The agent's changes against its base (d)", self.action_diff),
            (
                "Ack",
                "Mark the inbox item handled: reviewed, answered, conflict seen (a)",
                self.action_ack,
            ),
            (
                "Merge",
                "Merge the agent's branch into its base: asks with the files first (m)",
                self.action_merge,
            ),
            ("Stop", "Stop the agent; asks first (x)", self.action_stop),
            (
                "Report",
                "Cost to deliver per agent and chain: time working and waiting on you, "
                "tokens, cost, estimate vs actual, changes, merged",
                self.action_report,
            ),
            (
                "Collisions",
                "Agents whose work touches the same files: conflict or overlap, merge order",
                self.action_collisions,
            ),
            ("Focus inbox", "Move focus to the inbox", lambda: self.action_focus_area("inbox")),
            (
                "Focus agents",
                "Move focus to the list of agents",
                lambda: self.action_focus_area("agents"),
            ),
            ("Focus log", "Move focus to the log", lambda: self.action_focus_area("log")),
            ("Help", "Every key and what the states mean (?)", self.action_help),
            ("Quit", "Leave the TUI; agents keep running (q)", self.action_quit),
        ]
        for title, help_text, cb in ours:
            yield SystemCommand(title, help_text, cb)
        for cmd in super().get_system_commands(screen):
            if cmd.title != "Quit":
                yield cmd


def run(cwd: Path | None = None) -> int:
    """``mullui`` with no command: the TUI for the current repository.  After it quits
    with agents still running, ``mullui watch`` keeps the notifications coming."""
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
    if app.running():
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
