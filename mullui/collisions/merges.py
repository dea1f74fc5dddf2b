"""Predicted merges: ``git merge-tree --write-tree`` between two commits, cached by the pair.

Many merges go through one process (``merge-tree --stdin``) where git takes it; nothing is
written but objects in the cache's scratch directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mullui.collisions import git
from mullui.collisions.cache import CollisionCache, MergeKey
from mullui.collisions.model import MergeResult
from mullui.errors import MulluiError


def merge_tree(repo: Path, ours: str, theirs: str, cache: CollisionCache) -> MergeResult:
    """Predict ``git merge`` of ``theirs`` into ``ours``."""
    return merge_trees(repo, [(ours, theirs)], cache)[0]


def merge_trees(
    repo: Path, pairs: Sequence[tuple[str, str]], cache: CollisionCache
) -> list[MergeResult]:
    """Predict ``git merge`` of each (ours, theirs) commit pair; cached by the pair."""
    unique = list(dict.fromkeys(pairs))
    hits, todo_keys = cache.merges([(str(repo), *pair) for pair in unique])
    results: dict[tuple[str, str], MergeResult] = {(k[1], k[2]): v for k, v in hits.items()}
    todo = [(k[1], k[2]) for k in todo_keys]
    cache.count_writes(len(todo))
    if len(todo) > 1 and _STDIN_MERGES.get("ok", True):
        # One process per core, each taking a slice of the pairs on stdin.
        n = max(1, min(os.cpu_count() or 1, git.MAX_PARALLEL_GIT, len(todo) // 16))
        chunks = [todo[i::n] for i in range(n)]
        for chunk, found in zip(
            chunks, git.parallel(lambda c: _merge_stdin(repo, c, cache), chunks), strict=True
        ):
            results.update(zip(chunk, found, strict=False))
    for pair in todo:
        if pair not in results:
            results[pair] = _merge_one(repo, *pair, cache)
    new: dict[MergeKey, MergeResult] = {(str(repo), *pair): results[pair] for pair in todo}
    cache.put_merges(new)
    return [results[p] for p in pairs]


# Whether this git takes `merge-tree --stdin` (seen working in Debian's 2.39.5 although
# `-h` does not list it; documented from 2.40).  Unset until the first try.
_STDIN_MERGES: dict[str, bool] = {}


def _merge_stdin(
    repo: Path, pairs: Sequence[tuple[str, str]], cache: CollisionCache
) -> list[MergeResult]:
    """Many merges in one git process: far cheaper than a process per pair.

    Returns results for a prefix of ``pairs``: on any failure the caller redoes the rest
    one at a time, which also yields the precise error.
    """
    stdin = "".join(f"{a} {b}\n" for a, b in pairs).encode()
    try:
        proc = cache.git(
            repo,
            ["merge-tree", "--stdin", "--write-tree", "--name-only", "--no-messages", "-z"],
            stdin=stdin,
            ok=(0, 1, 128, 129),
        )
    except MulluiError:
        return []
    if proc.returncode == 129:  # usage error: an older git without --stdin
        _STDIN_MERGES["ok"] = False
        return []
    # Per merge: status (1 clean, 0 conflicted) NUL tree NUL {path NUL} NUL
    parts = proc.stdout.split(b"\0")
    found: list[MergeResult] = []
    i = 0
    while len(found) < len(pairs) and i + 2 < len(parts) and parts[i] in (b"0", b"1"):
        status, tree = parts[i], parts[i + 1].decode()
        i += 2
        names: list[str] = []
        while i < len(parts) and parts[i]:
            names.append(parts[i].decode(errors="surrogateescape"))
            i += 1
        if i >= len(parts):
            break  # truncated output: the terminator is missing
        i += 1
        found.append(MergeResult(status == b"0", tree, tuple(sorted(set(names)))))
    return found


def _merge_one(repo: Path, ours: str, theirs: str, cache: CollisionCache) -> MergeResult:
    # --write-tree needs git 2.38; exit 1 means conflicts, the tree then holds markers.
    proc = cache.git(
        repo,
        ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs],
        ok=(0, 1),
    )
    parts = proc.stdout.split(b"\0")
    tree = parts[0].decode().strip()
    names: list[str] = []
    for p in parts[1:]:
        if not p:
            break
        names.append(p.decode(errors="surrogateescape"))
    return MergeResult(proc.returncode == 1, tree, tuple(sorted(set(names))))
