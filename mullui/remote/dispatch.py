"""Agents that run on a remote host: the same ``mullui`` CLI, run there.

:class:`RemoteLocation` is the :class:`~mullui.operations.location.Location` of every
agent with a ``host``.  An agent spawned
with ``--host NAME`` lives on that host (worktree, tmux window, hooks, logs, its record);
locally there is a *mirror* record with the same id and ``host = NAME``, kept up to date
by the supervisor's link to the host's event stream (``mirror.py``).  Everything the
user does to it (send, stop, rm, logs, attach) is the matching ``mullui`` command run
on the host over the shared ssh connection, argv quoted by :class:`SshHost`.

A merge is the exception: the user reviews and merges in their *local* checkout, so
the agent's branch is fetched from the host's repository into the local one (over the
same ssh connection) and merged there like a local agent's (``branch_here``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mullui.config import Host
from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import RESUME_MANUAL, RUNNING, Agent, State
from mullui.operations.location import Location, Resume
from mullui.operations.names import unique_name
from mullui.remote import untrusted
from mullui.remote.hosts import ssh_host
from mullui.remote.ssh import SshHost
from mullui.textsafe import LogFilter

_ID = re.compile(r"[0-9a-f]{8}\Z")
_SAVED = re.compile(r"^saved uncommitted work of .* as ([0-9a-f]{7,40}) on ", re.M)

#: Remote commands that change something get more time than a glance at a log.
SPAWN_TIMEOUT_S = 120.0
COMMAND_TIMEOUT_S = 60.0

_cache: dict[tuple[str, str], SshHost] = {}


def host_config(ctx: Context, name: str) -> Host:
    """The ``[hosts.NAME]`` table, or a one-line error naming the config files."""
    hosts = ctx.config.hosts
    if name not in hosts:
        known = ", ".join(sorted(hosts)) or "none configured"
        raise MulluiError(
            f"no host {name!r} in the config (known: {known}): add a [hosts.{name}] table"
            f" to {ctx.paths.config_file} (see docs/remote.md)"
        )
    return hosts[name]


def transport(ctx: Context, name: str) -> tuple[Host, SshHost]:
    """The host's config and its (cached, so its master is reused) ssh transport."""
    cfg = host_config(ctx, name)
    key = (str(ctx.paths.state_dir), repr(cfg))  # Host holds a dict: not hashable
    if key not in _cache:
        _cache[key] = ssh_host(cfg, ctx.paths)
    return cfg, _cache[key]


