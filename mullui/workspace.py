"""The composition root the faces use (CLI, TUI, demo): one mullui instance's
:class:`~mullui.context.Context` with the agent operations, the queue's batch spawns and
the merge bound to it, and the one place that starts ``mullui watch`` when a spawn or a
listing leaves work for a supervisor.

Nothing below the faces imports this module: the layers under it take a ``Context``.
The queue's batch spawns and the merge are imported where they are used, so that the
commands that need neither (``ls``, ``send``, ``stop``...) do not load them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from mullui import ledger, loop
from mullui.agents.base import Dialog
from mullui.context import Context
from mullui.errors import MulluiError, NotFound
from mullui.model import Agent, State
from mullui.operations import lifecycle, reconcile, replies
from mullui.operations.local import hook_argv, session_name
from mullui.operations.location import Resume
from mullui.operations.locations import location_for
from mullui.operations.names import slugify
from mullui.runtime import worktrees


class Workspace(Context):
    """Operations on the agents of one mullui instance."""

    #: who a supervisor started on our behalf says started it (``mullui watch --status``)
    started_by = "mullui"

    # ---- context -------------------------------------------------------------------
    def current_branch(self) -> str | None:
        """The branch of the worktree the user stands in (a linked one's own)."""
        if self.repo_or_none() is None:
            return None
        try:
            return worktrees.current_branch(self.cwd)
        except MulluiError:
            return None

    def log_path(self, ref: str) -> Path:
        a, row = self.find(ref)
        if row is not None:
            return self._folded_log(a)
        return self.paths.log_file(a.id)

    # ---- agents in the history -----------------------------------------------------
    def find(self, ref: str) -> tuple[Agent, dict[str, Any] | None]:
        """The agent ``ref`` names, live (row None) or folded into the history (its ledger
        line; the agent as its kept events say): read only, nothing comes back."""
        try:
            return super().get(ref), None
        except NotFound:
            row = ledger.find(self.paths, ref)
            if row is None:
                raise
        return ledger.folded_agent(self.paths, row), row

    def get(self, ref: str) -> Agent:
        """The agent ``ref`` names.  One folded into the history whose worktree or branch
        is still there comes back to the live store first (``mullui.ledger.revive``): every
        operation on it (rm saving its work, merge, ack, resume...) then acts as on any
        agent.  One with neither left is refused in one line saying what is kept."""
        a, row = self.find(ref)
        if row is None:
            return a
        self._revivable(a, row)
        return ledger.revive(self, row)

    def _in_history(self, a: Agent, row: dict[str, Any]) -> str:
        when = str(row.get("folded_at") or "")[:10]
        return f"agent {a.name} ({a.id}) is in the history ({a.state.value}, folded {when})"

    def _revivable(self, a: Agent, row: dict[str, Any]) -> None:
        if a.host is not None:
            raise MulluiError(
                f"{self._in_history(a, row)}; it ran on host {a.host}: act on it there "
                "(its own mullui keeps it)"
            )
        wt, br = False, False
        if a.repo:
            try:
                wt, br = worktrees.presence(
                    Path(a.repo), Path(a.worktree) if a.worktree else None, a.branch
                )
            except MulluiError:
                pass  # its repository is gone
        if not (wt or br):
            log = " and `mullui logs` its output" if self._folded_log(a).exists() else ""
            raise MulluiError(
                f"{self._in_history(a, row)}: its worktree and branch are gone, nothing is left "
                f"to act on; `mullui ls --all` and `mullui report` show it{log}"
            )

    def _folded_log(self, a: Agent) -> Path:
        return ledger.history_dir(self.paths) / f"{a.id}.log"

    # ---- listing -------------------------------------------------------------------
    def agents(self, *, reconcile: bool = True) -> list[Agent]:
        """Every agent, caught up with its events and (optionally) checked against tmux."""
        agents = lifecycle.agents(self, reconcile=reconcile)
        if reconcile and loop.remote_agents_live(agents):
            self.ensure_supervisor()
        return agents

    def reconcile(self, agents: list[Agent]) -> list[Agent]:
        return reconcile.reconcile(self, agents)

    def stall_deadline(self, a: Agent) -> datetime | None:
        return reconcile.stall_deadline(self, a)

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
            from mullui import queue  # chains and backlogs: only their spawns load them

            a = queue.spawn_chain(self, chain, task, name=name, base=base, host=host)
            self.ensure_supervisor()
            return a
        a = lifecycle.spawn(
            self, task, agent=agent, name=name, base=base, after=after, host=host, extra=extra
        )
        # Live or queued now: something must tell the human when it ends or asks.
        self.ensure_supervisor()
        return a

    def spawn_backlog(self, path: str | Path) -> list[Agent]:
        """Queue every task of a backlog file; a supervisor starts them."""
        from mullui import queue  # chains and backlogs: only their spawns load them

        agents = queue.spawn_backlog(self, path)
        self.ensure_supervisor()
        return agents

    def start(self, agent_id: str) -> Agent:
        """Launch a queued agent: worktree, hooks, tmux window. Nothing half-made on error."""
        return lifecycle.start(self, agent_id)

    # ---- acting on agents ----------------------------------------------------------
    def resume(self, ref: str, how: Resume | None = None) -> Agent:
        """Start a stopped or failed agent again, continuing its conversation (live or
        queued for a free slot now: a supervisor tells the human when it ends or asks).
        One in the history comes back for it; one that could not resume stays there."""
        a, row = self.find(ref)
        if row is not None and (a.removed or a.state not in (State.FAILED, State.STOPPED)):
            what = (
                "was removed (`mullui rm`)"
                if a.removed
                else f"finished its work ({a.state.value}: {a.cause})"
            )
            raise MulluiError(
                f"{self._in_history(a, row)}: it {what}, nothing to resume; `mullui spawn "
                f"--base {a.branch or 'BRANCH'} TASK` starts a new agent on its work"
            )
        a = lifecycle.resume(self, ref, how)
        self.ensure_supervisor()
        return a

    def interrupted(self) -> list[Agent]:
        """The agents an interruption failed (``resume --all``), oldest first."""
        return lifecycle.interrupted(self.agents())

    def reply_hint(self, a: Agent) -> str | None:
        """What y / n / other text do when the agent is on a dialog of its CLI that needs
        its own keys (None: a reply is typed as given)."""
        return replies.dialog_hint(a, self.config.profiles)

    def reply_dialog(self, a: Agent) -> Dialog | None:
        """The dialog of its CLI the agent waits on, when a reply is mapped to its keys."""
        return replies.dialog_of(a, self.config.profiles)

    def send(self, ref: str, text: str, *, raw: bool = False) -> Agent:
        a = lifecycle.send(self, ref, text, raw=raw)
        self.ensure_supervisor()  # answered or given more work: it will change again
        return a

    def attach_argv(self, ref: str) -> list[str] | None:
        """Switch to the agent's pane. Inside tmux on our server: switch-client and return
        None; otherwise the argv to run in the foreground (returns when the user detaches)."""
        return lifecycle.attach_argv(self, ref)

    def stop(self, ref: str) -> Agent:
        return lifecycle.stop(self, ref)

    def rm(self, ref: str, *, force: bool = False) -> tuple[Agent, str | None]:
        """Remove the worktree (and window); refuses to lose work (see SPEC)."""
        return lifecycle.rm(self, ref, force=force)

    def snooze(
        self,
        ref: str,
        *,
        minutes: float | None = None,
        until: datetime | None = None,
        until_change: bool = False,
    ) -> Agent:
        a = lifecycle.snooze(self, ref, minutes=minutes, until=until, until_change=until_change)
        if a.snoozed_until is not None:
            self.ensure_supervisor()  # a wake time: something must be there when it comes
        return a

    def wake(self, ref: str) -> Agent:
        return lifecycle.wake(self, ref)

    def ack(self, ref: str) -> Agent:
        """Out of the inbox; work not merged yet is said (``notice``), never hidden."""
        from mullui import review  # git plumbing: only an ack or a merge loads it

        try:
            left = review.unmerged(self, self.get(ref))
        except MulluiError:
            left = None  # the ack itself does not depend on git
        a = lifecycle.ack(self, ref)
        if left and self.notice is not None:
            self.notice(left)
        return a

    def diff(self, ref: str, *, color: bool = True) -> str:
        """The agent's changes against its base (one in the history stays there)."""
        a, _row = self.find(ref)
        return location_for(self, a).diff(a, color=color)

    def logs(self, ref: str, *, follow: bool = False, raw: bool = False) -> int:
        """The agent's output log; one in the history: the log kept there, or one line
        saying what is kept."""
        a, row = self.find(ref)
        if row is None:
            return location_for(self, a).logs(a, follow=follow, raw=raw)
        from mullui import logs

        path = self._folded_log(a)
        if not path.exists():
            raise MulluiError(
                f"{self._in_history(a, row)}: no output log was kept "
                f"({'it ran on ' + a.host if a.host else 'it wrote none'}); its events and "
                "its ledger row are (`mullui ls --all`, `mullui report`)"
            )
        return logs.show(self, a, path=path, raw=raw)

    def merge(self, ref: str, into: str | None = None, *, commit: bool = False) -> str:
        from mullui import review  # git merge plumbing: only a merge loads it

        return review.merge(self, self.get(ref), into=into, commit=commit)

    # ---- the supervisor ------------------------------------------------------------
    def ensure_supervisor(self) -> None:
        """Make sure a supervisor runs to notify and start queued agents: one refused
        flock when one does, else a hidden ``mullui watch`` (:func:`loop.ensure_running`)."""
        loop.ensure_running(self, started_by=self.started_by)


__all__ = [
    "NotFound",
    "Workspace",
    "hook_argv",
    "session_name",
    "slugify",
]
