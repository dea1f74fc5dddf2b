"""Change sets: what each agent changed since its fork, and a snapshot commit of it.

Per agent one ``git status`` decides whether the cached change set still holds; a dirty
worktree is snapshotted through a temporary index (the worktree, its index and all refs are
left untouched), and the file lists of a repository's agents come from one batched
``git diff-tree --stdin``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from mullui.collisions import git
from mullui.collisions.cache import CollisionCache, session
from mullui.collisions.model import ChangeSet, Probe, Work
from mullui.errors import MulluiError


def resolve(repo: Path, names: Sequence[str], cache: CollisionCache) -> dict[str, str]:
    """Commit ids for rev names in one ``cat-file --batch-check`` (missing names are left out).

    Names go through stdin, so a name starting with '-' can never become an option.
    """
    unique = list(dict.fromkeys(names))
    if not unique:
        return {}
    if any("\n" in n for n in unique):
        raise MulluiError(f"collision check: a ref name holds a newline: {unique!r}")
    stdin = "".join(f"{n}^{{commit}}\n" for n in unique).encode()
    out = cache.git(repo, ["cat-file", "--batch-check"], stdin=stdin).stdout
    found: dict[str, str] = {}
    for name, line in zip(unique, out.decode(errors="replace").splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 3 and parts[1] == "commit":
            found[name] = parts[0]
    return found


def probe(work: Work, base_commit: str, branch_commit: str | None, cache: CollisionCache) -> Probe:
    """HEAD, the dirty paths and the cache key of an agent's current state."""
    wt = work.worktree
    if wt is None or not wt.is_dir():
        return Probe(branch_commit, (), ("branch", branch_commit or "-", base_commit))
    out = cache.git(
        wt,
        # --branch only for "# branch.oid" (HEAD in the same process); no upstream counting.
        [
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--no-ahead-behind",
            "--untracked-files=all",
            "--no-renames",
        ],
    ).stdout
    head: str | None = None
    dirty: list[str] = []
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode()
            head = None if oid == "(initial)" else oid
        elif entry[:2] in (b"1 ", b"u ", b"? "):
            fields = {b"1 ": 9, b"u ": 11, b"? ": 2}[entry[:2]]
            dirty.append(entry.split(b" ", fields - 1)[-1].decode(errors="surrogateescape"))
        elif entry.startswith(b"2 "):
            dirty.append(entry.split(b" ", 9)[-1].decode(errors="surrogateescape"))
            if i < len(entries):  # a rename's original path follows as its own entry
                dirty.append(entries[i].decode(errors="surrogateescape"))
            i += 1
    # A file that is already modified stays " M" while the agent keeps editing it, so the
    # status text alone would serve a stale snapshot: mix in each dirty file's stat.
    digest = hashlib.sha1(out)
    for rel in dirty:
        try:
            st = os.lstat(wt / rel)
            digest.update(f"{rel}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\n".encode())
        except OSError:
            digest.update(f"{rel}\0gone\n".encode())
    key = ("worktree", str(wt), head or "-", base_commit, digest.hexdigest())
    return Probe(head, tuple(dirty), key)


# With core.splitIndex=true (seen with git 2.39) writing even a temporary index drops a new
# sharedindex.* file into the worktree's git dir; a private index must be self-contained.
_PRIVATE_INDEX = ("-c", "core.splitIndex=false")


