"""What a host may tell us, checked: a compromised host must not reach past its agents.

A mirror record comes from the host's ``mullui events``; whoever controls the host
controls it.  Its ``branch`` decides what ``mullui merge`` fetches, its ``base`` and
``worktree`` go into git commands, its ``tmux_target`` into ``attach``.  So:

- ``repo`` is never taken from the host (the local record keeps ``[hosts.NAME] repo``);
- ``branch`` must be the agent's own: ``mullui/<slug>-<id>`` (or ``mullui-<slug>-<id>``)
  with this agent's id, and a valid ref name (``git check-ref-format``) - so never
  ``release``, never ``*``;
- ``base`` must be a valid branch name (it is shown and diffed against on the host; the
  local merge target comes from the local record, see ``dispatch.branch_here``);
- ``worktree`` an absolute path, ``tmux_target`` a pane id (``%N``);
- a fetched branch lands in ``refs/mullui/hosts/<host>/<id>`` (:func:`private_ref`),
  never in ``refs/heads``.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
from typing import Any

log = logging.getLogger(__name__)

_REF_CHARS = re.compile(r"[A-Za-z0-9._/+-]+")
_PANE = re.compile(r"%[0-9]{1,9}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@functools.lru_cache(maxsize=512)
def ref_name_ok(name: str) -> bool:
    """A plain branch name: safe characters, not an option, and what ``git
    check-ref-format`` accepts as ``refs/heads/NAME`` (no ``..``, ``@{``, ``*``, ...)."""
    if not name or len(name) > 200 or name.startswith("-") or not _REF_CHARS.fullmatch(name):
        return False
    try:
        r = subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def agent_branch_ok(branch: str, agent_id: str) -> bool:
    """``branch`` is the branch mullui gives agent ``agent_id`` (``mullui/<slug>-<id>``,
    ``mullui-<slug>-<id>``) and a valid ref name."""
    own = re.fullmatch(rf"mullui[/-][A-Za-z0-9._/-]*-{re.escape(agent_id)}", branch)
    return own is not None and ref_name_ok(branch)


def _ref_part(name: str) -> str:
    part = re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_")
    return part or "host"


def private_ref(host: str, agent_id: str) -> str:
    """Where a remote agent's branch is fetched: never a local branch."""
    return f"refs/mullui/hosts/{_ref_part(host)}/{_ref_part(agent_id)}"


def checked(local_id: str, rec: dict[str, Any], host: str) -> dict[str, Any]:
    """``rec`` (mirror fields from host ``host``) without the values a host may not set:
    each dropped one is logged; the local record keeps what it had."""
    out = dict(rec)
    out.pop("repo", None)
    bad: list[str] = []
    branch = out.get("branch")
    if branch is not None and not (isinstance(branch, str) and agent_branch_ok(branch, local_id)):
        bad.append("branch")
    base = out.get("base")
    if base is not None and not (isinstance(base, str) and ref_name_ok(base)):
        bad.append("base")
    wt = out.get("worktree")
    if wt is not None and not (
        isinstance(wt, str) and wt.startswith("/") and not _CONTROL.search(wt) and len(wt) < 4096
    ):
        bad.append("worktree")
    target = out.get("tmux_target")
    if target is not None and not (isinstance(target, str) and _PANE.fullmatch(target)):
        bad.append("tmux_target")
    session = out.get("tmux_session")
    if session is not None and not (
        isinstance(session, str) and not _CONTROL.search(session) and len(session) < 256
    ):
        bad.append("tmux_session")
    for k in bad:
        log.warning("host %s sent agent %s a bad %s %r: ignored", host, local_id, k, out[k])
        del out[k]
    return out
