"""Collision radar: which agents' unmerged work touches the same files, and would it conflict.

Agents in separate worktrees cannot corrupt each other's files, but their branches can
still collide at merge time.  This module predicts that from git alone:

* a *change set* per agent: the files changed since its fork from the base, committed,
  uncommitted and untracked, plus a commit object that stands for the worktree's current
  state (a "snapshot", built through a temporary index; the worktree, its index and all
  refs are left untouched);
* for every pair of agents whose change sets intersect, ``git merge-tree --write-tree``
  between the two snapshots says overlap (clean) or conflict;
* the same prediction against the moving base (``base_drift``) and for a sequence of
  merges into a target (``merge_order``).

Everything is pure git subprocesses; there are no timers and no threads left running.
A ``CollisionCache`` makes repeated calls cheap: with nothing changed a recompute costs
one ``git status`` per agent and one ref lookup per repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mullui.errors import MulluiError

GIT_TIMEOUT_S = 60.0
# git is I/O + fork bound; a few at once hides the latency without thrashing 2-core CI.
MAX_PARALLEL_GIT = 8
# merge_order gives up searching (and says so) after this many predicted merges.
MERGE_SEARCH_BUDGET = 400
# Snapshots + predicted merges written before the scratch object directory is recycled.
SCRATCH_ROTATE_WRITES = 20_000
# The same in a RAM-backed scratch (tmpfs): ~3 KB a write in benchmarks/bench_collisions.py,
# so ~15 MB of memory at most there (more in a repository with big directories).
SCRATCH_RAM_ROTATE_WRITES = 5_000
# A RAM-backed directory is used for the scratch objects only with this much room left (a
# container's /dev/shm is often 64 MB); otherwise the system temp dir.
SCRATCH_RAM_MIN_FREE = 512 * 2**20

# Inherited from a git hook or an agent's shell, these would point our git at another
# repository or index.
_GIT_REDIRECTS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
# Fixed identity and dates make snapshot and predicted-merge commits content-addressed:
# the same tree on the same parent is the same commit id, so pair results stay cached
# across recomputes.  It also works where the user has no user.email configured.
_SYNTHETIC_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "mullui",
    "GIT_AUTHOR_EMAIL": "mullui@localhost",
    "GIT_AUTHOR_DATE": "@0 +0000",
    "GIT_COMMITTER_NAME": "mullui",
    "GIT_COMMITTER_EMAIL": "mullui@localhost",
    "GIT_COMMITTER_DATE": "@0 +0000",
}


@dataclass(frozen=True)
class Work:
    """One agent's unmerged work."""

    agent_id: str
    repo: Path  # the main repository
    worktree: Path | None  # None once the worktree was removed: then the branch alone
    branch: str
    base: str  # the base ref name, e.g. "main"


@dataclass(frozen=True)
class ChangeSet:
    """What an agent changed since it forked from its base."""

    agent_id: str
    head: str | None  # the commit the worktree (or branch) is at; None: branch gone
    snapshot: str | None  # commit standing for the current state (== head when clean)
    base_commit: str
    fork_point: str | None  # merge-base(base, snapshot)
    files: tuple[str, ...]  # changed since the fork and still differing from the base
    dirty: bool  # uncommitted or untracked work in the worktree

    @property
    def has_work(self) -> bool:
        """False when there is nothing left to merge (e.g. the branch is in the base)."""
        return bool(self.files)


