"""The collision radar against real git repositories and real ``git worktree add`` worktrees."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mullui.collisions import (
    Blocker,
    Collision,
    CollisionCache,
    Work,
    base_drift,
    change_set,
    changes,
    find_collisions,
    merge_order,
)
from mullui.errors import MulluiError
from tests.support.collide_repo import add_worktree, commit_all, git, lines, make_repo, write

N = 40  # lines in shared.py: far-apart hunks (2 vs 30) merge cleanly, same line conflicts


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"shared.py": lines(N), "other.py": lines(10), "docs/readme.md": "hello\n"},
    )


def agent(repo: Path, name: str, start: str = "main") -> Work:
    wt = add_worktree(repo, repo.parent / f"wt-{name}", f"agent/{name}", start)
    return Work(agent_id=name, repo=repo, worktree=wt, branch=f"agent/{name}", base="main")


def edit(work: Work, commit: bool = True, rel: str = "shared.py", **changed: str) -> None:
    assert work.worktree is not None
    write(work.worktree, rel, lines(N, **changed))
    if commit:
        commit_all(work.worktree, f"{work.agent_id} edits {rel}")


def merge_into_main(repo: Path, branch: str, *args: str) -> None:
    git(repo, "merge", "-q", "--no-edit", *args, branch)
    if "--squash" in args:
        git(repo, "commit", "-q", "-m", f"squash {branch}")


def test_same_lines_in_one_file_is_a_conflict_for_both(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a's line five")
    edit(b, L5="b's line five")

    found = find_collisions([a, b])

    assert found["a"] == [Collision("b", ("shared.py",), True, ("shared.py",))]
    assert found["b"] == [Collision("a", ("shared.py",), True, ("shared.py",))]
    assert found["a"][0].to_json() == {"agent": "b", "files": ["shared.py"], "conflict": True}


def test_different_parts_of_one_file_is_an_overlap_without_conflict(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L2="a near the top")
    edit(b, L30="b near the bottom")

    found = find_collisions([a, b])

    assert found["a"] == [Collision("b", ("shared.py",), False)]
    assert found["b"] == [Collision("a", ("shared.py",), False)]


def test_an_agent_changing_other_files_is_not_marked(repo: Path) -> None:
    a, b, c = agent(repo, "a"), agent(repo, "b"), agent(repo, "c")
    edit(a, L5="a")
    edit(b, L5="b")
    edit(c, rel="other.py", L5="c")

    found = find_collisions([a, b, c])

    assert found["c"] == []
    assert [x.agent for x in found["a"]] == ["b"]
    assert change_set(c).files == ("other.py",)


def test_uncommitted_edit_counts_as_a_change(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b, not committed yet")

    found = find_collisions([a, b])

    assert found["b"] == [Collision("a", ("shared.py",), True, ("shared.py",))]
    assert change_set(b).dirty


def test_untracked_new_file_counts_as_a_change(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    assert a.worktree is not None and b.worktree is not None
    write(a.worktree, "src/new.py", "print('a')\n")
    commit_all(a.worktree)
    write(b.worktree, "src/new.py", "print('b')\n")  # never git-added

    found = find_collisions([a, b])

    assert found["a"] == [Collision("b", ("src/new.py",), True, ("src/new.py",))]
    assert "src/new.py" in change_set(b).files


def test_uncommitted_deletion_counts_and_conflicts_with_an_edit(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    assert a.worktree is not None
    (a.worktree / "other.py").unlink()
    edit(b, rel="other.py", L3="b")

    assert find_collisions([a, b])["a"] == [Collision("b", ("other.py",), True, ("other.py",))]


def test_names_with_glob_characters_are_snapshotted(repo: Path) -> None:
    a = agent(repo, "a")
    assert a.worktree is not None
    write(a.worktree, "star*.txt", "1\n")
    write(a.worktree, "starry.txt", "untouched? no, new as well\n")
    write(a.worktree, "[ab].md", "2\n")

    assert change_set(a).files == ("[ab].md", "star*.txt", "starry.txt")


def test_an_untracked_file_that_vanishes_mid_snapshot_does_not_break_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = agent(repo, "a")
    assert a.worktree is not None
    wt = a.worktree
    write(wt, "keep.txt", "k\n")
    write(wt, "tmp.swp", "editor swap file\n")
    real_probe = changes.probe

    def probe_then_the_editor_exits(*args: Any) -> Any:
        found = real_probe(*args)
        (wt / "tmp.swp").unlink()  # between `git status` and `git add`
        return found

    monkeypatch.setattr(changes, "probe", probe_then_the_editor_exits)

    assert change_set(a).files == ("keep.txt",)


def test_ignored_files_do_not_count(repo: Path) -> None:
    a = agent(repo, "a")
    assert a.worktree is not None
    write(a.worktree, ".gitignore", "build/\n")
    commit_all(a.worktree)
    write(a.worktree, "build/out.bin", "junk\n")

    assert change_set(a).files == (".gitignore",)


def test_file_names_with_spaces_and_unicode_survive(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    assert a.worktree is not None and b.worktree is not None
    name = "dir with space/ünï cödé.txt"
    write(a.worktree, name, "a\n")
    commit_all(a.worktree)
    write(b.worktree, name, "b\n")

    assert find_collisions([a, b])["a"][0].files == (name,)


def test_marker_clears_when_the_other_agent_is_no_longer_passed(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, L5="b")
    cache = CollisionCache()
    assert find_collisions([a, b], cache)["a"]

    assert find_collisions([a], cache) == {"a": []}


def test_removed_worktree_still_collides_through_its_branch(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, L5="b")
    git(repo, "worktree", "remove", str(b.worktree))

    for gone in (Work("b", repo, None, "agent/b", "main"), b):  # None, or a stale path
        assert find_collisions([a, gone])["a"] == [
            Collision("b", ("shared.py",), True, ("shared.py",))
        ]

    git(repo, "branch", "-D", "agent/b")
    assert find_collisions([a, b]) == {"a": [], "b": []}


@pytest.mark.parametrize("how", [(), ("--squash",)], ids=["merge", "squash"])
def test_marker_clears_once_one_agent_is_merged_into_base(repo: Path, how: tuple[str, ...]) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L2="a")
    edit(b, L30="b")
    cache = CollisionCache()
    assert find_collisions([a, b], cache)["a"] == [Collision("b", ("shared.py",), False)]

    merge_into_main(repo, "agent/b", *how)

    assert find_collisions([a, b], cache) == {"a": [], "b": []}
    assert not change_set(b).has_work
    assert change_set(a).files == ("shared.py",)


def _observe(work: Work) -> dict[str, object]:
    """Everything a user could notice changing in a worktree, its index or the refs."""
    assert work.worktree is not None
    wt = work.worktree
    index = Path(git(wt, "rev-parse", "--path-format=absolute", "--git-path", "index").strip())
    files = {
        str(p.relative_to(wt)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(wt.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }
    return {
        "objects": git(work.repo, "count-objects", "-v"),  # no snapshot or merge lands here
        "index": (index.stat().st_mtime_ns, index.read_bytes()),
        "status": git(wt, "--no-optional-locks", "status", "--porcelain=v2", "--branch"),
        "refs": git(work.repo, "for-each-ref"),
        "stash": git(work.repo, "stash", "list"),
        "files": files,
    }


def test_engine_modifies_no_worktree_index_or_ref(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    assert a.worktree is not None and b.worktree is not None
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    write(b.worktree, "other.py", lines(10, L1="staged"))
    git(b.worktree, "add", "other.py")
    write(b.worktree, "untracked.txt", "u\n")
    # Same content, newer stat: a plain `git status` would rewrite the index to refresh it.
    os.utime(b.worktree / "docs/readme.md", ns=(1, 1))
    git(repo, "commit", "-q", "--allow-empty", "-m", "base moves")
    before = {w.agent_id: _observe(w) for w in (a, b)}

    find_collisions([a, b])
    base_drift(b)
    merge_order([a, b], "main")

    assert {w.agent_id: _observe(w) for w in (a, b)} == before


def test_scratch_objects_go_away_with_the_cache(repo: Path, tmp_path: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    parent = tmp_path / "scratch"
    parent.mkdir()
    cache = CollisionCache(scratch_parent=parent)
    find_collisions([a, b], cache)
    assert len(list(parent.iterdir())) == 1

    cache.close()

    assert list(parent.iterdir()) == []
    assert find_collisions([a, b], cache)["a"][0].conflict  # still usable afterwards


def test_scratch_objects_are_recycled_once_they_grow(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mullui.collisions.cache.SCRATCH_ROTATE_WRITES", 1)
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    cache = CollisionCache(scratch_parent=tmp_path)
    first = find_collisions([a, b], cache)  # 1 snapshot + 1 merge: over the limit

    assert [p for p in tmp_path.iterdir() if p.name.startswith("mullui-radar-")] == []
    assert find_collisions([a, b], cache) == first
    assert cache.stats.agent_hits == 0  # recycled: everything was computed again


def test_scratch_objects_live_in_ram_when_there_is_room(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ram = tmp_path / "run-user"  # stands for $XDG_RUNTIME_DIR (a tmpfs under systemd)
    ram.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(ram))
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    cache = CollisionCache()
    assert find_collisions([a, b], cache)["a"][0].conflict
    assert [p.name[:13] for p in ram.iterdir()] == ["mullui-radar-"]
    cache.close()
    assert list(ram.iterdir()) == []

    # Short of room (a container's 64 MB /dev/shm): the system temp dir instead.
    monkeypatch.setattr("mullui.collisions.cache.SCRATCH_RAM_MIN_FREE", 2**62)
    cache = CollisionCache()
    assert find_collisions([a, b], cache)["a"][0].conflict
    assert list(ram.iterdir()) == []
    cache.close()


def test_scratch_objects_removed_under_the_radar_are_made_afresh(
    repo: Path, tmp_path: Path
) -> None:
    # systemd-logind's RemoveIPC empties /dev/shm at the user's last logout; mullui may
    # live on in tmux.
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    cache = CollisionCache(scratch_parent=tmp_path)
    first = find_collisions([a, b], cache)
    for p in tmp_path.iterdir():
        if p.name.startswith("mullui-radar-"):
            shutil.rmtree(p)
    edit(b, commit=False, L5="b again")  # a new snapshot must be written somewhere

    again = find_collisions([a, b], cache)

    assert again["a"][0].conflict and again == first
    cache.close()


def test_scratch_left_by_a_killed_radar_is_swept(repo: Path, tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = tmp_path / f"mullui-radar-{gone.pid}-abc123"
    alive = tmp_path / f"mullui-radar-{os.getpid()}-def456"
    unknown = tmp_path / "mullui-radar-x1y2z3"  # an older name without a pid
    for d in (orphan, alive, unknown):
        (d / "ab").mkdir(parents=True)
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    cache = CollisionCache(scratch_parent=tmp_path)

    assert find_collisions([a, b], cache)["a"][0].conflict

    assert not orphan.exists()
    assert alive.exists() and unknown.exists()
    cache.close()


def test_the_snapshot_is_readable_through_the_cache_environment(repo: Path) -> None:
    a = agent(repo, "a")
    assert a.worktree is not None
    write(a.worktree, "fresh.txt", "not committed\n")
    cache = CollisionCache()
    cs = change_set(a, cache)
    assert cs.snapshot is not None and cs.fork_point is not None

    env = {**os.environ, **cache.object_env(repo)}
    out = subprocess.run(
        ["git", "diff", "--name-only", cs.fork_point, cs.snapshot],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["fresh.txt"]
    cache.close()


def test_split_index_repositories_gain_no_shared_index_files(repo: Path) -> None:
    git(repo, "config", "core.splitIndex", "true")
    a = agent(repo, "a")
    assert a.worktree is not None
    git(a.worktree, "update-index", "--split-index")
    gitdir = Path(git(a.worktree, "rev-parse", "--absolute-git-dir").strip())
    write(a.worktree, "new.txt", "n\n")
    before = sorted(p.name for p in gitdir.iterdir())

    assert change_set(a).files == ("new.txt",)

    assert sorted(p.name for p in gitdir.iterdir()) == before


def test_observation_would_notice_an_index_refresh(repo: Path) -> None:
    """Guards the test above: the touched file really makes git want to write the index."""
    b = agent(repo, "b")
    assert b.worktree is not None
    os.utime(b.worktree / "docs/readme.md", ns=(1, 1))
    before = _observe(b)
    git(b.worktree, "status")
    assert _observe(b)["index"] != before["index"]


def test_base_drift_after_someone_merged_into_base(repo: Path) -> None:
    a, b, c = agent(repo, "a"), agent(repo, "b"), agent(repo, "c")
    edit(a, L5="a")
    edit(b, L5="b")
    edit(c, rel="other.py", L1="c")
    assert base_drift(a).behind == 0

    merge_into_main(repo, "agent/b")
    merge_into_main(repo, "agent/c")

    drift = base_drift(a)
    # b fast-forwards main (1 commit); c brings its commit and a merge commit (2).
    assert (drift.behind, drift.files, drift.conflict) == (3, ("shared.py",), True)
    assert drift.conflict_files == ("shared.py",)


def test_base_drift_on_other_hunks_is_reported_without_conflict(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, L30="b")
    merge_into_main(repo, "agent/b")

    drift = base_drift(a)
    assert (drift.behind, drift.files, drift.conflict) == (1, ("shared.py",), False)


def test_merge_order_keeps_the_given_order_when_it_is_clean(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L2="a")
    edit(b, L30="b")

    plan = merge_order([a, b], "main")

    assert plan.order == ("a", "b")
    assert plan.blockers == ()


def test_merge_order_finds_the_clean_order_when_the_given_one_conflicts(repo: Path) -> None:
    # a changed line 5; then main changed line 5 too.  b continued a's work and merged main,
    # resolving line 5.  a-then-b conflicts at a; b-then-a is clean (a is already in b).
    a = agent(repo, "a")
    edit(a, L5="a")
    write(repo, "shared.py", lines(N, L5="main"))
    commit_all(repo, "main changes line 5")
    b = agent(repo, "b", start="agent/a")
    assert b.worktree is not None
    try:
        git(b.worktree, "merge", "-q", "--no-edit", "main")
    except RuntimeError:
        pass  # the expected conflict; b resolves it
    write(b.worktree, "shared.py", lines(N, L5="a and main"))
    commit_all(b.worktree, "b resolves line 5")

    plan = merge_order([a, b], "main")

    assert plan.order == ("b", "a")
    assert plan.mergeable == ("b", "a")


def test_merge_order_says_none_exists_for_a_true_conflict(repo: Path) -> None:
    a, b, c = agent(repo, "a"), agent(repo, "b"), agent(repo, "c")
    edit(a, L5="a")
    edit(b, L5="b")
    edit(c, rel="other.py", L1="c")

    plan = merge_order([a, b, c], "main")

    assert plan.order is None
    assert plan.blockers == (Blocker("a", "b", ("shared.py",)),)
    assert len(plan.mergeable) == 2 and "c" in plan.mergeable
    assert not plan.exhausted


def test_merge_order_names_an_agent_that_conflicts_with_the_target_alone(repo: Path) -> None:
    a = agent(repo, "a")
    edit(a, L5="a")
    write(repo, "shared.py", lines(N, L5="main"))
    commit_all(repo, "main changes line 5")

    plan = merge_order([a], "main")

    assert plan.order is None
    assert plan.blockers == (Blocker("a", None, ("shared.py",)),)


def test_merge_order_leaves_out_agents_already_in_the_target(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, L30="b")
    merge_into_main(repo, "agent/a")

    plan = merge_order([a, b], "main")

    assert (plan.order, plan.noop) == (("b",), ("a",))


def test_repeated_calls_with_nothing_changed_only_run_git_status(repo: Path) -> None:
    a, b, c = agent(repo, "a"), agent(repo, "b"), agent(repo, "c")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    edit(c, rel="other.py", L1="c")
    cache = CollisionCache()
    first = find_collisions([a, b, c], cache)
    s = cache.stats
    calls, pair_misses, hits = s.git_calls, s.pair_misses, s.agent_hits

    assert find_collisions([a, b, c], cache) == first
    assert s.pair_misses == pair_misses
    assert s.agent_hits == hits + 3
    assert s.git_calls - calls == 3 + 1  # one status per agent, one ref lookup per repo


def test_an_event_naming_one_agent_rechecks_only_that_agent(repo: Path) -> None:
    a, b, c = agent(repo, "a"), agent(repo, "b"), agent(repo, "c")
    edit(a, L5="a")
    edit(c, rel="other.py", L1="c")
    cache = CollisionCache()
    assert find_collisions([a, b, c], cache) == {"a": [], "b": [], "c": []}
    calls = cache.stats.git_calls

    edit(b, commit=False, L5="b")  # the edit hook reports agent b
    found = find_collisions([a, b, c], cache, changed={"b"})

    assert found["a"] == [Collision("b", ("shared.py",), True, ("shared.py",))]
    # ref lookup + b's status, snapshot (add, write-tree, commit-tree), diff, one merge
    assert cache.stats.git_calls - calls == 7


def test_editing_an_already_modified_file_again_is_noticed(repo: Path) -> None:
    # The status line stays " M shared.py" across both edits; only the file's stat moves.
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    edit(b, commit=False, L5="b")
    cache = CollisionCache()
    assert find_collisions([a, b], cache)["b"][0].conflict

    edit(b, commit=False, L30="b moved its change elsewhere")

    assert find_collisions([a, b], cache)["b"] == [Collision("a", ("shared.py",), False)]


def test_a_commit_in_the_worktree_invalidates_the_cache(repo: Path) -> None:
    a, b = agent(repo, "a"), agent(repo, "b")
    edit(a, L5="a")
    cache = CollisionCache()
    assert find_collisions([a, b], cache) == {"a": [], "b": []}

    edit(b, L5="b")

    assert find_collisions([a, b], cache)["a"][0].conflict


def test_unknown_base_is_an_actionable_error(repo: Path) -> None:
    a = agent(repo, "a")
    with pytest.raises(MulluiError, match="base 'nope' of agent a"):
        change_set(Work("a", repo, a.worktree, "agent/a", "nope"))
