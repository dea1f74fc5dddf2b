"""One mullui instance: its files, its config, its tmux server, and the operations the
CLI, the TUI and ``mullui watch`` share (spawn, send, stop, rm, snooze, ...).

Every change to an agent is an event appended to its spool; this module never edits a
record directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mullui import config as config_mod
from mullui.agents import get_profile
from mullui.agents.base import LaunchContext
from mullui.errors import MulluiError, NotFound
from mullui.model import Agent, State, utcnow
from mullui.paths import Paths, get_paths, tmux_socket
from mullui.store import Store

if TYPE_CHECKING:
    from mullui.runtime.tmux import Tmux

LIVE_LOCAL = (State.STARTING, State.WORKING, State.BLOCKED)


def slugify(text: str, limit: int = 24) -> str:
    """A branch- and tmux-safe slug from free text (``Fix the bug`` -> ``fix-the-bug``)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    s = s[:limit].rstrip("-")
    return s or "agent"


def session_name(repo: Path) -> str:
    """One tmux session per repository (tmux forbids ``.`` and ``:`` in names)."""
    import hashlib

    h = hashlib.sha1(str(repo).encode()).hexdigest()[:6]
    return f"mullui-{slugify(repo.name, 20)}-{h}"


def hook_argv() -> tuple[str, ...]:
    """How an agent's hooks call back into mullui (absolute interpreter: no PATH games)."""
    return (sys.executable, "-m", "mullui", "hook")


