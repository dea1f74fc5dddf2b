"""Remote hosts: what one lacks (``check``) and a resumable link to its event stream.

``check`` answers ``mullui hosts check NAME`` in one ssh round trip.  ``HostLink`` is the
supervisor's connection to one host: it follows ``mullui events --follow --since CURSOR``
there, hands each event to a callback exactly once (events carry a monotonically
increasing ``cursor``; anything at or below the last one delivered is a replay and is
dropped), keeps that cursor in a small file so a restarted supervisor resumes where it
stopped, and when the host drops it reports ``unreachable`` (since when, and why),
reconnects with exponential backoff and replays what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mullui.config import Host
from mullui.errors import MulluiError
from mullui.files import atomic_write_json, read_json
from mullui.paths import Paths
from mullui.remote.ssh import SshHost, control_dir_for

log = logging.getLogger(__name__)

MIN_TMUX = (3, 2)  # pane-died hooks and `display -p` formats the runtime relies on

#: Agent CLIs a host may offer; none is required, each enables its profile there.
AGENT_CLIS: dict[str, str] = {
    "claude": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "aider": "python -m pip install aider-install && aider-install",
    "gemini": "npm install -g @google/gemini-cli",
    "opencode": "npm install -g opencode-ai",
}


def ssh_host(host: Host, paths: Paths, *, ssh_config: Path | None = None) -> SshHost:
    """The transport for a ``[hosts.NAME]`` table of the config."""
    options: dict[str, str] = {}
    for opt in host.ssh_options:
        # ssh itself accepts both "Key=Value" and "Key Value".
        key, _, value = opt.partition("=") if "=" in opt else opt.partition(" ")
        if not key.strip() or not value.strip():
            raise MulluiError(
                f"[hosts.{host.name}] ssh_options: {opt!r} is not KEY=VALUE (e.g. 'Port=2222')"
            )
        options[key.strip()] = value.strip()
    return SshHost(
        host.name,
        host.ssh,
        control_dir=control_dir_for(paths),
        ssh_config=ssh_config,
        options=options,
        remote_env=host.env,
        instance=str(paths.state_dir),
    )


def unreachable_because(host: SshHost, *, timeout: float = 15) -> str | None:
    """None when the host answers (its shared connection is up or could be opened),
    else the one-line reason; for ``mullui hosts`` listing many hosts."""
    try:
        host.ensure_master(timeout=timeout)
    except MulluiError as e:
        return str(e)
    return None


# ------------------------------------------------------------------------------ check
@dataclass(frozen=True)
class CheckItem:
    """One thing a host needs (or may offer), and how to get it when it is missing."""

    name: str
    ok: bool
    required: bool
    detail: str  # version found, or what is wrong
    fix: str | None = None  # how to install / repair it; None when ok


@dataclass(frozen=True)
class HostReport:
    """What ``mullui hosts check NAME`` prints."""

    host: str
    reachable: bool
    error: str | None
    items: tuple[CheckItem, ...] = ()

    @property
    def ok(self) -> bool:
        """Reachable and nothing required is missing: agents can run there."""
        return self.reachable and all(i.ok for i in self.items if i.required)

    @property
    def missing(self) -> tuple[CheckItem, ...]:
        """Required items first, then optional ones (agent CLIs)."""
        lacking = [i for i in self.items if not i.ok]
        return tuple(sorted(lacking, key=lambda i: not i.required))

    def item(self, name: str) -> CheckItem:
        return next(i for i in self.items if i.name == name)

    def lines(self) -> list[str]:
        """Human-readable, one line per item."""
        if not self.reachable:
            return [f"{self.host}: unreachable: {self.error}"]
        out = [f"{self.host}: {'ready' if self.ok else 'not ready'}"]
        for i in self.items:
            mark = "ok " if i.ok else ("MISSING" if i.required else "-  ")
            line = f"  {mark} {i.name}: {i.detail}"
            if i.fix:
                line += f" -> {i.fix}"
            out.append(line)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "reachable": self.reachable,
            "ok": self.ok,
            "error": self.error,
            "items": [dataclasses.asdict(i) for i in self.items],
        }


# One round trip: $1 is the repo path, the rest the argv that runs mullui there.  Both
# are data, never spliced into the script.
_PROBE = r"""
repo=$1; shift
case $repo in "~"|"~/"*) repo="$HOME${repo#"~"}";; esac
for t in git tmux claude codex aider gemini opencode; do
  if command -v "$t" >/dev/null 2>&1; then echo "have $t"; else echo "lack $t"; fi
