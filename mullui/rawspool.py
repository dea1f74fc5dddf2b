"""The fast hook path's catch-up: raw hook lines in, normalized events out.

Agents' hooks run ``fasthook/spool.sh`` (POSIX sh, no Python): it stores the raw payload
in ``hookdata/`` and appends one short line (event, payload file, token) to the agent's
raw spool ``spool/<id>.hooks``.  :func:`translate_raw` turns those lines into normalized
events: it checks each line's token (a forged or malformed line is refused and logged in
``hook-refused.log``, never folded), lets the agent's profile translate the payload and
dates the events by the payload file's mtime (when the hook ran, not when it was read).
The store calls it under the agent's lock when it brings a record up to date - in the
supervisor, or in any reader (``mullui ls``) when none runs - and appends the events to
the agent's spool, each carrying ``raw_end`` (how far into the raw spool it comes from):
that is how a replay after a crash knows which raw lines are already in, exactly once.

Kept apart from :mod:`mullui.hook` (``mullui hook EVENT``, which folds through the store)
so that the store can call it without an import cycle.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from mullui.errors import MulluiError
from mullui.events import new_event
from mullui.guard import GUARD_EVENT, raw_events
from mullui.model import iso, utcnow
from mullui.paths import Paths

#: Hook payloads beyond this are cut (a hostile or runaway agent must not fill the disk).
MAX_STDIN = 4 * 1024 * 1024

#: Events the runtime itself sends (tmux hooks); every profile understands them.
RUNTIME_EVENTS = ("pane-died", "silence", "activity")

#: The raw spool's line format version (``fasthook/spool.sh`` writes "1").
RAW_VERSION = b"1"
#: A raw line longer than this is not one spool.sh wrote.
MAX_RAW_LINE = 4096
#: Raw bytes read per catch-up pass (a backlog of hours is folded in several passes).
RAW_CHUNK = 1024 * 1024

_EVENT_NAME = re.compile(r"[A-Za-z0-9_:.-]{1,64}")


def _parse(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {"raw": text[:4000]}
    except RecursionError:
        # Deeply nested JSON: refused as one line, never a traceback.
        raise MulluiError("payload is nested too deeply to be read") from None
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


def after_exit(a: Any) -> None:
    """Unlock the worktree of an agent whose exit was just folded in (from the fast
    path's raw spool, by whichever process read it first)."""
    if a is None or not a.repo or not a.worktree or a.host:
        return
    from mullui.runtime import worktrees

    with contextlib.suppress(MulluiError):
        worktrees.unlock(Path(a.repo), Path(a.worktree))


def valid_id(agent_id: str) -> bool:
    ok = all(c.isalnum() or c in "-_" for c in agent_id)
    return bool(agent_id) and len(agent_id) <= 64 and ok


def _secret(paths: Paths, agent_id: str) -> str | None:
    try:
        return paths.secret_file(agent_id).read_text().strip()
    except OSError:
        return None


def load_profile(paths: Paths, name: str, agent_id: str | None = None) -> Any:
    """The agent's profile for translating its events (None when it is unknown here),
    with the prices the spawning mullui wrote for it (``profiles/<id>/prices.json``)."""
    from mullui.agents import get_profile

    try:
        profile = get_profile(name, None)
    except MulluiError:
        return None
    if agent_id is not None and hasattr(profile, "prices"):
        try:
            table = json.loads((paths.profile_dir(agent_id) / "prices.json").read_text())
            from mullui.usage import prices_from_config

            profile.prices = dict(prices_from_config(table))
        except (OSError, ValueError, TypeError, AttributeError, MulluiError):
            pass
    return profile


def normalize(
    agent_id: str,
    event: str,
    args: list[str],
    status: str | None,
    seconds: str | None,
    text: str,
    profile: Any,
) -> list[dict[str, Any]]:
    """The normalized events for one raw hook call; raises :class:`MulluiError` (one
    line) for a payload that cannot be read or that the profile does not understand."""
    if event == "pane-died":
        code = int(status) if status and status.lstrip("-").isdigit() else None
        return [
            {
                "kind": "exit",
                "exit_code": code,
                "cause": f"exit:{code}" if code is not None else "exit:?",
            }
        ]
    if event == "silence":
        return [
            {"kind": "silence", "seconds": int(seconds) if seconds and seconds.isdigit() else None}
        ]
    if event == "activity":
        return [{"kind": "activity", "cause": "output"}]
    if event == GUARD_EVENT:  # what the collision guard did, written by its hook answer
        try:
            done = raw_events(_parse(text))
        except MulluiError as e:
            raise MulluiError(f"hook {event} for agent {agent_id}: {e.message}") from None
        if not done:
            raise MulluiError(f"hook {event} for agent {agent_id}: no guard event in it")
        return done
    try:
        payload = _parse(text)
        if args:  # Codex passes its JSON payload as the last argv element
            last = _parse(args[-1])
            if last and "raw" not in last:
                payload = {**payload, **last}
    except MulluiError as e:
        raise MulluiError(f"hook {_shown(event)} for agent {agent_id}: {e.message}") from None
    try:
        evs: list[dict[str, Any]] = (
            profile.translate(event, payload, args) if profile is not None else []
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        # A payload of the wrong shape ({"tokens_in": "abc"}): say so in one line
        # rather than a traceback in the agent's pane; the event is not recorded.
        raise MulluiError(
            f"hook {_shown(event)} for agent {agent_id}: payload not understood by profile "
            f"{profile.name if profile else '?'} ({type(e).__name__}: {e})"[:500].replace("\n", " ")
        ) from None
    return evs or [{"kind": "activity", "cause": f"hook:{event}"}]


def _shown(event: str) -> str:
    return event if event.isprintable() else repr(event)


def raw_spool(paths: Paths, agent_id: str) -> Path:
    """The agent's raw hook lines, as ``fasthook/spool.sh`` appends them."""
    return paths.spool_dir / f"{agent_id}.hooks"


def hookdata_dir(paths: Paths) -> Path:
    """Raw hook payloads, one file each until the event is folded in."""
    return paths.hookdata_dir


def read_payload(path: Path, limit: int = MAX_STDIN) -> tuple[bytes, float] | None:
    """A raw payload file's first ``limit`` bytes and mtime; None unless it is a regular
    file of ours (never through a symlink: the name comes from a line anyone could write)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 20, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), st.st_mtime
    except OSError:
        return None
    finally:
        os.close(fd)


class RawBatch:
    """What one pass over the raw spool produced: normalized events (each with
    ``raw_end``), how far it read, and the payload files it is done with."""

    def __init__(self, end: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.end = end
        self.done_files: list[Path] = []


def translate_raw(
    paths: Paths, agent_id: str, start: int, profile_name: str, *, limit: int = RAW_CHUNK
) -> RawBatch:
    """Translate the raw hook lines of ``agent_id`` from byte ``start`` (complete lines
    only, at most about ``limit`` bytes).  A line with a wrong token, a malformed line,
    a payload that cannot be read: refused and logged, nothing folded."""
    path = raw_spool(paths, agent_id)
    batch = RawBatch(start)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return batch
    try:
        data = os.pread(fd, limit, start)
    finally:
        os.close(fd)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) >= limit:  # one huge line with no end: not ours, skip it whole
            batch.end = start + len(data)
            refuse(paths, agent_id, "?", "raw hook line too long")
        return batch
    expected = _secret(paths, agent_id)
    profile: Any = None
    loaded = False
    data_dir = hookdata_dir(paths)
    pos = start
    for raw in data[: end + 1].splitlines(keepends=True):
        pos += len(raw)
        fields = raw.rstrip(b"\n").split(b"\t")
        if len(raw) > MAX_RAW_LINE or len(fields) != 5 or fields[0] != RAW_VERSION:
            refuse(paths, agent_id, "?", "malformed raw hook line")
            continue
        ev_b, kind, name_b, token_b = fields[1:]
        event = ev_b.decode("utf-8", "replace")
        name = name_b.decode("utf-8", "replace")
        if not _EVENT_NAME.fullmatch(event) or kind not in (b"s", b"a"):
            refuse(paths, agent_id, event, "malformed raw hook line")
            continue
        if not re.fullmatch(re.escape(agent_id) + r"\.[0-9]+\.[0-9]+", name):
            refuse(paths, agent_id, event, "malformed payload name")
            continue
        payload_file = data_dir / name
        batch.done_files.append(payload_file)
        if expected is None:
            refuse(paths, agent_id, event, "unknown agent")
            continue
        if not token_b or not hmac.compare_digest(expected.encode(), token_b):
            refuse(paths, agent_id, event, "token does not match")
            continue
        got = read_payload(payload_file)
        if got is None:
            refuse(paths, agent_id, event, "payload file missing or not a regular file")
            continue
        body, mtime = got
        args: list[str] = []
        status = seconds = None
        text = ""
        if kind == b"a":
            args = [a.decode("utf-8", "replace") for a in body.split(b"\0")[:-1]]
            if event in RUNTIME_EVENTS:
                opts = dict(zip(args[::2], args[1::2], strict=False))
                status, seconds = opts.get("--status"), opts.get("--seconds")
                args = []
        else:
            text = body.decode("utf-8", "replace")
        if event not in RUNTIME_EVENTS and event != GUARD_EVENT and not loaded:
            profile, loaded = load_profile(paths, profile_name, agent_id), True
        if profile is not None and hasattr(profile, "transcript_wait_s"):
            # Only a Stop that just happened may still be ahead of its transcript.
            fresh = time.time() - mtime < FRESH_S
            profile.transcript_wait_s = FRESH_STOP_WAIT_S if fresh else 0.0
        try:
            evs = normalize(agent_id, event, args, status, seconds, text, profile)
        except MulluiError as e:
            refuse(paths, agent_id, event, e.message)
            continue
        at = iso(_from_ts(mtime))
        for ev in evs:
            full = new_event(str(ev.get("kind")), source=f"hook:{event}")
            full.update({k: v for k, v in ev.items() if k not in ("eid", "at", "agent")})
            full["at"] = at
            full["agent"] = agent_id
            full["raw_end"] = pos
            batch.events.append(full)
    batch.end = start + end + 1
    return batch


def _from_ts(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


#: How long a fresh ``Stop`` read from the raw spool may wait for the agent's transcript
#: to hold the turn's last answer (the hook itself no longer waits: see claude.py), and
#: how old an event may be to count as fresh.
FRESH_STOP_WAIT_S = 0.25
FRESH_S = 3.0


def remove_files(files: list[Path]) -> None:
    for f in files:
        try:
            f.unlink()
        except OSError:
            pass
