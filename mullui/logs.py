"""``mullui logs ID [-f] [--raw]`` for an agent on this machine: its pane output as tmux
piped it.

The log is the agent's own terminal output: it may set the window title, write the
clipboard (OSC 52) or query the terminal.  So on a terminal only colours and cursor
movement pass, into a pipe plain text; ``--raw`` gives every byte
(:class:`mullui.textsafe.LogFilter`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mullui.context import Context
from mullui.errors import MulluiError
from mullui.model import Agent, State
from mullui.textsafe import LogFilter

CHUNK = 1 << 16


def _copy(path: Path, offset: int, shown: LogFilter | None = None) -> int:
    """Write the file from ``offset`` to stdout (through ``shown``); returns the new
    offset."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            while True:
                data = f.read(CHUNK)
                if not data:
                    break
                sys.stdout.buffer.write(shown.feed(data) if shown is not None else data)
                offset += len(data)
    except FileNotFoundError:
        return offset
    sys.stdout.buffer.flush()
    return offset


def _ended(ctx: Context, agent_id: str) -> bool:
    a = ctx.store.get(agent_id)
    if a is None:
        return True
    return (
        a.removed or a.state is State.STOPPED or a.exit_code is not None or a.state is State.FAILED
    )


def show(
    ctx: Context, a: Agent, *, follow: bool = False, raw: bool = False, path: Path | None = None
) -> int:
    """Print the log (``path``: another than the live agent's, the history's); with
    ``follow``, keep printing as it grows until the agent's process has ended (or Ctrl-C),
    like ``tail -f`` that knows when to stop.  Without ``raw``, escape sequences are
    filtered (:class:`LogFilter`)."""
    path = path or ctx.paths.log_file(a.id)
    if not path.exists() and not follow:
        if a.state is State.QUEUED:
            raise MulluiError(f"agent {a.name} is queued ({a.cause}): no output yet")
        return 0
    shown = None if raw else LogFilter(terminal=sys.stdout.isatty())
    offset = _copy(path, 0, shown)
    if not follow or _ended(ctx, a.id):
        _end(shown)
        return 0
    from watchfiles import watch  # ~15 ms: only `logs -f` pays it

    spool = ctx.paths.spool_file(a.id)
    watched = [str(path.parent), str(spool.parent)]
    # inotify on the two directories: woken by new output or a new event, never polling.
    for changes in watch(
        *watched, debounce=50, step=20, rust_timeout=5000, yield_on_timeout=True, recursive=False
    ):
        names = {os.path.basename(p) for _c, p in changes}
        if not changes or path.name in names:
            offset = _copy(path, offset, shown)
        if (not changes or spool.name in names) and _ended(ctx, a.id):
            _copy(path, offset, shown)
            _end(shown)
            return 0
    return 0


def _end(shown: LogFilter | None) -> None:
    if shown is not None:
        sys.stdout.buffer.write(shown.close())
        sys.stdout.buffer.flush()