class Workspace:
    """Operations on the agents of one mullui instance."""

    def __init__(self, paths: Paths | None = None, cwd: Path | None = None) -> None:
        self.paths = paths or get_paths()
        self.store = Store(self.paths)
        self.cwd = (cwd or Path.cwd()).absolute()
        self.socket = tmux_socket()
        self._repo: Path | None = None
        self._config: config_mod.Config | None = None
        self._tmux: Tmux | None = None
        #: receives worktree checkout progress lines (big repositories); the CLI shows them
        self.progress: Callable[[str], None] | None = None
        #: receives, once, the line naming what an untrusted ``.mullui.toml`` could not set
        self.notice: Callable[[str], None] | None = None

    # ---- context -------------------------------------------------------------------
    def repo(self) -> Path:
        """The main repository of the current directory (error outside one)."""
        if self._repo is None:
            from mullui.runtime import worktrees

            self._repo = worktrees.repo_root(self.cwd)
        return self._repo

    def repo_or_none(self) -> Path | None:
        try:
            return self.repo()
        except MulluiError:
            return None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = self.load_config(self.repo_or_none())
            notice = self._config.trust_notice()
            if notice and self.notice is not None:
                self.notice(notice)
        return self._config

    def load_config(self, repo: Path | None) -> config_mod.Config:
        """The user's config merged with ``repo``'s ``.mullui.toml`` (as far as trusted)."""
        return config_mod.load(self.paths.config_file, repo, self.paths.trust_file)

    @property
    def tmux(self) -> Tmux:
        if self._tmux is None:
            from mullui.runtime.tmux import Tmux

            self._tmux = Tmux(self.socket)
        return self._tmux

    def profile_names(self) -> list[str]:
        return self.config.profile_names()

    def current_branch(self) -> str | None:
        from mullui.runtime import worktrees

        repo = self.repo_or_none()
        if repo is None:
            return None
        try:
            return worktrees.current_branch(repo)
        except MulluiError:
            return None

    def get(self, ref: str) -> Agent:
        return self.store.resolve(ref)

    def log_path(self, ref: str) -> Path:
        return self.paths.log_file(self.get(ref).id)

    # ---- listing -------------------------------------------------------------------
    def agents(self, *, reconcile: bool = True) -> list[Agent]:
        """Every agent, caught up with its events and (optionally) checked against tmux."""
        agents = self.store.all()
        if reconcile:
            agents = self.reconcile(agents)
            if any(a.host and a.state in (*LIVE_LOCAL, State.UNKNOWN) for a in agents):
                # Remote agents change only through a supervisor's link to their host:
                # without one, their mirrors would quietly keep a stale state.
                self.ensure_supervisor()
        return agents

    def reconcile(self, agents: list[Agent]) -> list[Agent]:
        """Compare live agents with tmux (one ``list-panes -a``) and the stall clock.

        A vanished window or a dead tmux server shows as ``failed`` with its cause, a dead
        pane whose hook was missed gets its exit applied, and an agent with no sign of life
        past the stall limit is ``failed: stalled`` - never ``working`` forever.
        """
        agents = self._interrupted_spawns(agents)
        live = [a for a in agents if a.host is None and a.state in LIVE_LOCAL and a.tmux_target]
        if not live:
            return agents
        try:
            panes = self.tmux.panes()
        except MulluiError:
            panes = None
        changed: dict[str, Agent] = {}
        now = utcnow()
        for a in live:
            if panes is None:
                changed[a.id] = self.store.emit(
                    a.id, "fail", cause=f"tmux:server-gone (no tmux server on socket {self.socket})"
                )
                continue
            pane = panes.get(a.id)
            if pane is None:
                changed[a.id] = self.store.emit(a.id, "fail", cause="tmux:window-gone")
                continue
            if pane.dead:
                code = pane.exit_code
                if code is None:
                    continue  # tmux has not collected the status yet; the hook follows
                # The pane-died hook may still be on its way; the exit is the same fact.
                changed[a.id] = self.store.emit(
                    a.id, "exit", exit_code=code, cause=f"exit:{code}", source="tmux:list-panes"
                )
                continue
            stall = self.stall_deadline(a)
            if stall is not None and stall <= now:
                changed[a.id] = self.store.emit(a.id, "stall", cause="stalled")
        return [changed.get(a.id, a) for a in agents]

    def _interrupted_spawns(self, agents: list[Agent]) -> list[Agent]:
        """A spawn killed between its "start" and its tmux window (kill -9, a crash) would
        leave its agent "starting" forever, holding a max_running slot: fail it once the
        process that was starting it is gone (its pid is in the "start" event)."""
        out = []
        for a in agents:
            if a.state is State.STARTING and a.host is None and not a.tmux_target:
                from mullui.events import read_events

                events, _ = read_events(self.paths.spool_file(a.id))
                pids = [e.get("pid") for e in events if e.get("kind") == "start"]
                pid = pids[-1] if pids else None
                if isinstance(pid, int) and pid > 0 and not _alive(pid):
                    a = self.store.emit(
                        a.id, "fail", cause=f"spawn interrupted (mullui process {pid} is gone)"
                    )
                    a = self._adopt_worktree(a)
            out.append(a)
        return out

    def _adopt_worktree(self, a: Agent) -> Agent:
        """The worktree an interrupted spawn made before its record learnt of it: named
        in the record, so ``rm`` can remove it (and refuses to lose work in it)."""
        if a.worktree or not a.repo:
            return a
        from mullui.runtime import worktrees

        slug = slugify(a.name)
        path = worktrees.worktree_path(Path(a.repo), self.paths.worktrees_dir, slug, a.id)
        if not path.exists():
            return a
        fields = {"worktree": str(path), "branch": f"mullui/{slug}-{a.id}"}
        return self.store.emit(a.id, "update", fields=fields)

    def last_sign_of_life(self, a: Agent) -> datetime:
        """Newest of: the last hook/activity event, and the last pane output (log mtime)."""
        t = a.last_activity or a.state_since
        try:
            m = self.paths.log_file(a.id).stat().st_mtime
            out = datetime.fromtimestamp(m, tz=t.tzinfo)
            if out > t:
                t = out
        except OSError:
            pass
        return t

    def stall_deadline(self, a: Agent) -> datetime | None:
        """When a local agent with no sign of life counts as stalled (None: never)."""
        if a.state not in (State.WORKING, State.STARTING) or a.host is not None:
            return None
        if not a.tmux_target or a.removed:
            return None  # reconcile only judges agents it can see in tmux
        return self.last_sign_of_life(a) + timedelta(seconds=self.config.limits.stall_after_s)

    # ---- spawning ------------------------------------------------------------------
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
        extra: dict[str, Any] | None = None,
    ) -> Agent:
        """Create an agent and start it now, or queue it (``--after``, limits)."""
        if chain:
            from mullui import queue

            return queue.spawn_chain(self, chain, task, name=name, base=base, host=host)
        if host:
            from mullui.remote import dispatch

            return dispatch.spawn(self, host, task, agent=agent, name=name, base=base, after=after)
        cfg = self.config
        repo = self.repo()
        profile_name = agent or cfg.default_agent
        profile = get_profile(profile_name, cfg.profiles)
        profile.check(task)  # a placeholder that shell text could only splice: refused
        if "\x00" in task:
            raise MulluiError("the task contains a NUL byte, which no program can receive")
        name = self._unique_name(name, task)
        prev: Agent | None = None
        if after:
            prev = self.get(after)
        if base is None and prev is None:
            from mullui.runtime import worktrees

            base = worktrees.current_branch(repo)
        if base is not None:
            from mullui.runtime import worktrees

            worktrees.resolve_ref(repo, base)
        agent_id = secrets.token_hex(4)
        while self.paths.spool_file(agent_id).exists():
            agent_id = secrets.token_hex(4)
        record = Agent(
            id=agent_id,
            name=name,
            profile=profile_name,
            task=task,
            state=State.QUEUED,
            cause="spawn",
            repo=str(repo),
            base=base,
            after=prev.id if prev else None,
            hooks=profile.has_hooks,
            extra=dict(extra or {}),
        )
        for k in ("chain", "chain_name", "chain_step", "estimate_h"):
            if extra and k in extra:
                record = dataclasses.replace(record, **{k: extra[k]})
        from mullui import queue

        # Create, decide and start under the queue's lock: a supervisor's tick must not
        # start this agent itself, nor take the same last free slot at the same moment.
        with queue.admission(self):
            a, _token = self.store.create(record)
            reason = queue.wait_reason(self, a)
            if reason is None:
                try:
                    return self.start(a.id)
                except MulluiError:
                    self._forget(a.id)
                    raise
            a = self.store.emit(a.id, "state", state="queued", cause=reason)
        self.ensure_supervisor()
        return a

    def _unique_name(self, name: str | None, task: str) -> str:
        taken = {a.name for a in self.store.all() if not a.removed}
        if name is not None:
            if not name.strip() or any(c in name for c in "\x00\n\r"):
                raise MulluiError("the agent name must be one non-empty line")
            if name in taken:
                raise MulluiError(
                    f"name {name!r} is taken by another agent: pick another --name "
                    "or `mullui rm` the old one"
                )
            return name
        base = slugify(task)
        candidate, n = base, 2
        while candidate in taken:
            candidate = f"{base}-{n}"
            n += 1
        return candidate

    def _forget(self, agent_id: str) -> None:
        """Remove every file of an agent whose spawn failed before it ever ran."""
        p = self.paths
        for f in (
            p.spool_file(agent_id),
            p.record_file(agent_id),
            p.secret_file(agent_id),
            p.agents_dir / f"{agent_id}.lock",
            p.log_file(agent_id),
        ):
            with contextlib.suppress(OSError):
                f.unlink()
        shutil.rmtree(p.profile_dir(agent_id), ignore_errors=True)

    def start(self, agent_id: str) -> Agent:
        """Launch a queued agent: worktree, hooks, tmux window. Nothing half-made on error."""
        from mullui.runtime import worktrees

        a = self.store.load(agent_id)
        if a.state is not State.QUEUED:
            raise MulluiError(f"agent {a.name} is {a.state.value}, not queued")
        repo = Path(a.repo) if a.repo else self.repo()
        cfg = self.config
        profile = get_profile(a.profile, cfg.profiles)
        self.tmux.check()
        base = a.base
        if base is None and a.after:
            base = self.store.load(a.after).branch
        if base is None:
            base = worktrees.current_branch(repo)
        a = self.store.emit(a.id, "start", cause="spawn", pid=os.getpid())
        wt = None
        try:
            wt = worktrees.create(
                repo, self.paths.worktrees_dir, slugify(a.name), a.id, base, progress=self.progress
            )
            self.store.emit(
                a.id, "update", fields={"branch": wt.branch, "worktree": str(wt.path), "base": base}
            )
            worktrees.lock(repo, wt.path, f"mullui agent {a.name} ({a.id}) is running")
            token = self.store.token(a.id) or ""
            env = {
                "MULLUI_AGENT_ID": a.id,
                "MULLUI_AGENT_TOKEN": token,
                "MULLUI_STATE_DIR": str(self.paths.state_dir),
                "MULLUI_EVENTS": str(self.paths.spool_file(a.id)),
            }
            if a.after:  # shell text reads {prev.*} from here ("$MULLUI_PREV_...")
                from mullui import queue

                env.update(queue.prev_environment(self, a))
            options = {**cfg.profiles.get(a.profile, {}), **a.extra}
            env.update(options.get("env", {}))
            pdir = self.paths.profile_dir(a.id)
            pdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            session_id = a.session_id or str(uuid.uuid4())
            ctx = LaunchContext(
                agent_id=a.id,
                name=a.name,
                task=a.task,
                worktree=wt.path,
                branch=wt.branch,
                repo=repo,
                profile_dir=pdir,
                hook_argv=hook_argv(),
                session_id=session_id,
                env=dict(env),
                options=options,
            )
            if cfg.prices:
                prices = pdir / "prices.json"
                prices.write_text(json.dumps(cfg.prices))
                env["MULLUI_PRICES"] = str(prices)
            env.update(profile.prepare(ctx))
            argv = profile.command(ctx)
            if profile.has_hooks:
                self.store.emit(a.id, "meta", session_id=session_id)
            session = session_name(repo)
            self.tmux.ensure_session(session, repo)
            on_exit = [
                *hook_argv(),
                "pane-died",
                "--agent",
                a.id,
                "--token",
                token,
                "--state-dir",
                str(self.paths.state_dir),
            ]
            silence = (
                None
                if profile.has_hooks
                else int(options.get("silence_after_s", cfg.limits.silence_after_s))
            )
            on_silence = [
                *hook_argv(),
                "silence",
                "--agent",
                a.id,
                "--token",
                token,
                "--state-dir",
                str(self.paths.state_dir),
                "--seconds",
                str(silence),
            ]
            # "working" goes into the spool *before* the window exists: a command that
            # exits at once must not have its exit overtaken by a late "working".
            self.store.emit(a.id, "state", state="working", cause="spawned")
            target = self.tmux.launch(
                session=session,
                window_name=a.name,
                agent_id=a.id,
                cwd=wt.path,
                argv=argv,
                env=env,
                log_path=self.paths.log_file(a.id),
                on_exit=on_exit,
                silence_seconds=silence,
                on_silence=on_silence if silence else None,
                on_activity=[
                    *hook_argv(),
                    "activity",
                    "--agent",
                    a.id,
                    "--token",
                    token,
                    "--state-dir",
                    str(self.paths.state_dir),
                ]
                if silence
                else None,
            )
            return self.store.emit(
                a.id, "update", fields={"tmux_target": target, "tmux_session": session}
            )
        except MulluiError as e:
            if wt is not None:
                with contextlib.suppress(MulluiError):
                    worktrees.discard(repo, wt)
            self.store.emit(a.id, "fail", cause=f"spawn failed: {e}")
            raise
        except Exception as e:  # an unexpected runtime error must not leave a live record
            if wt is not None:
                with contextlib.suppress(MulluiError):
                    worktrees.discard(repo, wt)
            self.store.emit(a.id, "fail", cause=f"spawn failed: {type(e).__name__}: {e}")
            raise
        except BaseException:  # Ctrl-C half way: no agent left "starting" forever
            if wt is not None:
                with contextlib.suppress(MulluiError):
                    worktrees.discard(repo, wt)
            self.store.emit(a.id, "fail", cause="spawn interrupted")
            raise

    # ---- acting on agents ----------------------------------------------------------
    def _local(self, a: Agent, what: str) -> None:
        if a.host is not None:
            raise MulluiError(f"{what} for agents on host {a.host!r} is not supported yet")

    def send(self, ref: str, text: str) -> Agent:
        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            dispatch.send(self, a, text)
            return a
        if not a.tmux_target or a.state in (State.QUEUED, State.STOPPED) or a.removed:
            raise MulluiError(
                f"agent {a.name} has no running pane ({a.state.value}): nothing to send to"
            )
        if a.exit_code is not None:
            raise MulluiError(f"agent {a.name} has exited (exit {a.exit_code}): nothing to send to")
        self.tmux.send(a.tmux_target, text)
        return a

    def attach_argv(self, ref: str) -> list[str] | None:
        """Switch to the agent's pane. Inside tmux on our server: switch-client and return
        None; otherwise the argv to run in the foreground (returns when the user detaches)."""
        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            return dispatch.attach_argv(self, a)
        if not a.tmux_target or a.removed:
            raise MulluiError(f"agent {a.name} has no tmux window ({a.state.value})")
        inside = os.environ.get("TMUX", "")
        if inside and inside.split(",")[0] == self.tmux.socket_path():
            self.tmux.attach(a.tmux_target)  # switch-client: returns at once
            return None
        if not self.tmux.server_alive():
            raise MulluiError(f"the tmux server of agent {a.name} is gone (socket {self.socket})")
        return self.tmux.attach_argv(a.tmux_target)

    def stop(self, ref: str) -> Agent:
        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            return dispatch.stop(self, a)
        if a.state in (State.STOPPED,):
            return a
        a = self.store.emit(a.id, "stop", cause="stopped by user")
        if a.tmux_target:
            with contextlib.suppress(MulluiError):
                self.tmux.stop(a.tmux_target)
        self._unlock(a)
        return a

    def _unlock(self, a: Agent) -> None:
        if a.repo and a.worktree and Path(a.worktree).exists():
            from mullui.runtime import worktrees

            with contextlib.suppress(MulluiError):
                worktrees.unlock(Path(a.repo), Path(a.worktree))

    def rm(self, ref: str, *, force: bool = False) -> tuple[Agent, str | None]:
        """Remove the worktree (and window); refuses to lose work (see SPEC)."""
        from mullui.runtime import worktrees

        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            return dispatch.rm(self, a, force=force)
        saved = None
        if a.worktree and a.repo and a.branch:
            if a.state in LIVE_LOCAL and not force:
                raise MulluiError(
                    f"agent {a.name} is {a.state.value}: "
                    f"`mullui stop {a.name}` first, or rm --force"
                )
            saved = worktrees.remove(
                Path(a.repo), Path(a.worktree), a.branch, force=force, agent_name=a.name
            )
        if a.state in LIVE_LOCAL or a.state is State.QUEUED:
            self.store.emit(a.id, "stop", cause="removed")
        if a.tmux_target:
            with contextlib.suppress(MulluiError):
                self.tmux.kill(a.tmux_target)
        a = self.store.emit(a.id, "removed", saved=saved)
        return a, saved

    def snooze(
        self,
        ref: str,
        *,
        minutes: float | None = None,
        until: datetime | None = None,
        until_change: bool = False,
    ) -> Agent:
        a = self.get(ref)
        if until_change:
            return self.store.emit(a.id, "snooze", until_change=True)
        if until is None:
            if minutes is None:
                raise MulluiError("snooze needs --for DURATION or --until-change")
            until = utcnow() + timedelta(minutes=minutes)
        from mullui.model import iso

        return self.store.emit(a.id, "snooze", until=iso(until))

    def wake(self, ref: str) -> Agent:
        a = self.get(ref)
        return self.store.emit(a.id, "wake")

    def ack(self, ref: str) -> Agent:
        a = self.get(ref)
        return self.store.emit(a.id, "ack")

    def diff(self, ref: str, *, color: bool = True) -> str:
        from mullui.runtime import worktrees

        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            return dispatch.diff(self, a, color=color)
        if not a.repo or not a.base:
            raise MulluiError(f"agent {a.name} has no worktree yet ({a.state.value})")
        if a.worktree and Path(a.worktree).exists():
            return worktrees.diff(Path(a.repo), a.base, Path(a.worktree), color=color)
        if a.branch:
            import subprocess

            r = subprocess.run(
                ["git", "diff", *(["--color=always"] if color else []), f"{a.base}...{a.branch}"],
                cwd=a.repo,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if r.returncode != 0:
                raise MulluiError(f"cannot diff {a.branch}: {r.stderr.strip() or 'git failed'}")
            return r.stdout
        raise MulluiError(f"agent {a.name} has no worktree or branch to diff")

    def merge(self, ref: str, into: str | None = None) -> str:
        from mullui import review

        a = self.get(ref)
        if a.host:
            from mullui.remote import dispatch

            return dispatch.merge(self, a, into=into)
        return review.merge(self, a, into=into)

    # ---- the supervisor ------------------------------------------------------------
    def ensure_supervisor(self) -> None:
        """Make sure some supervisor (TUI or ``mullui watch``) is running to start queued
        agents and notify; starts ``mullui watch`` in a hidden tmux window when none is."""
        from mullui import watch

        watch.ensure_running(self)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def remove_agent_files(paths: Paths, agent_id: str) -> None:
    """Used by tests/benchmarks that make throw-away agents."""
    for f in (paths.spool_file(agent_id), paths.record_file(agent_id)):
        with contextlib.suppress(OSError):
            os.unlink(f)


__all__ = ["Workspace", "slugify", "session_name", "hook_argv", "NotFound"]
