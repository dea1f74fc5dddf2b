"""``mullui hook EVENT``: ingest one event from an agent's hook or from tmux.

This runs once per hook call, inside the agent's process tree, so it stays small: no
Textual, no libtmux, no config parsing.  It checks the per-agent token, lets the agent's
profile translate the raw event, and appends the normalized events to the agent's spool.
The supervisor (or the next ``mullui ls``) applies them.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import select
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mullui.errors import MulluiError
from mullui.events import append_event, new_event
from mullui.model import iso, utcnow
from mullui.paths import Paths, get_paths
from mullui.store import read_json

#: Hook payloads beyond this are cut (a hostile or runaway agent must not fill the disk).
MAX_STDIN = 4 * 1024 * 1024

#: Events the runtime itself sends (tmux hooks); every profile understands them.
RUNTIME_EVENTS = ("pane-died", "silence", "activity")


def _read_stdin(timeout: float = 2.0) -> str:
    if sys.stdin is None or sys.stdin.closed:
        return ""
    try:
        if sys.stdin.isatty():
            return ""
        fd = sys.stdin.fileno()
    except (OSError, ValueError):
        return ""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_STDIN:
        # A parent that keeps our stdin open without writing must not hang the agent.
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        timeout = 0.5
    return b"".join(chunks)[:MAX_STDIN].decode("utf-8", "replace")


def _parse(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {"raw": text[:4000]}
    return v if isinstance(v, dict) else {"value": v}


def refuse(paths: Paths, agent_id: str, event: str, why: str) -> MulluiError:
    line = json.dumps({"at": iso(utcnow()), "agent": agent_id, "event": event, "why": why})
    try:
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 0600: which agent tried what is nobody else's business (an old 0644 file too).
        fd = os.open(
            paths.state_dir / "hook-refused.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
        )
        with os.fdopen(fd, "a") as f:
            os.fchmod(fd, 0o600)
            f.write(line + "\n")
    except OSError:
        pass
    shown = event if event.isprintable() else repr(event)  # one line, whatever was passed
    return MulluiError(f"hook {shown} refused for agent {agent_id}: {why}")


def ingest(
    event: str,
    args: list[str],
    *,
    agent: str | None = None,
    token: str | None = None,
    status: str | None = None,
    seconds: str | None = None,
    state_dir: str | None = None,
    stdin: str | None = None,
    answer: Callable[[str], object] | None = None,
) -> list[dict[str, Any]]:
    """Validate and append one hook event; returns the normalized events written.

    ``answer`` receives what the agent CLI should read on the hook's stdout, if anything:
    the collision guard's answer to an edit hook (:func:`mullui.guard.hook_answer`)."""
    paths = get_paths({**os.environ, "MULLUI_STATE_DIR": state_dir}) if state_dir else get_paths()
    if state_dir:
        paths = Paths(paths.config_dir, Path(state_dir), paths.data_dir)
    agent_id = agent or os.environ.get("MULLUI_AGENT_ID") or ""
    token = token if token is not None else os.environ.get("MULLUI_AGENT_TOKEN", "")
    if not agent_id or not all(c.isalnum() or c in "-_" for c in agent_id) or len(agent_id) > 64:
        raise MulluiError(
            "mullui hook needs the agent id (MULLUI_AGENT_ID): "
            "hooks are run by agents mullui started"
        )
    try:
        expected = paths.secret_file(agent_id).read_text().strip()
    except OSError:
        raise refuse(paths, agent_id, event, "unknown agent") from None
    if not token or not hmac.compare_digest(expected.encode(), token.encode()):
        raise refuse(paths, agent_id, event, "token does not match")

    text = ""
    if event == "pane-died":
        code = int(status) if status and status.lstrip("-").isdigit() else None
        evs = [
            {
                "kind": "exit",
                "exit_code": code,
                "cause": f"exit:{code}" if code is not None else "exit:?",
            }
        ]
    elif event == "silence":
        evs = [
            {"kind": "silence", "seconds": int(seconds) if seconds and seconds.isdigit() else None}
        ]
    elif event == "activity":
        evs = [{"kind": "activity", "cause": "output"}]
    else:
        text = stdin if stdin is not None else _read_stdin()
        payload = _parse(text)
        if args:  # Codex passes its JSON payload as the last argv element
            last = _parse(args[-1])
            if last and "raw" not in last:
                payload = {**payload, **last}
        record = _profile_of(paths, agent_id)
        from mullui.agents import get_profile

        try:
            profile = get_profile(record, None)
        except MulluiError:
            profile = None
        try:
            evs = profile.translate(event, payload, args) if profile is not None else []
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            # A payload of the wrong shape ({"tokens_in": "abc"}): say so in one line
            # rather than a traceback in the agent's pane; the event is not recorded.
            raise MulluiError(
                f"hook {event} for agent {agent_id}: payload not understood by profile "
                f"{profile.name if profile else '?'} ({type(e).__name__}: {e})"[:500].replace(
                    "\n", " "
                )
            ) from None
        if not evs:
            evs = [{"kind": "activity", "cause": f"hook:{event}"}]
    out = []
    for ev in evs:
        full = new_event(str(ev.get("kind")), source=f"hook:{event}")
        full.update({k: v for k, v in ev.items() if k not in ("eid", "at", "agent")})
        out.append(append_event(paths, agent_id, full))
    if event == "pane-died":
        _unlock_worktree(paths, agent_id)
    if answer is not None and event not in RUNTIME_EVENTS:
        from mullui import guard

        said = guard.hook_answer(paths.state_dir, agent_id, event, text.encode())
        if said:
            answer(said)
    return out


def _unlock_worktree(paths: Paths, agent_id: str) -> None:
    """The agent's process is gone: its worktree no longer needs ``git worktree lock``
    (which made ``git worktree prune`` and ``git branch -D`` refuse after a user removed
    the directory by hand).  Here, at the exit itself, so no supervisor is needed."""
    from mullui.store import Store

    a = Store(paths).get(agent_id)
    if a is None or not a.repo or not a.worktree or a.host:
        return
    from mullui.runtime import worktrees

    with contextlib.suppress(MulluiError):
        worktrees.unlock(Path(a.repo), Path(a.worktree))


def _profile_of(paths: Paths, agent_id: str) -> str:
    try:
        d = read_json(paths.record_file(agent_id))
        if isinstance(d, dict) and isinstance(d.get("profile"), str):
            return str(d["profile"])
    except (ValueError, OSError):
        pass
    from mullui.store import Store

    a = Store(paths).get(agent_id)
    return a.profile if a else "shell"
