"""Submodules in an agent's worktree: initialised like the main checkout, recursively,
from the main checkout's module objects (``--reference``) so only missing objects travel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mullui.runtime.git import CHECKOUT, git_reason, run_git


def init(top: Path, modules: Path, say: Callable[[str], None], prefix: str) -> list[str]:
    """Initialise, in the new worktree ``top``, the submodules the main checkout has
    initialised (those with a git dir under ``modules``), recursively, each cloned with
    the main checkout's copy as ``--reference`` so that only missing objects travel.

    Returns one line per submodule that failed (the worktree is still usable)."""
    if not (top / ".gitmodules").is_file():
        return []
    r = run_git(
        ["config", "-f", ".gitmodules", "-z", "--get-regexp", r"^submodule\..*\.path$"],
        top,
        check=False,
    )
    notes: list[str] = []
    for entry in filter(None, r.stdout.split("\0")):
        key, _, sub = entry.partition("\n")
        name = key[len("submodule.") : -len(".path")]
        reference = modules / name
        if not sub or not (reference / "HEAD").is_file():
            continue  # not initialised in the main checkout: left alone there too
        say(f"initialising submodule {prefix}{sub}")
        u = run_git(
            ["-c", "submodule.alternateErrorStrategy=info", "submodule", "update", "--init",
             "--reference", str(reference), "--", sub],
            top, check=False, timeout=CHECKOUT,
        )  # fmt: skip
        if u.returncode != 0:
            notes.append(
                f"submodule {prefix}{sub} is left empty in the agent's worktree: "
                f"{git_reason(u.stderr)}"
            )
            continue
        notes += init(top / sub, reference / "modules", say, f"{prefix}{sub}/")
    return notes
