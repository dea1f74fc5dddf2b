"""``mullui hook EVENT``: the synchronous hook path.

It checks the token at once and appends the translated events itself.  Tools and
scripts use it; agents' hooks run the fast path instead (``fasthook/spool.sh``, caught
up by :mod:`mullui.rawspool`, whose names are re-exported here).
"""

from __future__ import annotations

import hmac
import os
import select
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mullui import autostart
from mullui.errors import MulluiError
from mullui.events import append_event, new_event
from mullui.paths import Paths, get_paths
from mullui.rawspool import MAX_STDIN as MAX_STDIN
from mullui.rawspool import RUNTIME_EVENTS as RUNTIME_EVENTS
from mullui.rawspool import _secret
from mullui.rawspool import after_exit as after_exit
from mullui.rawspool import load_profile as load_profile
from mullui.rawspool import normalize as normalize
from mullui.rawspool import read_payload as read_payload
from mullui.rawspool import refuse as refuse
from mullui.rawspool import remove_files as remove_files
from mullui.rawspool import translate_raw as translate_raw
from mullui.rawspool import valid_id as valid_id
from mullui.store import read_json


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
    if not valid_id(agent_id):
        raise MulluiError(
            "mullui hook needs the agent id (MULLUI_AGENT_ID): "
            "hooks are run by agents mullui started"
        )
    expected = _secret(paths, agent_id)
    if expected is None:
        raise refuse(paths, agent_id, event, "unknown agent")
    if not token or not hmac.compare_digest(expected.encode(), token.encode()):
        raise refuse(paths, agent_id, event, "token does not match")
    text = "" if event in RUNTIME_EVENTS else stdin if stdin is not None else _read_stdin()
    profile = None if event in RUNTIME_EVENTS else load_profile(paths, _profile_of(paths, agent_id))
    evs = normalize(agent_id, event, args, status, seconds, text, profile)
    out = []
    for ev in evs:
        full = new_event(str(ev.get("kind")), source=f"hook:{event}")
        full.update({k: v for k, v in ev.items() if k not in ("eid", "at", "agent")})
        out.append(append_event(paths, agent_id, full))
    if event == "pane-died":
        _unlock_worktree(paths, agent_id)
    if answer is not None and event not in RUNTIME_EVENTS:
        from mullui import guard

        try:
            said = guard.hook_answer(paths.state_dir, agent_id, event, text.encode())
        except (OSError, ValueError, MulluiError) as e:
            # A guard that cannot answer (disk full, a torn record) lets the tool call go.
            print(f"mullui: hook {event}: collision guard: {e}"[:300], file=sys.stderr)
            said = None
        if said:
            answer(said)
    # The event is written: make sure a supervisor will read it (one refused flock when
    # one runs; a kill -9'd or idle-exited one is started again, and replays).
    try:
        autostart.ensure_from_hook(paths.state_dir)
    except (OSError, ValueError) as e:
        print(f"mullui: could not start `mullui watch`: {e}", file=sys.stderr)
    return out


def _unlock_worktree(paths: Paths, agent_id: str) -> None:
    """The agent's process is gone: its worktree no longer needs ``git worktree lock``
    (which made ``git worktree prune`` and ``git branch -D`` refuse after a user removed
    the directory by hand).  Here, at the exit itself, so no supervisor is needed."""
    from mullui.store import Store

    after_exit(Store(paths).get(agent_id))


def _profile_of(paths: Paths, agent_id: str) -> str:
    try:
        d = read_json(paths.record_file(agent_id))
        if isinstance(d, dict) and isinstance(d.get("profile"), str):
            return str(d["profile"])
    except (ValueError, OSError, RecursionError):
        pass
    from mullui.store import Store

    a = Store(paths).get(agent_id)
    return a.profile if a else "shell"


# ---- the fast path's catch-up -------------------------------------------------------------