def _snapshot(worktree: Path, head: str, dirty: Sequence[str], cache: CollisionCache) -> str:
    """A commit (parent HEAD) holding the worktree's current files, tracked or untracked.

    ``git add -A`` runs against a *copy* of the worktree's index (the real one is never
    written) and only on the paths ``git status`` reported, so it neither re-hashes clean
    files nor walks the tree for untracked ones a second time.
    """
    index = _index_path(worktree, cache)
    # Beside the scratch objects (in RAM when there is room): the copy, `add` and
    # `write-tree` each write this index whole.
    with tempfile.TemporaryDirectory(prefix="mullui-snap-", dir=cache.scratch_parent) as tmp:
        tmp_index = Path(tmp) / "index"
        try:
            shutil.copyfile(index, tmp_index)
        except FileNotFoundError:
            cache.git(
                worktree,
                [*_PRIVATE_INDEX, "read-tree", head],
                env=git.git_env({"GIT_INDEX_FILE": str(tmp_index)}),
            )
        env = git.git_env({"GIT_INDEX_FILE": str(tmp_index), "GIT_LITERAL_PATHSPECS": "1"})
        paths = b"".join(p.encode(errors="surrogateescape") + b"\0" for p in dirty)
        try:
            cache.git(
                worktree,
                [
                    *_PRIVATE_INDEX,
                    "add",
                    "-A",
                    "--ignore-errors",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                env=env,
                stdin=paths,
                ok=(0, 1),  # 1: an unreadable file was left out; the rest is still added
            )
        except MulluiError:
            # An untracked file vanished between status and add ("pathspec did not match"):
            # the agent is mid-edit; take the whole worktree instead.
            cache.git(
                worktree,
                [*_PRIVATE_INDEX, "add", "-A", "--ignore-errors", "--", "."],
                env=env,
                ok=(0, 1),
            )
        tree = cache.git(worktree, [*_PRIVATE_INDEX, "write-tree"], env=env).stdout.decode().strip()
    commit = cache.git(
        worktree,
        # --no-gpg-sign: a snapshot must never wait on a pinentry prompt, whatever the
        # user's signing config says.
        ["commit-tree", "--no-gpg-sign", tree, "-p", head, "-m", "mullui: snapshot"],
        env=git.git_env(git.SYNTHETIC_COMMIT_ENV),
    )
    cache.count_writes(1)
    return commit.stdout.decode().strip()


def _index_path(worktree: Path, cache: CollisionCache) -> Path:
    dotgit = worktree / ".git"
    # Read a linked worktree's "gitdir:" pointer ourselves: one process less per snapshot.
    if dotgit.is_dir():
        return dotgit / "index"
    if dotgit.is_file():
        text = dotgit.read_text(errors="replace").strip()
        if text.startswith("gitdir: "):
            return (worktree / text[len("gitdir: ") :]).resolve() / "index"
    out = cache.git(worktree, ["rev-parse", "--path-format=absolute", "--git-path", "index"])
    return Path(out.stdout.decode().strip())


def merge_base(repo: Path, a: str, b: str, cache: CollisionCache) -> str | None:
    out = cache.git(repo, ["merge-base", a, b], ok=(0, 1)).stdout.decode().strip()
    return out or None  # exit 1: no common ancestor


def diff_names(repo: Path, a: str, b: str, cache: CollisionCache) -> set[str]:
    """Paths that differ between commits ``a`` and ``b``."""
    # Tree-to-tree: git skips identical subtrees, so this stays cheap on big repositories.
    out = cache.git(
        repo, ["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", a, b]
    ).stdout
    return set(git.z_list(out))


def _diff_many(
    repo: Path, pairs: Sequence[tuple[str, str]], cache: CollisionCache
) -> list[set[str]]:
    """Names changed from ``old`` to ``new`` for each (old, new) commit pair, one process.

    ``diff-tree --stdin`` takes "<new> <old>" as a commit with ``old`` as its parent and,
    with ``--always``, prints the new id as a header even when nothing changed.
    """
    if not pairs:
        return []
    stdin = "".join(f"{new} {old}\n" for old, new in pairs).encode()
    out = cache.git(
        repo,
        ["diff-tree", "--stdin", "--always", "-r", "--name-only", "-z", "--no-renames"],
        stdin=stdin,
    ).stdout
    tokens = out.split(b"\0")
    found: list[set[str]] = []
    i = 0
    for k, (_, new) in enumerate(pairs):
        if i >= len(tokens) or tokens[i].decode(errors="replace") != new:
            raise MulluiError(
                f"collision check: unexpected `git diff-tree --stdin` output in {repo}"
            )
        i += 1
        nxt = pairs[k + 1][1].encode() if k + 1 < len(pairs) else None
        # A path spelled exactly like the next commit id would end this list early; a
        # 40-hex file name at the top of a tree is not worth a process per diff.
        names: set[str] = set()
        while i < len(tokens) and tokens[i] and tokens[i] != nxt:
            names.add(tokens[i].decode(errors="surrogateescape"))
            i += 1
        found.append(names)
    return found


@dataclass(frozen=True)
class _Pending:
    """A change set between its per-agent git calls and the batched diffs."""

    work: Work
    probe: Probe
    base_commit: str
    snapshot: str | None
    fork: str | None


def _snapshot_and_fork(
    work: Work, found: Probe, base_commit: str, cache: CollisionCache
) -> _Pending:
    if found.head is None:
        return _Pending(work, found, base_commit, None, None)
    snap = found.head
    if found.dirty:
        assert work.worktree is not None
        snap = _snapshot(work.worktree, found.head, found.dirty, cache)
    # The snapshot's parent is HEAD, so the fork point depends on HEAD alone: an agent that
    # only keeps typing never pays for merge-base again.
    fork_key = (str(work.repo), base_commit, found.head)
    known, fork = cache.fork(fork_key)
    if not known:
        fork = merge_base(work.repo, base_commit, found.head, cache)
        cache.put_fork(fork_key, fork)
    return _Pending(work, found, base_commit, snap, fork)


def _finish(repo: Path, pending: Sequence[_Pending], cache: CollisionCache) -> list[ChangeSet]:
    asks: list[tuple[str, str]] = []
    for p in pending:
        if p.fork is not None and p.snapshot is not None and p.fork != p.snapshot:
            asks.append((p.fork, p.snapshot))
            if p.fork != p.base_commit:
                asks.append((p.base_commit, p.snapshot))
    answers = iter(_diff_many(repo, asks, cache))
    done: list[ChangeSet] = []
    for p in pending:
        files: set[str] = set()
        if p.fork is not None and p.snapshot is not None and p.fork != p.snapshot:
            files = next(answers)
            if p.fork != p.base_commit:
                # The base moved on: a file already identical in the base (merged by
                # squash or cherry-pick, or the same fix landed twice) is nothing to merge.
                files &= next(answers)
        cs = ChangeSet(
            p.work.agent_id,
            p.probe.head,
            p.snapshot,
            p.base_commit,
            p.fork,
            tuple(sorted(files)),
            bool(p.probe.dirty),
        )
        cache.put_change(p.work.agent_id, p.probe.key, cs)
        done.append(cs)
    return done


def change_sets(
    works: Sequence[Work], cache: CollisionCache, changed: Collection[str] | None = None
) -> dict[str, ChangeSet]:
    """Every agent's change set, by agent id (``changed``: see ``find_collisions``)."""
    ids = [w.agent_id for w in works]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate agent ids in {ids!r}")
    by_repo: dict[Path, list[Work]] = {}
    for w in works:
        by_repo.setdefault(w.repo, []).append(w)
    commits: dict[tuple[Path, str], str] = {}
    for repo, ws in by_repo.items():
        names = [w.base for w in ws] + [git.branch_ref(w.branch) for w in ws]
        for name, sha in resolve(repo, names, cache).items():
            commits[(repo, name)] = sha
        for w in ws:
            if (repo, w.base) not in commits:
                raise MulluiError(
                    f"collision check: base '{w.base}' of agent {w.agent_id} is not a commit "
                    f"in {repo}; was it deleted or renamed?"
                )

    def one(w: Work) -> ChangeSet | _Pending:
        base_commit = commits[(w.repo, w.base)]
        branch_commit = commits.get((w.repo, git.branch_ref(w.branch)))
        if changed is not None and w.agent_id not in changed:
            trusted = cache.peek_change(w.agent_id)
            if trusted is not None and trusted.base_commit == base_commit:
                if w.worktree is not None and w.worktree.is_dir():
                    return trusted
                if trusted.head == branch_commit:
                    return trusted
        found = probe(w, base_commit, branch_commit, cache)
        hit = cache.get_change(w.agent_id, found.key)
        if hit is not None:
            return hit
        return _snapshot_and_fork(w, found, base_commit, cache)

    result: dict[str, ChangeSet] = {}
    pending: dict[Path, list[_Pending]] = {}
    for item in git.parallel(one, list(works)):
        if isinstance(item, ChangeSet):
            result[item.agent_id] = item
        else:
            pending.setdefault(item.work.repo, []).append(item)
    for repo, items in pending.items():
        for cs in _finish(repo, items, cache):
            result[cs.agent_id] = cs
    return {i: result[i] for i in ids}


def change_set(work: Work, cache: CollisionCache | None = None) -> ChangeSet:
    """Files the agent changed since its fork from the base (committed, uncommitted,
    untracked), and the snapshot commit that stands for its current state.

    The snapshot lives in ``cache``'s scratch objects (see ``CollisionCache.object_env``);
    without a cache it is gone when this returns.
    """
    with session(cache) as c:
        return change_sets([work], c)[work.agent_id]