done
command -v git >/dev/null 2>&1 && echo "version git $(git --version 2>&1 | head -n 1)"
command -v tmux >/dev/null 2>&1 && echo "version tmux $(tmux -V 2>&1 | head -n 1)"
if command -v "$1" >/dev/null 2>&1; then
  echo "have mullui"
  v=$("$@" --version 2>/dev/null </dev/null | head -n 1) && echo "version mullui $v"
else
  echo "lack mullui"
fi
if [ ! -d "$repo" ]; then echo "repo missing"
elif git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then echo "repo git"
else echo "repo notgit"; fi
"""


def _version_tuple(text: str) -> tuple[int, ...] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check(
    host: SshHost,
    repo: str,
    *,
    mullui: Sequence[str] = ("mullui",),
    timeout: float = 30,
) -> HostReport:
    """What ``host`` lacks to run agents: reachable, git, tmux >= 3.2, mullui, the repo;
    and which agent CLIs it offers.  Never raises for a problem on the host: the report
    says what is wrong and how to fix it."""
    try:
        r = host.run(["sh", "-c", _PROBE, "sh", repo, *mullui], timeout=timeout)
    except MulluiError as e:
        return HostReport(host.name, reachable=False, error=str(e))
    if r.returncode != 0:
        why = r.stderr.decode(errors="replace").strip().splitlines()
        return HostReport(
            host.name,
            reachable=True,
            error=f"the probe failed there (exit {r.returncode}): {why[-1] if why else ''}",
        )
    have: set[str] = set()
    versions: dict[str, str] = {}
    repo_state = "missing"
    for line in r.stdout.decode(errors="replace").splitlines():
        word, _, rest = line.partition(" ")
        if word == "have":
            have.add(rest)
        elif word == "version":
            tool, _, v = rest.partition(" ")
            versions[tool] = v.strip()
        elif word == "repo":
            repo_state = rest
    items: list[CheckItem] = []

    if "git" in have:
        items.append(CheckItem("git", True, True, versions.get("git", "")))
    else:
        items.append(CheckItem("git", False, True, "not found", "install git (apt install git)"))

    tmux_v = versions.get("tmux", "")
    tmux_t = _version_tuple(tmux_v)
    if "tmux" not in have:
        items.append(CheckItem("tmux", False, True, "not found", "install tmux >= 3.2"))
    elif tmux_t is not None and tmux_t < MIN_TMUX:
        items.append(CheckItem("tmux", False, True, f"{tmux_v} is too old", "install tmux >= 3.2"))
    else:
        items.append(CheckItem("tmux", True, True, tmux_v))

    if "mullui" in have:
        items.append(CheckItem("mullui", True, True, versions.get("mullui") or "version unknown"))
    else:
        items.append(
            CheckItem(
                "mullui",
                False,
                True,
                f"`{' '.join(mullui)}` not found on PATH",
                f"pip install mullui there (or set PATH in [hosts.{host.name}] env)",
            )
        )

    if repo_state == "git":
        items.append(CheckItem("repo", True, True, repo))
    elif repo_state == "notgit":
        items.append(
            CheckItem("repo", False, True, f"{repo} is not a git repository", "git init there")
        )
    else:
        items.append(
            CheckItem(
                "repo",
                False,
                True,
                f"{repo} does not exist",
                f"git clone it there, or fix repo in [hosts.{host.name}]",
            )
        )

    for cli, fix in AGENT_CLIS.items():
        ok = cli in have
        items.append(CheckItem(cli, ok, False, "found" if ok else "not found", None if ok else fix))
    return HostReport(host.name, reachable=True, error=None, items=tuple(items))


# ----------------------------------------------------------------------- the link
class Backoff:
    """Exponential reconnect delays, ``base`` doubling up to ``cap``, with jitter so
    many links that dropped together do not reconnect in lockstep."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, jitter: float = 0.2) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter
        self.attempt = 0

    def next(self) -> float:
        d = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt += 1
        return min(self.cap, d * (1 + random.uniform(0, self.jitter)))

    def reset(self) -> None:
        self.attempt = 0


