"""The collision engine's memory: change sets, predicted merges, and their scratch objects."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mullui.collisions import git
from mullui.collisions.model import BaseDrift, CacheStats, ChangeSet, MergeResult

# Snapshots + predicted merges written before the scratch object directory is recycled.
SCRATCH_ROTATE_WRITES = 20_000
# The same in a RAM-backed scratch (tmpfs): ~3 KB a write in benchmarks/bench_collisions.py,
# so ~15 MB of memory at most there (more in a repository with big directories).
SCRATCH_RAM_ROTATE_WRITES = 5_000
# A RAM-backed directory is used for the scratch objects only with this much room left (a
# container's /dev/shm is often 64 MB); otherwise the system temp dir.
SCRATCH_RAM_MIN_FREE = 512 * 2**20

#: The key of a predicted merge: (repository, ours, theirs).
MergeKey = tuple[str, str, str]


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
        self._merges: dict[MergeKey, MergeResult] = {}
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

    @property
    def scratch_parent(self) -> Path | None:
        """Where scratch directories (objects, temporary indexes) go; None: the temp dir."""
        return self._scratch_parent

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
            real = git.objects_dir(cwd)
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

    def git(
        self,
        cwd: Path,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        ok: tuple[int, ...] = (0,),
    ) -> subprocess.CompletedProcess[bytes]:
        """``git ARGS`` in ``cwd`` writing to and reading from the scratch objects."""
        with self._lock:
            self.stats.git_calls += 1
        run_env = dict(env or git.git_env())
        run_env.update(self.object_env(cwd))
        return git.run(cwd, args, run_env, stdin=stdin, ok=ok)

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

    def count_writes(self, n: int) -> None:
        """``n`` more objects (snapshots, merges) written to the scratch."""
        with self._lock:
            self._writes += n

    # -- change sets -----------------------------------------------------------------------
    def get_change(self, agent_id: str, key: tuple[str, ...]) -> ChangeSet | None:
        """The agent's change set when it was computed for the same probe ``key``."""
        with self._lock:
            entry = self._changes.get(agent_id)
            if entry is not None and entry[0] == key:
                self.stats.agent_hits += 1
                return entry[1]
            self.stats.agent_misses += 1
            return None

    def peek_change(self, agent_id: str) -> ChangeSet | None:
        """The agent's last change set, whatever it was computed for."""
        with self._lock:
            entry = self._changes.get(agent_id)
            if entry is not None:
                self.stats.agent_hits += 1
            return entry[1] if entry is not None else None

    def put_change(self, agent_id: str, key: tuple[str, ...], cs: ChangeSet) -> None:
        with self._lock:
            self._changes[agent_id] = (key, cs)

    # -- fork points, drifts, merges ---------------------------------------------------------
    def fork(self, key: tuple[str, str, str]) -> tuple[bool, str | None]:
        """(known, merge base) for (repository, base commit, head)."""
        with self._lock:
            if key in self._forks:
                return True, self._forks[key]
            return False, None

    def put_fork(self, key: tuple[str, str, str], fork: str | None) -> None:
        with self._lock:
            self._forks[key] = fork

    def drift(self, key: tuple[str, str, str]) -> BaseDrift | None:
        with self._lock:
            return self._drifts.get(key)

    def put_drift(self, key: tuple[str, str, str], drift: BaseDrift) -> None:
        with self._lock:
            self._drifts[key] = drift

    def merges(
        self, keys: Sequence[MergeKey]
    ) -> tuple[dict[MergeKey, MergeResult], list[MergeKey]]:
        """The cached predictions among ``keys`` (distinct), and the keys still to run."""
        found: dict[MergeKey, MergeResult] = {}
        todo: list[MergeKey] = []
        with self._lock:
            for key in keys:
                hit = self._merges.get(key)
                if hit is not None:
                    found[key] = hit
                else:
                    todo.append(key)
            self.stats.pair_hits += len(keys) - len(todo)
            self.stats.pair_misses += len(todo)
        return found, todo

    def put_merges(self, results: dict[MergeKey, MergeResult]) -> None:
        with self._lock:
            self._merges.update(results)

    def prune(self, live: Iterable[str]) -> None:
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
def session(cache: CollisionCache | None) -> Iterator[CollisionCache]:
    """The caller's cache, or a throwaway one whose scratch objects go when the call ends."""
    own = cache is None
    used = CollisionCache() if cache is None else cache
    try:
        with used._call():
            yield used
    finally:
        if own:
            used.close()