@dataclass(frozen=True)
class Collision:
    """Another agent whose change set shares files with this one."""

    agent: str
    files: tuple[str, ...]  # files both changed
    conflict: bool  # merging both would conflict (False: same files, different hunks)
    conflict_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The shape ``ls --json`` and ``collisions --json`` print."""
        return {"agent": self.agent, "files": list(self.files), "conflict": self.conflict}


@dataclass(frozen=True)
class BaseDrift:
    """The branch against its moving base."""

    agent_id: str
    base: str
    base_commit: str
    fork_point: str | None
    behind: int  # commits on the base since the fork
    files: tuple[str, ...]  # files the base changed since the fork that the agent changed too
    conflict: bool  # merging into the base now would conflict
    conflict_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Blocker:
    """Why no clean merge order exists: an agent against the target (other None) or a pair."""

    agent: str
    other: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class MergePlan:
    """Predicted merges of several agents into one target."""

    target: str
    target_commit: str
    order: tuple[str, ...] | None  # a sequence that merges cleanly; None when none found
    mergeable: tuple[str, ...]  # the longest clean sequence found (== order when found)
    noop: tuple[str, ...]  # agents with nothing to merge into the target (left out of order)
    blockers: tuple[Blocker, ...]  # filled when order is None
    exhausted: bool = False  # the search budget ran out before every order was tried


@dataclass
class CacheStats:
    """Counters for tests and the benchmark."""

    agent_hits: int = 0
    agent_misses: int = 0
    pair_hits: int = 0
    pair_misses: int = 0  # == merge-tree runs
    git_calls: int = 0


@dataclass(frozen=True)
class _MergeResult:
    conflict: bool
    tree: str
    conflict_files: tuple[str, ...]


@dataclass(frozen=True)
class _Probe:
    """The cheap look at an agent's state that decides whether its cache entry is valid."""

    head: str | None
    dirty: tuple[str, ...]  # paths with uncommitted or untracked changes
    key: tuple[str, ...]