def cursor_file(paths: Paths, host_name: str) -> Path:
    """Where the last delivered event cursor of a host is kept."""
    return paths.state_dir / "hosts" / f"{host_name}.json"


def _default_argv(mullui: Sequence[str]) -> Callable[[int], list[str]]:
    def argv(cursor: int) -> list[str]:
        return [*mullui, "events", "--follow", "--since", str(cursor)]

    return argv


EventCallback = Callable[[dict[str, Any]], Awaitable[None] | None]
StateCallback = Callable[[str, datetime], None]
CaughtUpCallback = Callable[[], Awaitable[None] | None]

CONNECTING, CONNECTED, UNREACHABLE, STOPPED = "connecting", "connected", "unreachable", "stopped"


class HostLink:
    """The supervisor's link to one host's event stream: once-only delivery, a durable
    cursor, and reconnection.

    With ``idle_timeout_s`` set, a stream silent for that long counts as dropped (the
    remote side sends ``{"kind": "heartbeat"}`` lines more often than that).

    States: ``connecting`` -> ``connected`` -> ``unreachable`` (since the drop, with
    ``reason``) -> ``connected`` ... -> ``stopped``.  ``on_state(state, since)`` is called
    on every change; ``on_event(event)`` for each new event, in cursor order, and the
    cursor is saved after it returns (so an event is delivered again only if mullui dies
    between the two).  ``on_caught_up()`` is called on the first heartbeat of each
    connection: the remote side sends it after the backlog, so by then every event missed
    while away has been delivered.  ``cwd`` is where the remote command runs (the host's
    repository, so its ``.mullui.toml`` applies there).
    """

    def __init__(
        self,
        host: SshHost,
        *,
        cursor_path: Path,
        on_event: EventCallback,
        on_state: StateCallback,
        argv: Callable[[int], list[str]] | None = None,
        mullui: Sequence[str] = ("mullui",),
        backoff: Backoff | None = None,
        healthy_after_s: float = 10.0,
        idle_timeout_s: float | None = None,
        confirm_after_s: float = 2.0,
        on_caught_up: CaughtUpCallback | None = None,
        cwd: str | None = None,
    ) -> None:
        self.host = host
        self.on_caught_up = on_caught_up
        self.cwd = cwd
        self._caught_up = False
        self.cursor_path = cursor_path
        self.on_event = on_event
        self.on_state = on_state
        self.argv = argv or _default_argv(mullui)
        self.backoff = backoff or Backoff()
        self.healthy_after_s = healthy_after_s
        self.idle_timeout_s = idle_timeout_s
        self.confirm_after_s = confirm_after_s
        self.state = CONNECTING
        self.since = datetime.now(UTC)
        self.reason: str | None = None
        self.cursor = self._load_cursor()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        #: lines from the host that could not be taken (skipped), and why the last one
        self.bad_lines = 0
        self.last_bad: str | None = None

    def _load_cursor(self) -> int:
        try:
            data = read_json(self.cursor_path)
        except ValueError:
            # Written atomically, so this is damage from outside; replaying everything
            # is safe (the reducer ignores repeats), dropping events is not.
            log.warning(
                "%s is corrupt; replaying %s's events from the start",
                self.cursor_path,
                self.host.name,
            )
            return 0
        if isinstance(data, dict) and isinstance(data.get("cursor"), int):
            return int(data["cursor"])
        return 0

    def _save_cursor(self) -> None:
        atomic_write_json(
            self.cursor_path,
            {"host": self.host.name, "cursor": self.cursor, "at": datetime.now(UTC).isoformat()},
        )

    def _set_state(self, state: str, reason: str | None = None) -> None:
        # The reason of the last drop outlives a stop: "why was it down" stays answerable.
        if state != STOPPED:
            self.reason = reason
        if state == self.state:
            return
        self.state = state
        self.since = datetime.now(UTC)
        self.on_state(state, self.since)

    async def _deliver(self, line: str) -> bool:
        try:
            ev = json.loads(line)
        except (ValueError, RecursionError):  # deeply nested JSON: RecursionError
            self._bad(line, "not a JSON object mullui can read")
            return False
        if isinstance(ev, dict) and ev.get("kind") == "heartbeat":
            # Liveness (and how the remote side notices we are gone); the first one of a
            # connection also says the backlog is through.
            if not self._caught_up:
                self._caught_up = True
                if self.on_caught_up is not None:
                    done = self.on_caught_up()
                    if inspect.isawaitable(done):
                        await done
            return False
        cursor = ev.get("cursor") if isinstance(ev, dict) else None
        if not isinstance(cursor, int) or isinstance(cursor, bool):
            log.warning(
                "%s: skipping an event without an integer cursor: %.200s", self.host.name, line
            )
            return False
        if cursor <= self.cursor:
            return False  # a replay of something already delivered
        try:
            result = self.on_event(ev)
            if inspect.isawaitable(result):
                await result
        except (MulluiError, OSError):
            raise  # trouble here (a full disk): reconnect and have it replayed
        except Exception as e:  # the entry itself is bad: skip it, said once, go on
            self._bad(line, f"{type(e).__name__}: {e}")
        self.cursor = cursor
        self._save_cursor()
        return True

    def _bad(self, line: str, why: str) -> None:
        """A line from the host that could not be taken: skipped, counted and said - a
        host that sends garbage is flagged, never followed silently or dropped."""
        self.bad_lines += 1
        self.last_bad = why
        log.warning(
            "%s: skipped a bad line from the host (%s; %d so far): %.200r",
            self.host.name,
            why,
            self.bad_lines,
            line,
        )

    async def run(self) -> None:
        """Follow the host until :meth:`stop`; never raises for host trouble."""
        self._runner = asyncio.current_task()
        try:
            while not self._stopping:
                started = asyncio.get_running_loop().time()
                delivered = 0
                reason = "the event stream ended"
                confirm: asyncio.TimerHandle | None = None
                try:
                    await asyncio.to_thread(self.host.ensure_master)
                    # "connected" only once the remote follower proves alive (a line, or
                    # no failure for a moment): a host whose mullui is missing must stay
                    # flagged, not flap connected/unreachable on every retry.
                    confirm = asyncio.get_running_loop().call_later(
                        self.confirm_after_s, self._set_state, CONNECTED
                    )
                    self._caught_up = False
                    stream = self.host.stream(self.argv(self.cursor), cwd=self.cwd)
                    async with contextlib.aclosing(stream):
                        while True:
                            try:
                                line = await asyncio.wait_for(anext(stream), self.idle_timeout_s)
                            except StopAsyncIteration:
                                break
                            except TimeoutError:
                                # A half-open TCP connection can look alive to ssh for
                                # ServerAliveInterval x CountMax; heartbeats catch it sooner.
                                reason = f"no event or heartbeat for {self.idle_timeout_s:g}s"
                                break
                            self._set_state(CONNECTED)
                            delivered += await self._deliver(line)
                except (MulluiError, OSError) as e:
                    reason = str(e)
                except Exception as e:  # never a silently dead link: flag it, then retry
                    log.warning("%s: the link failed", self.host.name, exc_info=True)
                    reason = f"the link failed: {type(e).__name__}: {e}"
                finally:
                    if confirm is not None:
                        confirm.cancel()
                if self._stopping:
                    break
                # A link that worked for a while starts its backoff over; one that fails
                # right after connecting (e.g. mullui missing there) keeps growing it.
                elapsed = asyncio.get_running_loop().time() - started
                if delivered or elapsed >= self.healthy_after_s:
                    self.backoff.reset()
                self._set_state(UNREACHABLE, reason)
                await asyncio.sleep(self.backoff.next())
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._runner = None
            if self._stopping:
                self._set_state(STOPPED)

    def stop(self) -> None:
        """End :meth:`run` (it returns; the remote stream is closed)."""
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
