"""Agents on this machine: a git worktree each, a window of mullui's tmux server, hooks
that call back into ``mullui hook``.

Every change to an agent is an event appended to its spool; nothing here edits a record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from mullui import guard, logs
from mullui.agents import get_profile
from mullui.agents.base import (
    DEFAULT_RESUME_PROMPT,
    LaunchContext,
    Profile,
    answer_hook_argv,
    spool_hook_argv,
)
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import RESUME_MANUAL, RUNNING, Agent, State
from mullui.operations import admission, records, replies
from mullui.operations.location import Location, Resume
from mullui.operations.names import slugify, unique_name
from mullui.runtime import worktrees


def session_name(repo: Path) -> str:
    """One tmux session per repository (tmux forbids ``.`` and ``:`` in names)."""
    h = hashlib.sha1(str(repo).encode()).hexdigest()[:6]
    return f"mullui-{slugify(repo.name, 20)}-{h}"


def no_resume(a: Agent) -> str:
    """The refusal for an agent whose CLI cannot continue its conversation."""
    session = f" {a.session_id}" if a.session_id else ""
    return (
        f"agent {a.name}'s CLI ({a.profile}) has no resume for its session{session} (none "
        f"saved, or the profile cannot resume): `mullui resume {a.name} --fresh` starts it "
        "again with its task"
    )


def resume_prompt(options: dict[str, Any], profile: Any, ctx: Context) -> str:
    """What a resumed agent receives: ``[profiles.NAME] resume_prompt``, the top-level
    ``resume_prompt``, the profile's own, or the default."""

    for candidate in (
        options.get("resume_prompt"),
        ctx.config.resume_prompt,
        getattr(profile, "resume_prompt", None),
    ):
        if isinstance(candidate, str):
            return candidate
    return DEFAULT_RESUME_PROMPT


def launch_context(
    a: Agent,
    repo: Path,
    worktree: Path,
    branch: str,
    *,
    session_id: str,
    env: dict[str, str],
    options: dict[str, Any],
    transcript_path: str | None,
    profile_dir: Path,
) -> LaunchContext:
    """What agent ``a``'s profile builds its command line from."""
    return LaunchContext(
        agent_id=a.id,
        name=a.name,
        task=a.task,
        worktree=worktree,
        branch=branch,
        repo=repo,
        profile_dir=profile_dir,
        hook_argv=hook_argv(),
        answer_hook_argv=answer_hook_argv(),
        session_id=session_id,
        env=env,
        options=options,
        transcript_path=transcript_path,
    )


def hook_argv() -> tuple[str, ...]:
    """How an agent's hooks reach mullui: the fast path (``fasthook/spool.sh``, no Python);
    the supervisor or the next reader translates what it stores."""
    return spool_hook_argv()