def _why(r: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in r.stderr.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return f"exit {r.returncode}"
    return lines[-1].removeprefix("mullui: ")


def run_mullui(
    ctx: Context,
    name: str,
    args: list[str],
    *,
    timeout: float = COMMAND_TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``mullui ARGS`` in the host's repository; a refusal there is a MulluiError
    carrying the remote's own one-line message."""
    cfg, host = transport(ctx, name)
    r = host.run([*cfg.mullui, *args], cwd=cfg.repo, timeout=timeout)
    if r.returncode == 127 and not r.stdout:
        raise MulluiError(
            f"`{' '.join(cfg.mullui)}` did not run on {name}: {_why(r)}"
            f" (`mullui hosts check {name}` says what is missing)"
        )
    if r.returncode != 0:
        raise MulluiError(f"on {name}: {_why(r)}")
    return r


def _host_of(a: Agent) -> str:
    if a.host is None:
        raise MulluiError(f"agent {a.name} runs on this machine, not on a host")
    return a.host


class RemoteLocation(Location):
    """An agent on host ``host``: its own mullui there does the work; here is a mirror."""

    def __init__(self, ctx: Context, host: str) -> None:
        super().__init__(ctx)
        self.host = host

    # ---- spawn ---------------------------------------------------------------------------
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
        """Start an agent on the host (``mullui spawn --no-attach`` run there) and create
        its local mirror record with the same id.  A supervisor must follow the host for
        the mirror to move: the face that spawned makes sure one runs."""
        ctx, host = self.ctx, self.host
        cfg = host_config(ctx, host)
        if "\x00" in task:
            raise MulluiError("the task contains a NUL byte, which no program can receive")
        if after:
            prev = ctx.get(after)
            if prev.host != host:
                where = f"host {prev.host!r}" if prev.host else "this machine"
                raise MulluiError(
                    f"--after {prev.name} runs on {where}, not on {host}: a follow-up on a host"
                    " must follow an agent on the same host"
                )
            after = prev.id
        local_name = unique_name(ctx, name, task)
        args = ["spawn", "--no-attach"]
        if agent:
            args += ["--agent", agent]
        if name:
            args += ["--name", name]
        if base:
            args += ["--base", base]
        if after:
            args += ["--after", after]
        # "--" ends the options: a task such as "-rf" or "--help" is the task, not a flag.
        r = run_mullui(ctx, host, [*args, "--", task], timeout=SPAWN_TIMEOUT_S)
        out = r.stdout.decode(errors="replace").split()
        agent_id = out[-1] if out else ""
        if not _ID.match(agent_id):
            raise MulluiError(
                f"`mullui spawn` on {host} printed {agent_id!r} instead of an agent id:"
                f" is mullui there the same version? (`mullui hosts check {host}`)"
            )
        if ctx.store.get(agent_id) is not None:
            raise MulluiError(f"agent id {agent_id} from {host} is already used here; spawn again")
        record = Agent(
            id=agent_id,
            name=local_name,
            profile=agent or ctx.config.default_agent,
            task=task,
            state=State.STARTING,
            cause=f"spawned on {host}",
            host=host,
            repo=cfg.repo,
            base=base,
            after=after,
            # spawn_base: where a merge goes, decided here (the mirrored base is the host's
            # word; see untrusted.py).
            extra={
                "remote_seq": 0,
                "local_repo": str(ctx.repo_or_none() or ""),
                "spawn_base": base,
            },
        )
        a, _token = ctx.store.create(record)
        return a

    def start(self, a: Agent) -> Agent:
        """The queue's start for a remote agent: the host's own mullui starts its queued
        agents, so a mirrored one needs nothing from here."""
        a = self.ctx.store.load(a.id)
        if "remote_seq" not in a.extra:
            raise MulluiError(
                f"{a.name}: queuing agents here for host {a.host!r} is not supported yet"
                " (chains on hosts): spawn the steps there with --host and --after"
            )
        return a

    # ---- acting on a remote agent --------------------------------------------------------
    def resume(self, a: Agent, how: Resume) -> Agent:
        """``mullui resume`` on the host (its own refusals come back as one line); the
        mirror follows the host's record through the supervisor's link."""
        if a.removed:
            raise MulluiError(f"agent {a.name} was removed (`mullui rm`): nothing to resume")
        if a.state not in (State.FAILED, State.STOPPED):
            raise MulluiError(
                f"agent {a.name} is {a.state.value} on {self.host}: only a stopped or failed "
                "agent resumes"
            )
        args = ["resume", a.id]
        if how.prompt is not None:
            args.append(f"--prompt={how.prompt}")
        if how.budget is not None:
            args += ["--budget", repr(how.budget)]
        if how.fresh:
            args.append("--fresh")
        if how.recreate:
            args.append("--recreate")
        if how.cause != RESUME_MANUAL:
            args += ["--cause", how.cause]
        run_mullui(self.ctx, self.host, args, timeout=SPAWN_TIMEOUT_S)
        if how.budget is not None:
            extra = {**a.extra, "max_cost_usd": how.budget}
            self.ctx.store.emit(a.id, "update", fields={"extra": extra})
        return self.ctx.store.emit(a.id, "resume", cause=how.cause)

    def send(self, a: Agent, text: str, *, raw: bool = False) -> None:
        """``mullui send`` on the agent's host: the host knows what its agent waits on and
        maps a reply to a permission dialog's keys there."""
        run_mullui(self.ctx, self.host, ["send", *(["--raw"] if raw else []), "--", a.id, text])

    def stop(self, a: Agent) -> Agent:
        """Stop the agent on its host; the local record says so at once."""
        if a.state is State.STOPPED:
            return a
        run_mullui(self.ctx, self.host, ["stop", a.id])
        return self.ctx.store.emit(a.id, "stop", cause="stopped by user")

    def halt(self, a: Agent) -> None:
        with contextlib.suppress(MulluiError):
            self.stop(a)

    def release(self, a: Agent) -> None:
        """Nothing here: the host's own supervisor frees the worktree there."""

    def rm(self, a: Agent, *, force: bool = False) -> tuple[Agent, str | None]:
        """``mullui rm`` on the host (which refuses to lose work exactly as locally), then
        the local record is marked removed."""
        store = self.ctx.store
        r = run_mullui(self.ctx, self.host, ["rm", *(["--force"] if force else []), a.id])
        m = _SAVED.search(r.stdout.decode(errors="replace"))
        saved = m.group(1) if m else None
        a = store.get(a.id) or a
        if a.state in RUNNING or a.state in (State.QUEUED, State.UNKNOWN):
            store.emit(a.id, "stop", cause="removed")
        a = store.emit(a.id, "removed", saved=saved)
        return a, saved

    def logs(self, a: Agent, *, follow: bool = False, raw: bool = False) -> int:
        """Print the agent's log as its host has it; with ``follow``, stream it (``mullui
        logs -f`` there) until the agent ends or Ctrl-C.  The host sends every byte
        (``--raw``) and this side filters them as for a local log: a host is not trusted
        with the user's terminal (``textsafe.LogFilter``)."""
        name = self.host
        shown = None if raw else LogFilter(terminal=sys.stdout.isatty())
        out = sys.stdout.buffer
        if not follow:
            r = run_mullui(self.ctx, name, ["logs", "--raw", a.id], timeout=COMMAND_TIMEOUT_S)
            out.write(r.stdout if shown is None else shown.feed(r.stdout) + shown.close())
            out.flush()
            return 0
        cfg, host = transport(self.ctx, name)
        host.ensure_master()
        sys.stdout.flush()
        # Output reaches the terminal as it comes: read as ssh delivers it, filtered.
        # stderr goes to a file (a pipe nobody drains could fill and stall ssh); it
        # explains a failure in one line.
        with (
            tempfile.TemporaryFile() as err,
            subprocess.Popen(
                host.command_argv([*cfg.mullui, "logs", "--raw", "-f", a.id], cwd=cfg.repo),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            ) as proc,
        ):
            assert proc.stdout is not None
            try:
                while chunk := os.read(proc.stdout.fileno(), 65536):
                    out.write(chunk if shown is None else shown.feed(chunk))
                    out.flush()
            finally:
                if shown is not None:
                    out.write(shown.close())
                    out.flush()
            rc = proc.wait()
            err.seek(0)
            stderr = err.read()
        done = subprocess.CompletedProcess(proc.args, rc, b"", stderr)
        problem = host.ssh_error(rc, stderr, [*cfg.mullui, "logs"])
        if problem is not None:
            raise problem
        if rc not in (0, 130, -2):
            raise MulluiError(f"on {name}: {_why(done)}")
        return 0

    def attach_argv(self, a: Agent) -> list[str]:
        """``ssh -t HOST tmux -L SOCK attach-session -t TARGET``: run in the foreground, it
        returns when the user detaches."""
        if not a.tmux_target or a.removed:
            raise MulluiError(f"agent {a.name} has no tmux window on {self.host} ({a.state.value})")
        cfg, host = transport(self.ctx, self.host)
        host.ensure_master()
        socket = cfg.env.get("MULLUI_TMUX_SOCKET") or "mullui"
        return host.attach_argv(socket, a.tmux_target)

    def diff(self, a: Agent, *, color: bool = True) -> str:
        """The agent's changes against its base, computed by git on the host (tracked
        files; untracked ones show once committed or after ``rm --force``)."""
        name = self.host
        if not a.base:
            raise MulluiError(f"agent {a.name} has no base yet ({a.state.value})")
        cfg, host = transport(self.ctx, name)
        flags = ["--color=always"] if color else []
        if a.worktree and not a.removed:
            argv = ["git", "-C", a.worktree, "diff", *flags, a.base, "--"]
        elif a.branch:
            argv = ["git", "-C", a.repo or cfg.repo, "diff", *flags, f"{a.base}...{a.branch}", "--"]
        else:
            raise MulluiError(f"agent {a.name} has no worktree or branch to diff")
        r = host.run(argv, cwd=cfg.repo, timeout=COMMAND_TIMEOUT_S)
        if r.returncode != 0:
            raise MulluiError(f"cannot diff {a.name} on {name}: {_why(r)}")
        return r.stdout.decode(errors="replace")

    def branch_here(self, a: Agent) -> Agent:
        """Refuse while the agent has uncommitted work on the host (a merge would leave it
        out), fetch its branch into the local repository, and return the agent as a
        local branch there: merged exactly as a local agent's."""
        name = self.host
        local = a.extra.get("local_repo") or ""
        repo = Path(local) if local and Path(local).is_dir() else self.ctx.repo()
        if a.worktree and not a.removed and a.state not in (State.WORKING, State.STARTING):
            _cfg, host = transport(self.ctx, name)
            r = host.run(
                ["git", "-C", a.worktree, "status", "--porcelain", "--untracked-files=all"],
                timeout=COMMAND_TIMEOUT_S,
            )
            left = [ln[3:] for ln in r.stdout.decode(errors="replace").splitlines() if ln[3:]]
            if r.returncode == 0 and left:
                more = f" and {len(left) - 5} more" if len(left) > 5 else ""
                raise MulluiError(
                    f"{a.name} has uncommitted changes on {name} that a merge would leave out:"
                    f" {', '.join(left[:5])}{more} — `mullui rm --force {a.name}` commits them"
                    f" to {a.branch}, then merge again"
                )
        ref = fetch_branch(self.ctx, a, repo)[1]
        # The merge works on the fetched ref in this repository (the host's worktree is not
        # here), into the base this side recorded at spawn - or the current branch.
        return dataclasses.replace(
            a,
            host=None,
            repo=str(repo),
            worktree=None,
            base=a.extra.get("spawn_base"),
            extra={**a.extra, "merge_ref": ref},
        )


# ---- fetching a remote agent's branch -----------------------------------------------------
def fetch_branch(ctx: Context, a: Agent, repo: Path) -> tuple[str, str]:
    """Fetch the agent's branch from the host's repository into ``repo``'s private ref
    ``refs/mullui/hosts/<host>/<id>`` (force-updated: it is ours; no local branch is
    touched); returns the fetched sha and that ref.

    The branch must be the agent's own (``untrusted.agent_branch_ok``): a host that
    says ``release`` or ``*`` gets nothing fetched.  git's own ssh transport, pointed at
    our shared connection (``GIT_SSH_COMMAND`` with our ControlPath), and
    ``git-upload-pack`` run with the host's env so a PATH set in ``[hosts.NAME] env``
    applies to it too.
    """
    name = _host_of(a)
    if not a.branch:
        raise MulluiError(f"{a.name} has no branch yet ({a.state.value}): nothing to merge")
    if not untrusted.agent_branch_ok(a.branch, a.id):
        raise MulluiError(
            f"{a.name}'s branch {a.branch!r} (from {name}) is not an agent branch of mullui"
            f" (mullui/...-{a.id}): nothing fetched; look at the host before merging"
        )
    cfg, host = transport(ctx, name)
    host.ensure_master()
    upload = ["git-upload-pack"]
    if cfg.env:
        upload = ["env", *(f"{k}={v}" for k, v in cfg.env.items()), *upload]
    # The repository the config names: a host's word on where its agent's repo is does
    # not decide what this side reads.
    remote_repo = cfg.repo
    env = dict(os.environ)
    env["GIT_SSH_COMMAND"] = shlex.join(host.ssh_argv())
    env["GIT_SSH_VARIANT"] = "ssh"
    ref = untrusted.private_ref(name, a.id)
    r = subprocess.run(
        [
            "git",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            f"--upload-pack={shlex.join(upload)}",
            f"{host.destination}:{remote_repo}",
            f"+refs/heads/{a.branch}:{ref}",
        ],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if r.returncode != 0:
        err = host.ssh_error(255, r.stderr, ["git"])
        if err is not None:
            raise err
        raise MulluiError(f"cannot fetch {a.branch} from {name}: {_why(r)}")
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", ref],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    if not sha:
        raise MulluiError(f"fetched {a.branch} from {name} but it is not in {repo}")
    return sha, ref