class CollisionCache:
    """Change sets keyed by (HEAD, base, status + dirty files' stat); merges by commit pair.

    Snapshots and predicted merges are written to a private scratch object directory that
    borrows the repository's objects as an alternate: the user's repository never gains
    unreachable objects (a radar that snapshots every few seconds would otherwise leave
    thousands of loose objects for `git gc --auto` to nag about).  ``scratch_parent``
    chooses where that directory lives (default: the system temp dir); ``close()`` or
    garbage collection removes it, and it is recycled after ``SCRATCH_ROTATE_WRITES``.
    By default it lives in RAM (``$XDG_RUNTIME_DIR`` or ``/dev/shm``) when one has room:
    a cold pass writes thousands of small loose objects, which cost 0.2-2.1 s of system
    CPU on a busy ext4 /tmp and ~0.15 s on tmpfs (50 agents, 538 merges, git 2.39).

    Thread-safe; entries are computed outside the lock (a race computes twice, harmlessly).
    """

    def __init__(self, scratch_parent: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._changes: dict[str, tuple[tuple[str, ...], ChangeSet]] = {}
        self._merges: dict[tuple[str, str, str], _MergeResult] = {}
        self._drifts: dict[tuple[str, str, str], BaseDrift] = {}
        self._forks: dict[tuple[str, str, str], str | None] = {}
        self._objects_of: dict[Path, str | None] = {}
        self._scratch_parent = scratch_parent if scratch_parent else _ram_dir()
        self._in_ram = scratch_parent is None and self._scratch_parent is not None
        self._scratch: Path | None = None
        self._cleanup: weakref.finalize[[str, bool], CollisionCache] | None = None
        self._writes = 0
        self._inflight = 0
        self.stats = CacheStats()

    def forget(self, agent_id: str) -> None:
        """Drop an agent's entry (removed agents are also pruned by ``find_collisions``)."""
        with self._lock:
            self._changes.pop(agent_id, None)

    def object_env(self, cwd: Path) -> dict[str, str]:
        """Environment for a git command in ``cwd`` (repository or worktree) that needs to
        read snapshot commits, e.g. ``git diff <fork_point> <snapshot>`` for a diff view."""
        with self._lock:
            known = cwd in self._objects_of
            real = self._objects_of.get(cwd)
        if not known:
            real = _objects_dir(cwd)
            with self._lock:
                self._objects_of[cwd] = real
        if real is None:
            return {}
        with self._lock:
            if self._scratch is not None and not self._scratch.is_dir():
                # Removed under us: systemd-logind's RemoveIPC empties /dev/shm of a user's
                # files at their last logout, while mullui may live on in tmux.  Snapshots
                # of this pass are lost (it fails once); the next pass starts afresh.
                self._drop_scratch()
            if self._scratch is None:
                _sweep_orphans(Path(self._scratch_parent or tempfile.gettempdir()))
                self._scratch = Path(
                    tempfile.mkdtemp(
                        prefix=f"mullui-radar-{os.getpid()}-", dir=self._scratch_parent
                    )
                )
                self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
            scratch = self._scratch
        return {"GIT_OBJECT_DIRECTORY": str(scratch), "GIT_ALTERNATE_OBJECT_DIRECTORIES": real}

    def close(self) -> None:
        """Remove the scratch objects and forget everything; the cache stays usable."""
        with self._lock:
            self._drop_scratch()

    def _drop_scratch(self) -> None:  # call with the lock held
        if self._cleanup is not None:
            self._cleanup()
        self._scratch, self._cleanup, self._writes = None, None, 0
        self._changes.clear()
        self._merges.clear()
        self._drifts.clear()

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1

    def _count_git(self) -> None:
        with self._lock:
            self.stats.git_calls += 1

    def _count_writes(self, n: int) -> None:
        with self._lock:
            self._writes += n

    def _get_change(self, agent_id: str, key: tuple[str, ...]) -> ChangeSet | None:
        with self._lock:
            entry = self._changes.get(agent_id)
            if entry is not None and entry[0] == key:
                self.stats.agent_hits += 1
                return entry[1]
            self.stats.agent_misses += 1
            return None

    def _peek_change(self, agent_id: str) -> ChangeSet | None:
        with self._lock:
            entry = self._changes.get(agent_id)
            if entry is not None:
                self.stats.agent_hits += 1
            return entry[1] if entry is not None else None

    def _put_change(self, agent_id: str, key: tuple[str, ...], cs: ChangeSet) -> None:
        with self._lock:
            self._changes[agent_id] = (key, cs)

    def _prune(self, live: Iterable[str]) -> None:
        """Keep entries of live agents and merges among their current snapshots; recycle
        the scratch objects once they have grown (only when no other call is running)."""
        with self._lock:
            limit = SCRATCH_ROTATE_WRITES
            if self._in_ram:
                limit = min(limit, SCRATCH_RAM_ROTATE_WRITES)
            if self._writes > limit and self._inflight <= 1:
                self._drop_scratch()
                return
            keep = set(live)
            self._changes = {a: e for a, e in self._changes.items() if a in keep}
            commits = {e[1].snapshot for e in self._changes.values()}
            commits |= {e[1].base_commit for e in self._changes.values()}
            self._merges = {
                k: v for k, v in self._merges.items() if k[1] in commits and k[2] in commits
            }
            self._drifts = {k: v for k, v in self._drifts.items() if k[1] in commits}
            heads = {e[1].head for e in self._changes.values()}
            self._forks = {k: v for k, v in self._forks.items() if k[2] in heads}


def _sweep_orphans(parent: Path) -> None:
    """Remove scratch directories of our own whose process is gone.

    A supervisor killed with -9 (or by tmux's kill-server) leaves its scratch behind, and
    in /dev/shm that is memory until the next reboot.  A directory without a pid in its
    name, or whose pid is alive (maybe reused), is left alone.
    """
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name[len("mullui-radar-") :].split("-", 1)[0]
        if not entry.name.startswith("mullui-radar-") or not pid_text.isdigit():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:  # alive under another user (EPERM), or the entry is gone already
            continue


def _ram_dir() -> Path | None:
    """A writable RAM-backed directory with room for scratch objects, if there is one."""
    for place in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if not place or not os.path.isdir(place) or not os.access(place, os.W_OK | os.X_OK):
            continue
        try:
            st = os.statvfs(place)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize >= SCRATCH_RAM_MIN_FREE:
            return Path(place)
    return None


@contextmanager
def _session(cache: CollisionCache | None) -> Iterator[CollisionCache]:
    """The caller's cache, or a throwaway one whose scratch objects go when the call ends."""
    own = cache is None
    used = CollisionCache() if cache is None else cache
    try:
        with used._call():
            yield used
    finally:
        if own:
            used.close()


def _objects_dir(cwd: Path) -> str | None:
    """The object directory of the repository ``cwd`` belongs to (worktrees share it)."""
    dotgit = cwd / ".git"
    try:
        if dotgit.is_dir():
            gitdir = dotgit
        else:
            text = dotgit.read_text(errors="replace").strip()
            if not text.startswith("gitdir: "):
                raise OSError("not a gitdir pointer")
            gitdir = (cwd / text[len("gitdir: ") :]).resolve()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        if (common / "objects").is_dir():
            return str(common / "objects")
    except OSError:
        pass
    try:  # a bare repository, a submodule, or something else unusual: ask git
        proc = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=cwd,
            env=_env(),
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return str(Path(proc.stdout.decode().strip()) / "objects")


# --- git plumbing -------------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    env["LC_ALL"] = "C"
    # A status or diff must never rewrite the user's index behind their back (git
    # refreshes stat info opportunistically otherwise; seen with git 2.39).
    env["GIT_OPTIONAL_LOCKS"] = "0"
    if extra:
        env.update(extra)
    return env


def _git(
    cwd: Path,
    args: Sequence[str],
    cache: CollisionCache,
    *,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    cache._count_git()
    argv = ["git", *args]
    run_env = dict(env or _env())
    run_env.update(cache.object_env(cwd))
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=run_env,
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        if not cwd.is_dir():
            raise MulluiError(f"collision check: directory {cwd} does not exist") from exc
        raise MulluiError("collision check needs git on PATH; install git 2.38 or newer") from exc
    except subprocess.TimeoutExpired as exc:
        raise MulluiError(
            f"collision check: `git {args[0]}` in {cwd} took over {GIT_TIMEOUT_S:.0f}s; "
            "is the repository on a slow or locked filesystem?"
        ) from exc
    if proc.returncode not in ok:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit {proc.returncode}"
        raise MulluiError(f"collision check: `git {' '.join(args[:2])}` in {cwd} failed: {why}")
    return proc


def _z_list(out: bytes) -> list[str]:
    return [p.decode(errors="surrogateescape") for p in out.split(b"\0") if p]


def _resolve(repo: Path, names: Sequence[str], cache: CollisionCache) -> dict[str, str]:
    """Commit ids for rev names in one ``cat-file --batch-check`` (missing names are left out).

    Names go through stdin, so a name starting with '-' can never become an option.
    """
    unique = list(dict.fromkeys(names))
    if not unique:
        return {}
    if any("\n" in n for n in unique):
        raise MulluiError(f"collision check: a ref name holds a newline: {unique!r}")
    stdin = "".join(f"{n}^{{commit}}\n" for n in unique).encode()
    out = _git(repo, ["cat-file", "--batch-check"], cache, stdin=stdin).stdout
    found: dict[str, str] = {}
    for name, line in zip(unique, out.decode(errors="replace").splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 3 and parts[1] == "commit":
            found[name] = parts[0]
    return found


def _branch_ref(branch: str) -> str:
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def _probe(
    work: Work, base_commit: str, branch_commit: str | None, cache: CollisionCache
) -> _Probe:
    wt = work.worktree
    if wt is None or not wt.is_dir():
        return _Probe(branch_commit, (), ("branch", branch_commit or "-", base_commit))
    out = _git(
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
        cache,
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
    return _Probe(head, tuple(dirty), key)


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
    with tempfile.TemporaryDirectory(prefix="mullui-snap-", dir=cache._scratch_parent) as tmp:
        tmp_index = Path(tmp) / "index"
        try:
            shutil.copyfile(index, tmp_index)
        except FileNotFoundError:
            _git(
                worktree,
                [*_PRIVATE_INDEX, "read-tree", head],
                cache,
                env=_env({"GIT_INDEX_FILE": str(tmp_index)}),
            )
        env = _env({"GIT_INDEX_FILE": str(tmp_index), "GIT_LITERAL_PATHSPECS": "1"})
        paths = b"".join(p.encode(errors="surrogateescape") + b"\0" for p in dirty)
        try:
            _git(
                worktree,
                [
                    *_PRIVATE_INDEX,
                    "add",
                    "-A",
                    "--ignore-errors",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                cache,
                env=env,
                stdin=paths,
                ok=(0, 1),  # 1: an unreadable file was left out; the rest is still added
            )
        except MulluiError:
            # An untracked file vanished between status and add ("pathspec did not match"):
            # the agent is mid-edit; take the whole worktree instead.
            _git(
                worktree,
                [*_PRIVATE_INDEX, "add", "-A", "--ignore-errors", "--", "."],
                cache,
                env=env,
                ok=(0, 1),
            )
        tree = (
            _git(worktree, [*_PRIVATE_INDEX, "write-tree"], cache, env=env).stdout.decode().strip()
        )
    commit = _git(
        worktree,
        # --no-gpg-sign: a snapshot must never wait on a pinentry prompt, whatever the
        # user's signing config says.
        ["commit-tree", "--no-gpg-sign", tree, "-p", head, "-m", "mullui: snapshot"],
        cache,
        env=_env(_SYNTHETIC_COMMIT_ENV),
    )
    cache._count_writes(1)
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
    out = _git(worktree, ["rev-parse", "--path-format=absolute", "--git-path", "index"], cache)
    return Path(out.stdout.decode().strip())


def _merge_base(repo: Path, a: str, b: str, cache: CollisionCache) -> str | None:
    out = _git(repo, ["merge-base", a, b], cache, ok=(0, 1)).stdout.decode().strip()
    return out or None  # exit 1: no common ancestor


def _diff_names(repo: Path, a: str, b: str, cache: CollisionCache) -> set[str]:
    # Tree-to-tree: git skips identical subtrees, so this stays cheap on big repositories.
    out = _git(
        repo, ["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", a, b], cache
    ).stdout
    return set(_z_list(out))


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
    out = _git(
        repo,
        ["diff-tree", "--stdin", "--always", "-r", "--name-only", "-z", "--no-renames"],
        cache,
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


def _merge_tree(repo: Path, ours: str, theirs: str, cache: CollisionCache) -> _MergeResult:
    return _merge_trees(repo, [(ours, theirs)], cache)[0]


def _merge_trees(
    repo: Path, pairs: Sequence[tuple[str, str]], cache: CollisionCache
) -> list[_MergeResult]:
    """Predict ``git merge`` of each (ours, theirs) commit pair; cached by the pair."""
    results: dict[tuple[str, str], _MergeResult] = {}
    todo: list[tuple[str, str]] = []
    unique = list(dict.fromkeys(pairs))
    with cache._lock:
        for pair in unique:
            hit = cache._merges.get((str(repo), *pair))
            if hit is not None:
                results[pair] = hit
            else:
                todo.append(pair)
        cache.stats.pair_hits += len(unique) - len(todo)
        cache.stats.pair_misses += len(todo)
    cache._count_writes(len(todo))
    if len(todo) > 1 and _STDIN_MERGES.get("ok", True):
        # One process per core, each taking a slice of the pairs on stdin.
        n = max(1, min(os.cpu_count() or 1, MAX_PARALLEL_GIT, len(todo) // 16))
        chunks = [todo[i::n] for i in range(n)]
        for chunk, found in zip(
            chunks, _parallel(lambda c: _merge_stdin(repo, c, cache), chunks), strict=True
        ):
            results.update(zip(chunk, found, strict=False))
    for pair in todo:
        if pair not in results:
            results[pair] = _merge_one(repo, *pair, cache)
    with cache._lock:
        for pair in todo:
            cache._merges[(str(repo), *pair)] = results[pair]
    return [results[p] for p in pairs]


# Whether this git takes `merge-tree --stdin` (seen working in Debian's 2.39.5 although
# `-h` does not list it; documented from 2.40).  Unset until the first try.
_STDIN_MERGES: dict[str, bool] = {}


def _merge_stdin(
    repo: Path, pairs: Sequence[tuple[str, str]], cache: CollisionCache
) -> list[_MergeResult]:
    """Many merges in one git process: far cheaper than a process per pair.

    Returns results for a prefix of ``pairs``: on any failure the caller redoes the rest
    one at a time, which also yields the precise error.
    """
    stdin = "".join(f"{a} {b}\n" for a, b in pairs).encode()
    try:
        proc = _git(
            repo,
            ["merge-tree", "--stdin", "--write-tree", "--name-only", "--no-messages", "-z"],
            cache,
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
    found: list[_MergeResult] = []
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
        found.append(_MergeResult(status == b"0", tree, tuple(sorted(set(names)))))
    return found


def _merge_one(repo: Path, ours: str, theirs: str, cache: CollisionCache) -> _MergeResult:
    # --write-tree needs git 2.38; exit 1 means conflicts, the tree then holds markers.
    proc = _git(
        repo,
        ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs],
        cache,
        ok=(0, 1),
    )
    parts = proc.stdout.split(b"\0")
    tree = parts[0].decode().strip()
    names: list[str] = []
    for p in parts[1:]:
        if not p:
            break
        names.append(p.decode(errors="surrogateescape"))
    return _MergeResult(proc.returncode == 1, tree, tuple(sorted(set(names))))


_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_GIT, len(items))) as pool:
        return list(pool.map(fn, items))


# --- change sets --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """A change set between its per-agent git calls and the batched diffs."""

    work: Work
    probe: _Probe
    base_commit: str
    snapshot: str | None
    fork: str | None


def _snapshot_and_fork(
    work: Work, probe: _Probe, base_commit: str, cache: CollisionCache
) -> _Pending:
    if probe.head is None:
        return _Pending(work, probe, base_commit, None, None)
    snap = probe.head
    if probe.dirty:
        assert work.worktree is not None
        snap = _snapshot(work.worktree, probe.head, probe.dirty, cache)
    # The snapshot's parent is HEAD, so the fork point depends on HEAD alone: an agent that
    # only keeps typing never pays for merge-base again.
    fork_key = (str(work.repo), base_commit, probe.head)
    with cache._lock:
        known = cache._forks.get(fork_key, "")
    fork: str | None = known or None
    if known == "":
        fork = _merge_base(work.repo, base_commit, probe.head, cache)
        with cache._lock:
            cache._forks[fork_key] = fork
    return _Pending(work, probe, base_commit, snap, fork)


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
        cache._put_change(p.work.agent_id, p.probe.key, cs)
        done.append(cs)
    return done


def _change_sets(
    works: Sequence[Work], cache: CollisionCache, changed: Collection[str] | None = None
) -> dict[str, ChangeSet]:
    ids = [w.agent_id for w in works]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate agent ids in {ids!r}")
    by_repo: dict[Path, list[Work]] = {}
    for w in works:
        by_repo.setdefault(w.repo, []).append(w)
    commits: dict[tuple[Path, str], str] = {}
    for repo, ws in by_repo.items():
        names = [w.base for w in ws] + [_branch_ref(w.branch) for w in ws]
        for name, sha in _resolve(repo, names, cache).items():
            commits[(repo, name)] = sha
        for w in ws:
            if (repo, w.base) not in commits:
                raise MulluiError(
                    f"collision check: base '{w.base}' of agent {w.agent_id} is not a commit "
                    f"in {repo}; was it deleted or renamed?"
                )

    def one(w: Work) -> ChangeSet | _Pending:
        base_commit = commits[(w.repo, w.base)]
        branch_commit = commits.get((w.repo, _branch_ref(w.branch)))
        if changed is not None and w.agent_id not in changed:
            trusted = cache._peek_change(w.agent_id)
            if trusted is not None and trusted.base_commit == base_commit:
                if w.worktree is not None and w.worktree.is_dir():
                    return trusted
                if trusted.head == branch_commit:
                    return trusted
        probe = _probe(w, base_commit, branch_commit, cache)
        hit = cache._get_change(w.agent_id, probe.key)
        if hit is not None:
            return hit
        return _snapshot_and_fork(w, probe, base_commit, cache)

    result: dict[str, ChangeSet] = {}
    pending: dict[Path, list[_Pending]] = {}
    for item in _parallel(one, list(works)):
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
    with _session(cache) as c:
        return _change_sets([work], c)[work.agent_id]


# --- collisions ---------------------------------------------------------------------------


def find_collisions(
    works: Sequence[Work],
    cache: CollisionCache | None = None,
    changed: Collection[str] | None = None,
) -> dict[str, list[Collision]]:
    """Every agent's collisions with the others (symmetric; no collision maps to []).

    Pass *all* live agents: entries of agents left out are dropped from ``cache``.
    merge-tree runs only for pairs whose change sets intersect.  ``changed``: the agents
    an event says may have changed since the last call; the others are taken from the
    cache without even a ``git status`` (unless their base moved).  None checks everyone.
    """
    with _session(cache) as c:
        return _find_collisions(works, c, changed)


def _find_collisions(
    works: Sequence[Work], cache: CollisionCache, changed: Collection[str] | None
) -> dict[str, list[Collision]]:
    sets = _change_sets(works, cache, changed)
    result: dict[str, list[Collision]] = {w.agent_id: [] for w in works}
    repo_of = {w.agent_id: w.repo for w in works}
    touching: dict[tuple[Path, str], list[str]] = {}
    for w in works:
        for f in sets[w.agent_id].files:
            touching.setdefault((w.repo, f), []).append(w.agent_id)
    shared: dict[tuple[str, str], list[str]] = {}
    for (_, f), agents in touching.items():
        for i, a in enumerate(agents):
            for b in agents[i + 1 :]:
                shared.setdefault((a, b) if a < b else (b, a), []).append(f)

    pairs = sorted(shared)
    by_repo: dict[Path, list[tuple[str, str]]] = {}
    for a, b in pairs:
        by_repo.setdefault(repo_of[a], []).append((a, b))
    for repo, agent_pairs in by_repo.items():
        commit_pairs: list[tuple[str, str]] = []
        for a, b in agent_pairs:
            snap_a, snap_b = sets[a].snapshot, sets[b].snapshot
            assert snap_a is not None and snap_b is not None
            # Order by commit id so (a, b) and (b, a) share one cache entry.
            lo, hi = sorted((snap_a, snap_b))
            commit_pairs.append((lo, hi))
        merged_all = _merge_trees(repo, commit_pairs, cache)
        for (a, b), merged in zip(agent_pairs, merged_all, strict=True):
            files = tuple(sorted(shared[(a, b)]))
            result[a].append(Collision(b, files, merged.conflict, merged.conflict_files))
            result[b].append(Collision(a, files, merged.conflict, merged.conflict_files))
    for lst in result.values():
        lst.sort(key=lambda c: c.agent)
    cache._prune(result)
    return result


def base_drift(work: Work, cache: CollisionCache | None = None) -> BaseDrift:
    """How far the base moved since the agent forked, which of the agent's files it changed
    too, and whether merging into the base now would conflict."""
    with _session(cache) as c:
        return _base_drift(work, c)


def _base_drift(work: Work, cache: CollisionCache) -> BaseDrift:
    cs = _change_sets([work], cache)[work.agent_id]
    if cs.fork_point is None or cs.snapshot is None or cs.fork_point == cs.base_commit:
        return BaseDrift(work.agent_id, work.base, cs.base_commit, cs.fork_point, 0, (), False)
    key = (work.agent_id, cs.snapshot, cs.base_commit)
    with cache._lock:
        hit = cache._drifts.get(key)
    if hit is not None:
        return hit
    behind = int(
        _git(work.repo, ["rev-list", "--count", f"{cs.fork_point}..{cs.base_commit}"], cache)
        .stdout.decode()
        .strip()
        or 0
    )
    overlap = _diff_names(work.repo, cs.fork_point, cs.base_commit, cache) & set(cs.files)
    merged = _MergeResult(False, "", ())
    if overlap:
        merged = _merge_tree(work.repo, cs.base_commit, cs.snapshot, cache)
    drift = BaseDrift(
        work.agent_id,
        work.base,
        cs.base_commit,
        cs.fork_point,
        behind,
        tuple(sorted(overlap)),
        merged.conflict,
        merged.conflict_files,
    )
    with cache._lock:
        cache._drifts[key] = drift
    return drift


# --- merge order --------------------------------------------------------------------------


@dataclass
class _Search:
    repo: Path
    cache: CollisionCache
    snaps: dict[str, str]
    budget: int = MERGE_SEARCH_BUDGET
    dead: set[tuple[str, frozenset[str]]] = field(default_factory=set)
    best: tuple[str, ...] = ()
    exhausted: bool = False
    commits: dict[tuple[str, str], str] = field(default_factory=dict)

    def step(self, state: str, agent: str) -> tuple[_MergeResult, str]:
        """Predict merging ``agent`` into ``state``; return the result and the new state."""
        self.budget -= 1
        merged = _merge_tree(self.repo, state, self.snaps[agent], self.cache)
        if merged.conflict:
            return merged, state
        key = (state, self.snaps[agent])
        if key not in self.commits:
            # An unreferenced merge commit so the next prediction sees the right merge base.
            self.commits[key] = (
                _git(
                    self.repo,
                    [
                        "commit-tree",
                        "--no-gpg-sign",
                        merged.tree,
                        "-p",
                        state,
                        "-p",
                        self.snaps[agent],
                        "-m",
                        "mullui: predicted merge",
                    ],
                    self.cache,
                    env=_env(_SYNTHETIC_COMMIT_ENV),
                )
                .stdout.decode()
                .strip()
            )
        return merged, self.commits[key]

    def run(
        self, state: str, tree: str, remaining: tuple[str, ...], done: tuple[str, ...]
    ) -> tuple[str, ...] | None:
        if len(done) > len(self.best):
            self.best = done
        if not remaining:
            return done
        # Same tree, same agents left: treated as the same dead end even when the history
        # (and so a later merge base) differs; a rare miss, and it keeps the search small.
        dead_key = (tree, frozenset(remaining))
        if dead_key in self.dead:
            return None
        for agent in remaining:
            if self.budget <= 0:
                self.exhausted = True
                return None
            merged, new_state = self.step(state, agent)
            if merged.conflict:
                continue
            rest = tuple(a for a in remaining if a != agent)
            found = self.run(new_state, merged.tree, rest, (*done, agent))
            if found is not None:
                return found
        if not self.exhausted:
            self.dead.add(dead_key)
        return None


def merge_order(
    works: Sequence[Work], target: str, cache: CollisionCache | None = None
) -> MergePlan:
    """Predict merging every agent into ``target``: a clean order when one exists (the
    given order is tried first), else None and the agents or pairs that block."""
    with _session(cache) as c:
        return _merge_order(works, target, c)


def _merge_order(works: Sequence[Work], target: str, cache: CollisionCache) -> MergePlan:
    repos = {w.repo for w in works}
    if len(repos) > 1:
        raise ValueError(f"merge_order needs agents of one repository, got {sorted(repos)}")
    if not works:
        raise ValueError("merge_order needs at least one agent")
    repo = next(iter(repos))
    target_commit = _resolve(repo, [target], cache).get(target)
    if target_commit is None:
        raise MulluiError(f"merge target '{target}' is not a commit in {repo}")
    sets = _change_sets(works, cache)
    snaps = {a: cs.snapshot for a, cs in sets.items() if cs.snapshot is not None}
    search = _Search(repo, cache, snaps)
    target_tree = (
        _git(repo, ["rev-parse", f"{target_commit}^{{tree}}"], cache).stdout.decode().strip()
    )
    noop: list[str] = []
    candidates: list[str] = []
    for w in works:
        if w.agent_id not in snaps:
            noop.append(w.agent_id)
            continue
        alone = _merge_tree(repo, target_commit, snaps[w.agent_id], cache)
        (noop if not alone.conflict and alone.tree == target_tree else candidates).append(
            w.agent_id
        )
    order = search.run(target_commit, target_tree, tuple(candidates), ())
    blockers: list[Blocker] = []
    if order is None:
        clean_alone: list[str] = []
        for a in candidates:
            alone = _merge_tree(repo, target_commit, snaps[a], cache)
            if alone.conflict:
                blockers.append(Blocker(a, None, alone.conflict_files))
            else:
                clean_alone.append(a)
        for i, a in enumerate(clean_alone):
            for b in clean_alone[i + 1 :]:
                if not set(sets[a].files) & set(sets[b].files):
                    continue
                _, after_a = search.step(target_commit, a)
                _, after_b = search.step(target_commit, b)
                ab = _merge_tree(repo, after_a, snaps[b], cache)
                ba = _merge_tree(repo, after_b, snaps[a], cache)
                if ab.conflict and ba.conflict:
                    files = tuple(sorted(set(ab.conflict_files) | set(ba.conflict_files)))
                    blockers.append(Blocker(a, b, files))
    return MergePlan(
        target=target,
        target_commit=target_commit,
        order=order,
        mergeable=order if order is not None else search.best,
        noop=tuple(noop),
        blockers=tuple(blockers),
        exhausted=search.exhausted,
    )