class LocalLocation(Location):
    """tmux + worktrees on this machine."""

    # ---- spawning ------------------------------------------------------------------
    def spawn(
        self,
        task: str,
        *,
        agent: str | None = None,
        name: str | None = None,
        base: str | None = None,
        after: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Agent:
        ctx = self.ctx
        cfg = ctx.config
        repo = ctx.repo()
        profile_name = agent or cfg.default_agent
        profile = get_profile(profile_name, cfg.profiles)
        profile.check(task)  # a placeholder that shell text could only splice: refused
        if "\x00" in task:
            raise MulluiError("the task contains a NUL byte, which no program can receive")
        name = unique_name(ctx, name, task)
        prev: Agent | None = None
        notes: tuple[str, ...] = ()
        if after:
            prev = ctx.get(after)
        if base is not None or prev is None:
            # Resolved here, where the user stands (a linked worktree's own branch; HEAD,
            # @{-1}, HEAD~2 mean nothing once inside the agent's worktree).
            chosen, lines = worktrees.spawn_notes(ctx.cwd, base)
            base = chosen.ref
            notes = tuple(lines)
            for line in lines:
                _tell(ctx, line)
        record = Agent(
            id=records.new_id(ctx),
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
            notes=notes,
        )
        for k in ("chain", "chain_name", "chain_step", "estimate_h"):
            if extra and k in extra:
                record = dataclasses.replace(record, **{k: extra[k]})
        # Create, decide and start under the queue's lock: a supervisor's tick must not
        # start this agent itself, nor take the same last free slot at the same moment.
        with admission.admission(ctx):
            a, _token = ctx.store.create(record)
            reason = admission.wait_reason(ctx, a)
            if reason is None:
                try:
                    return self.start(a)
                except MulluiError:
                    records.forget(ctx, a.id)
                    raise
            return ctx.store.emit(a.id, "state", state="queued", cause=reason)

    def start(self, a: Agent) -> Agent:
        """Launch a queued agent: worktree, hooks, tmux window. Nothing half-made on error."""
        ctx = self.ctx
        a = ctx.store.load(a.id)
        if a.state is not State.QUEUED:
            raise MulluiError(f"agent {a.name} is {a.state.value}, not queued")
        if isinstance(a.extra.get("resume"), dict):
            return self._resume_now(a, "start")  # a resume that waited for a free slot
        repo = Path(a.repo) if a.repo else ctx.repo()
        get_profile(a.profile, ctx.config.profiles)  # gone from the config: stays queued
        ctx.tmux.check()
        base = a.base
        if base is None and a.after:
            base = ctx.store.load(a.after).branch
        if base is None:
            base = worktrees.current_branch(repo)
        a = ctx.store.emit(a.id, "start", cause="spawn", pid=os.getpid())
        wt = None
        try:
            wt = worktrees.create(
                repo, ctx.paths.worktrees_dir, slugify(a.name), a.id, base, progress=ctx.progress
            )
            ctx.store.emit(
                a.id, "update", fields={"branch": wt.branch, "worktree": str(wt.path), "base": base}
            )
            for note in wt.notes:  # kept on the agent: a queued one's starter tells nobody
                ctx.store.emit(a.id, "note", text=note)
                _tell(ctx, f"{a.name}: {note}")
            return self._launch(a, repo, wt.path, wt.branch, None)
        except MulluiError as e:
            self._discard(repo, wt)
            ctx.store.emit(a.id, "fail", cause=f"spawn failed: {e}")
            raise
        except Exception as e:  # an unexpected runtime error must not leave a live record
            self._discard(repo, wt)
            ctx.store.emit(a.id, "fail", cause=f"spawn failed: {type(e).__name__}: {e}")
            raise
        except BaseException:  # Ctrl-C half way: no agent left "starting" forever
            self._discard(repo, wt)
            ctx.store.emit(a.id, "fail", cause="spawn interrupted")
            raise

    def _launch(
        self, a: Agent, repo: Path, worktree: Path, branch: str, resume: dict[str, Any] | None
    ) -> Agent:
        """Lock the worktree, wire the hooks, open the agent's tmux window running its
        profile's command - or, for a resume, its resume command (``resume``: the prompt,
        and ``fresh`` for its task again in a new conversation)."""
        ctx = self.ctx
        cfg = ctx.config
        profile = get_profile(a.profile, cfg.profiles)
        worktrees.lock(repo, worktree, f"mullui agent {a.name} ({a.id}) is running")
        token = ctx.store.token(a.id) or ""
        env = {
            "MULLUI_AGENT_ID": a.id,
            "MULLUI_AGENT_TOKEN": token,
            "MULLUI_STATE_DIR": str(ctx.paths.state_dir),
            "MULLUI_EVENTS": str(ctx.paths.spool_file(a.id)),
        }
        if a.after:  # shell text reads {prev.*} from here ("$MULLUI_PREV_...")
            env.update(admission.prev_environment(ctx, a))
        options = {**cfg.profiles.get(a.profile, {}), **a.extra}
        env.update(options.get("env", {}))
        pdir = ctx.paths.profile_dir(a.id)
        pdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        continuing = resume is not None and not resume.get("fresh")
        session_id = (a.session_id if continuing else None) or str(uuid.uuid4())
        launch = launch_context(
            a,
            repo,
            worktree,
            branch,
            session_id=session_id,
            env=dict(env),
            options=options,
            transcript_path=a.transcript_path if continuing else None,
            profile_dir=pdir,
        )
        if cfg.prices:
            prices = pdir / "prices.json"
            prices.write_text(json.dumps(cfg.prices))
            env["MULLUI_PRICES"] = str(prices)
        env.update(profile.prepare(launch))
        if continuing:
            assert resume is not None
            prompt = resume.get("prompt")
            argv = profile.resume_command(launch, prompt if isinstance(prompt, str) else None)
            if argv is None:
                raise MulluiError(no_resume(a))
        else:
            argv = profile.command(launch)
        if profile.has_hooks and not continuing:  # a new conversation, pinned
            ctx.store.emit(a.id, "meta", session_id=session_id)
        session = session_name(repo)
        ctx.tmux.ensure_session(session, repo)
        override = a.extra.get("guard")
        with contextlib.suppress(OSError, MulluiError):  # the hook then asks Python
            guard.admit(ctx.paths.state_dir, a.id, str(repo), str(worktree), a.profile,
                        override if isinstance(override, str) else None,
                        profile.guard_event)  # fmt: skip
        # tmux's hooks run in the server's environment: the agent id and state dir go
        # in their argv, the token does not (spool.sh reads the secrets file).
        hook = [*hook_argv(), "--agent", a.id, "--state-dir", str(ctx.paths.state_dir)]
        silence = (
            None
            if profile.has_hooks
            else int(options.get("silence_after_s", cfg.limits.silence_after_s))
        )
        # "working" goes into the spool *before* the window exists: a command that
        # exits at once must not have its exit overtaken by a late "working".
        ctx.store.emit(
            a.id, "state", state="working", cause="spawned" if resume is None else "resumed"
        )
        target = ctx.tmux.launch(
            session=session,
            window_name=a.name,
            agent_id=a.id,
            cwd=worktree,
            argv=argv,
            env=env,
            log_path=ctx.paths.log_file(a.id),
            on_exit=[*hook, "pane-died"],
            silence_seconds=silence,
            on_silence=[*hook, "silence", "--seconds", str(silence)] if silence else None,
            on_activity=[*hook, "activity"] if silence else None,
        )
        a = ctx.store.emit(a.id, "update", fields={"tmux_target": target, "tmux_session": session})
        if continuing and not profile.resume_reruns:
            assert resume is not None
            if not resume.get("prompt") or not profile.resume_takes_prompt:
                # Its conversation is open again with nothing to do: the human's turn.
                why = (
                    "no prompt given"
                    if profile.resume_takes_prompt
                    else f"{a.profile} takes no prompt on resume"
                )
                a = ctx.store.emit(
                    a.id,
                    "state",
                    state="done",
                    cause=f"resumed: idle at its prompt ({why}; send it one)",
                )
        return a

    # ---- resuming ------------------------------------------------------------------
    def resume(self, a: Agent, how: Resume) -> Agent:
        ctx = self.ctx
        a = ctx.store.load(a.id)
        repo, worktree, branch = self._resumable(a, how)
        profile = get_profile(a.profile, ctx.config.profiles)
        prompt = how.prompt
        if prompt is None:
            prompt = resume_prompt(ctx.config.profiles.get(a.profile, {}), profile, ctx)
        if not how.fresh:
            options = {**ctx.config.profiles.get(a.profile, {}), **a.extra}
            probe = launch_context(
                a,
                repo,
                worktree,
                branch,
                session_id=a.session_id or "",
                env=dict(options.get("env", {})),
                options=options,
                transcript_path=a.transcript_path,
                profile_dir=ctx.paths.profile_dir(a.id),
            )
            if profile.resume_command(probe, prompt) is None:
                raise MulluiError(no_resume(a))
        ctx.tmux.check()
        if how.recreate and not worktree.is_dir():
            worktrees.recreate(repo, worktree, branch)
            _tell(ctx, f"{a.name}: worktree {worktree} made again from {branch}")
        extra = dict(a.extra)
        if how.budget is not None:
            extra["max_cost_usd"] = how.budget
        extra["resume"] = {"prompt": prompt, "fresh": how.fresh, "cause": how.cause}
        with admission.admission(ctx):
            # Two resumes at once: the second finds the first's "starting" and refuses.
            now = ctx.store.load(a.id)
            if now.state is not a.state or now.seq != a.seq:
                raise MulluiError(
                    f"agent {a.name} changed while resuming ({now.state.value}: {now.cause}): "
                    "nothing done"
                )
            ctx.store.emit(a.id, "update", fields={"extra": extra})
            a = ctx.store.load(a.id)
            reason = admission.resume_reason(ctx, a)
            if reason is not None:
                ctx.store.emit(a.id, "resume", state="queued", cause=how.cause)
                return ctx.store.emit(a.id, "state", state="queued", cause=reason)
            return self._resume_now(a, "resume")

    def _resume_now(self, a: Agent, via: str) -> Agent:
        """Start a resumed agent: ``via`` "resume" (failed/stopped -> starting) or "start"
        (it waited queued for a slot)."""
        ctx = self.ctx
        how = dict(a.extra.get("resume") or {})
        cause = str(how.get("cause") or RESUME_MANUAL)
        repo, worktree, branch = Path(a.repo or ""), Path(a.worktree or ""), a.branch or ""
        extra = {k: v for k, v in a.extra.items() if k != "resume"}
        extra["resumes"] = int(extra.get("resumes") or 0) + 1
        profile = get_profile(a.profile, ctx.config.profiles)
        if how.get("fresh") or not profile.resume_keeps_usage:
            # A new conversation counts its usage from zero: the ledger keeps the earlier
            # runs' totals under it (the reducer adds them to every usage event).
            extra["usage_base"] = {
                "tokens_in": a.tokens_in,
                "tokens_out": a.tokens_out,
                "cost_usd": a.cost_usd,
            }
        if via == "start":
            a = ctx.store.emit(a.id, "start", cause=cause, pid=os.getpid())
        else:
            a = ctx.store.emit(a.id, "resume", cause=cause, pid=os.getpid())
        a = ctx.store.emit(a.id, "update", fields={"extra": extra})
        try:
            return self._launch(a, repo, worktree, branch, how)
        except MulluiError as e:
            self.release(a)
            ctx.store.emit(a.id, "fail", cause=f"resume failed: {e}")
            raise
        except BaseException as e:
            self.release(a)
            ctx.store.emit(a.id, "fail", cause=f"resume failed: {type(e).__name__}: {e}")
            raise

    def _resumable(self, a: Agent, how: Resume) -> tuple[Path, Path, str]:
        """The agent's repository, worktree and branch, or the one-line refusal."""
        if a.removed:
            raise MulluiError(f"agent {a.name} was removed (`mullui rm`): nothing to resume")
        if a.state in RUNNING:
            raise MulluiError(
                f"agent {a.name} is still running ({a.state.value}): nothing to resume"
            )
        if a.state is State.DONE:
            raise MulluiError(
                f"agent {a.name} is done, not stopped: `mullui send {a.name} TEXT` gives it more"
            )
        if a.state not in (State.FAILED, State.STOPPED):
            raise MulluiError(
                f"agent {a.name} is {a.state.value}: only a stopped or failed agent resumes"
            )
        if not (a.repo and a.worktree and a.branch):
            raise MulluiError(f"agent {a.name} never got a worktree ({a.cause}): spawn it again")
        if a.is_over_budget() and (
            a.cost_usd is None or how.budget is None or how.budget <= a.cost_usd
        ):
            spent = f"${a.cost_usd:.2f}" if a.cost_usd is not None else "its limit"
            raise MulluiError(
                f"agent {a.name} stopped at its budget ({a.cause}): "
                f"`mullui resume {a.name} --budget USD` with USD above {spent}"
            )
        repo, worktree, branch = Path(a.repo), Path(a.worktree), a.branch
        there, has_branch = worktrees.presence(repo, worktree, branch)
        if not has_branch:
            raise MulluiError(
                f"agent {a.name}'s branch {branch} is gone (deleted outside mullui): "
                "nothing to resume it on" + (f"; its worktree {worktree} stays" if there else "")
            )
        if not there and not how.recreate:
            raise MulluiError(
                f"agent {a.name}'s worktree {worktree} is gone (removed by hand): "
                f"`mullui resume {a.name} --recreate` makes it again from branch {branch}"
            )
        if a.tmux_target:
            try:
                panes = self.ctx.tmux.panes() or {}
            except MulluiError:
                panes = {}  # no tmux server: certainly nothing of it runs
            pane = panes.get(a.id)
            if pane is not None and not pane.dead:
                raise MulluiError(
                    f"agent {a.name}'s window is still open ({a.tmux_target}): "
                    f"`mullui attach {a.name}`, or `mullui stop {a.name}` first"
                )
        return repo, worktree, branch

    @staticmethod
    def _discard(repo: Path, wt: worktrees.Worktree | None) -> None:
        if wt is not None:
            with contextlib.suppress(MulluiError):
                worktrees.discard(repo, wt)

    # ---- acting on an agent --------------------------------------------------------
    def send(self, a: Agent, text: str, *, raw: bool = False) -> None:
        if not a.tmux_target or a.state in (State.QUEUED, State.STOPPED) or a.removed:
            raise MulluiError(
                f"agent {a.name} has no running pane ({a.state.value}): nothing to send to"
            )
        if a.exit_code is not None:
            raise MulluiError(f"agent {a.name} has exited (exit {a.exit_code}): nothing to send to")
        if raw:
            self.ctx.tmux.send(a.tmux_target, text)
            return
        try:
            profile: Profile | None = get_profile(a.profile, self.ctx.config.profiles)
        except MulluiError:
            profile = None  # gone from the config: its text goes as typed
        dialog = replies.open_dialog(profile, a)
        if dialog is not None and replies.answer_held(
            self.ctx.tmux, self.ctx.store, self.ctx.paths.state_dir, a, dialog, text
        ):
            return
        delay = profile.enter_delay_s if profile is not None else 0.0
        if dialog is None:
            self.ctx.tmux.send(a.tmux_target, text, enter_delay=delay)
            return
        record = replies.Record(self.ctx.store, a)
        replies.answer(self.ctx.tmux, a, dialog, text, enter_delay=delay, record=record)

    def attach_argv(self, a: Agent) -> list[str] | None:
        """Inside tmux on our server: switch-client and return None; otherwise the argv to
        run in the foreground (returns when the user detaches)."""
        tmux = self.ctx.tmux
        if not a.tmux_target or a.removed:
            raise MulluiError(f"agent {a.name} has no tmux window ({a.state.value})")
        inside = os.environ.get("TMUX", "")
        if inside and inside.split(",")[0] == tmux.socket_path():
            tmux.attach(a.tmux_target)  # switch-client: returns at once
            return None
        if not tmux.server_alive():
            raise MulluiError(
                f"the tmux server of agent {a.name} is gone (socket {self.ctx.socket})"
            )
        return tmux.attach_argv(a.tmux_target)

    def stop(self, a: Agent) -> Agent:
        if a.state in (State.STOPPED,):
            return a
        a = self.ctx.store.emit(a.id, "stop", cause="stopped by user")
        self._end(a)
        self.release(a)
        return a

    def halt(self, a: Agent) -> None:
        self._end(a)
        self.release(a)

    def _end(self, a: Agent, *, kill: bool = False) -> None:
        """End the agent's window and its whole process tree (C-c first unless
        ``kill``); say so if any of its processes survived even SIGKILL."""
        if not a.tmux_target:
            return
        tmux = self.ctx.tmux
        try:
            left = tmux.kill(a.tmux_target) if kill else tmux.stop(a.tmux_target).survivors
        except MulluiError:
            return
        if left:
            pids = " ".join(map(str, left[:10]))
            _tell(self.ctx, f"{len(left)} process(es) of {a.name} survived SIGKILL: {pids}")

    def release(self, a: Agent) -> None:
        # Also when the directory is gone: a locked registration is what keeps
        # `git worktree prune` and `git branch -D` from cleaning up after a hand removal.
        if a.repo and a.worktree:
            with contextlib.suppress(MulluiError):
                worktrees.unlock(Path(a.repo), Path(a.worktree))

    def rm(self, a: Agent, *, force: bool = False) -> tuple[Agent, str | None]:
        saved = None
        if a.worktree and a.repo and a.branch:
            if a.state in RUNNING and not force:
                raise MulluiError(
                    f"agent {a.name} is {a.state.value}: "
                    f"`mullui stop {a.name}` first, or rm --force"
                )
            if force:
                # The process tree first: nothing it writes after the save is lost, and
                # no dev server it started keeps running from a deleted directory.
                self._end(a, kill=True)
            saved = worktrees.remove(
                Path(a.repo), Path(a.worktree), a.branch, force=force, agent_name=a.name
            )
        if a.state in RUNNING or a.state is State.QUEUED:
            self.ctx.store.emit(a.id, "stop", cause="removed")
        self._end(a, kill=True)
        a = self.ctx.store.emit(a.id, "removed", saved=saved)
        return a, saved

    def diff(self, a: Agent, *, color: bool = True) -> str:
        if not a.repo or not a.base:
            raise MulluiError(f"agent {a.name} has no worktree yet ({a.state.value})")
        if a.worktree and Path(a.worktree).exists():
            return worktrees.diff(Path(a.repo), a.base, Path(a.worktree), color=color)
        if a.branch:
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

    def logs(self, a: Agent, *, follow: bool = False, raw: bool = False) -> int:
        return logs.show(self.ctx, a, follow=follow, raw=raw)

    def branch_here(self, a: Agent) -> Agent:
        return a


def _tell(ctx: Context, line: str) -> None:
    """One line for the user (the CLI prints it on stderr; a face without a ``notice``
    callback has nobody to tell)."""
    if ctx.notice is not None:
        ctx.notice(line)
