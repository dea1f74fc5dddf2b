"""Running git: argv lists, an explicit ``cwd``, timeouts, a clean environment, git's
complaint in one line.  What every runtime module (and review) calls git through."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mullui.errors import MulluiError

# Quick queries answer in milliseconds; a checkout of a big repository does not.
QUICK = 60.0
CHECKOUT = 1800.0

# Variables that point git at another repository.  Inherited from a git hook (an agent's
# hook calling mullui), they would make every command here act on the wrong repository.
_REPO_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX",
)  # fmt: skip


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what points git elsewhere, in the C locale,
    never prompting; plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    # Messages are matched (disk full, "already locked"); prompts would hang a timeout.
    env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Sequence[str],
    cwd: Path,
    *,
    timeout: float = QUICK,
    check: bool = True,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``git ARGS`` in ``cwd``; MulluiError with git's reason when it fails (``check``)."""
    try:
        r = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(env),
        )
    except FileNotFoundError as e:
        if not cwd.is_dir():
            raise MulluiError(f"directory not found: {cwd}") from e
        raise MulluiError("git not found: install git >= 2.25") from e
    except subprocess.TimeoutExpired as e:
        raise MulluiError(f"git {args[0]} took longer than {timeout:.0f}s in {cwd}") from e
    if check and r.returncode != 0:
        raise MulluiError(f"git {args[0]} failed in {cwd}: {git_reason(r.stderr)}")
    return r


def git_reason(stderr: str) -> str:
    """git's complaint in one line: its fatal/error lines, else its last line."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith(("fatal:", "error:"))] or lines[-1:]
    more = f" (+{len(picked) - 3} more)" if len(picked) > 3 else ""
    return " ".join(picked[:3]) + more or "no message"
