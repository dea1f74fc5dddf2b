"""Real repositories, real habits (issue 19): what a user does in their own terminal and
repository does not break or mislead mullui.  Real git (linked worktrees, submodules,
detached and symbolic refs), real tmux, real processes, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from mullui.errors import MulluiError
from mullui.paths import get_paths
from mullui.runtime import worktrees
from mullui.workspace import Workspace
from tests.conftest import ls_json, wait_for
from tests.support.agents import agent_row as record
from tests.support.agents import spawn
from tests.support.gitrepo import commit_file, git, make_repo

Cli = Callable[..., CompletedProcess[str]]


def test_a_relative_xdg_home_is_ignored_as_the_spec_says(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    here = tmp_path / "somewhere"
    here.mkdir()
    env = {
        "HOME": str(home),
        "MULLUI_HOME": "",
        "XDG_CONFIG_HOME": "rel/config",
        "XDG_STATE_HOME": "rel/state",
        "XDG_DATA_HOME": "./rel/data",
    }
    r = cli("ls", cwd=here, env=env)
    assert r.returncode == 0, r.stderr
    assert not (here / "rel").exists()
    p = get_paths({k: v for k, v in env.items() if v})
    assert p.state_dir == home / ".local" / "state" / "mullui"
    assert p.config_dir == home / ".config" / "mullui"
    assert p.data_dir == home / ".local" / "share" / "mullui"
    absolute = get_paths({"HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "st")})
    assert absolute.state_dir == tmp_path / "st" / "mullui"
    assert os.path.isabs(absolute.config_dir)


# ---- runtime: bases, branches, submodules ----------------------------------------------

# Local submodule URLs need file transport (git >= 2.38.1 refuses it by default).
FILE_OK = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.file.allow",
    "GIT_CONFIG_VALUE_0": "always",
}


def test_the_current_branch_is_the_one_of_the_linked_worktree_the_user_stands_in(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "p")
    mine = tmp_path / "mine"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    (mine / "sub").mkdir()
    assert worktrees.current_branch(mine / "sub") == "feature"
    assert worktrees.resolve_base(mine / "sub", None) == worktrees.Base(
        "feature", git(mine, "rev-parse", "HEAD").strip()
    )
    assert worktrees.resolve_base(repo, None).ref == "main"


def test_symbolic_refs_are_resolved_where_the_user_stands(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p")
    first = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "feature")
    second = commit_file(repo, "f.txt", "f\n")
    git(repo, "tag", "v1", first)
    for ref in ("HEAD", "@", "feature"):
        assert worktrees.resolve_base(repo, ref) == worktrees.Base("feature", second)
    assert worktrees.resolve_base(repo, "@{-1}") == worktrees.Base("main", first)
    assert worktrees.resolve_base(repo, "v1") == worktrees.Base("v1", first)
    relative = worktrees.resolve_base(repo, "HEAD~1")
    assert (relative.ref, relative.sha) == (first, first)
    assert relative.note and "HEAD~1 is commit" in relative.note and "--into" in relative.note
    git(repo, "checkout", "-q", "--detach")
    for ref in (None, "HEAD"):
        detached = worktrees.resolve_base(repo, ref)
        assert (detached.ref, detached.sha) == (second, second)
        assert detached.note and "not a branch" in detached.note
    with pytest.raises(MulluiError, match="base ref 'nope' not found"):
        worktrees.resolve_base(repo, "nope")


def test_a_repository_with_no_commits_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    for ref in (None, "main", "HEAD"):
        with pytest.raises(MulluiError, match="^this repository has no commits yet: commit"):
            worktrees.resolve_base(empty, ref)
    with pytest.raises(MulluiError, match="no commits yet"):
        worktrees.create(empty, tmp_path / "wts", "x", "a1", "main")


def test_a_user_branch_named_mullui_does_not_block_agents(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p")
    git(repo, "branch", "mullui")
    wt = worktrees.create(repo, tmp_path / "wts", "fix", "a1", "main")
    assert wt.branch == "mullui-fix-a1"
    assert git(wt.path, "symbolic-ref", "--short", "HEAD").strip() == "mullui-fix-a1"
    assert "mullui" in git(repo, "branch", "--list", "mullui")


def _submodule_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in FILE_OK.items():
        monkeypatch.setenv(k, v)
    nested = make_repo(tmp_path / "nested", {"n.txt": "nested\n"})
    lib = make_repo(tmp_path / "lib", {"lib.txt": "lib\n"})
    git(lib, "submodule", "add", "-q", str(nested), "deep")
    git(lib, "commit", "-qm", "deep")
    app = make_repo(tmp_path / "app", {"a.txt": "a\n"})
    git(app, "submodule", "add", "-q", str(lib), "vendor/lib")
    git(app, "commit", "-qm", "lib")
    git(app, "submodule", "update", "--init", "--recursive", "-q")
    return app


def test_submodules_are_initialised_recursively_from_the_main_checkouts_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _submodule_repo(tmp_path, monkeypatch)
    lines: list[str] = []
    wt = worktrees.create(app, tmp_path / "wts", "x", "a1", "main", progress=lines.append)
    assert wt.notes == ()
    assert (wt.path / "vendor/lib/lib.txt").read_text() == "lib\n"
    assert (wt.path / "vendor/lib/deep/n.txt").read_text() == "nested\n"
    assert "initialising submodule vendor/lib/deep" in lines
    # Borrowed, not copied: the clones point at the main checkout's module objects.
    gitdir = Path(git(wt.path / "vendor/lib", "rev-parse", "--absolute-git-dir").strip())
    alternates = (gitdir / "objects/info/alternates").read_text()
    assert str(app / ".git/modules/vendor/lib/objects") in alternates
    assert git(wt.path, "status", "--porcelain") == ""
    # The agent's worktree with its submodules goes as any other.
    assert worktrees.remove(app, wt.path, wt.branch, force=False, agent_name="x") is None
    assert not wt.path.exists()


def test_a_submodule_that_cannot_be_initialised_is_one_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _submodule_repo(tmp_path, monkeypatch)
    for k in FILE_OK:
        monkeypatch.delenv(k)  # now git refuses the file:// transport
    git(app, "config", "protocol.file.allow", "never")
    wt = worktrees.create(app, tmp_path / "wts", "x", "a1", "main")
    assert len(wt.notes) == 1
    assert wt.notes[0].startswith("submodule vendor/lib is left empty in the agent's worktree:")
    assert (wt.path / "a.txt").exists()


def test_left_out_names_the_uncommitted_files_the_agent_will_not_see(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "a\n", "b.py": "b\n"})
    base = worktrees.resolve_base(repo, None)
    assert worktrees.left_out(repo, base) is None
    (repo / "a.py").write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    note = worktrees.left_out(repo, base)
    assert note == (
        "the agent starts from main as committed and will not see 2 uncommitted files "
        "here: a.py, new.txt (commit first to include)"
    )
    other = worktrees.Base("v0", "0" * 40)
    assert worktrees.left_out(repo, other) is None
    # What the TUI's new-agent dialog shows before the user confirms:
    git(repo, "checkout", "-q", "--detach")
    chosen, lines = worktrees.spawn_notes(repo, None)
    assert chosen.ref == chosen.sha and len(lines) == 2
    assert "not a branch" in lines[0] and "2 uncommitted files" in lines[1]


def test_the_agents_work_is_the_branch_its_worktree_has_checked_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p")
    wt = worktrees.create(repo, tmp_path / "wts", "x", "a1", "main")
    assert worktrees.work_branch(wt.path, wt.branch) == (wt.branch, None)
    git(wt.path, "checkout", "-q", "-b", "elsewhere")
    branch, warning = worktrees.work_branch(wt.path, wt.branch)
    assert branch == "elsewhere" and warning and "it started on mullui/x-a1" in warning
    git(wt.path, "checkout", "-q", "--detach")
    branch, warning = worktrees.work_branch(wt.path, wt.branch)
    assert branch == wt.branch and warning and "detached HEAD" in warning


# ---- the CLI in real repositories ------------------------------------------------------
def finished(cli: Cli, cwd: Path, aid: str, state: str = "done") -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (a := record(cli, cwd, aid))["state"] == state and a, timeout=20
    )


def committing(name: str, text: str) -> str:
    return f"printf '%s\\n' {text!r} > {name}; git add -A; git commit -qm {name}"


def test_spawn_in_a_repository_without_commits_says_commit_first(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    r = cli("spawn", "--agent", "shell", "--no-attach", "true", cwd=empty)
    assert r.returncode == 1
    assert r.stderr == (
        "mullui: this repository has no commits yet: commit something first, then spawn\n"
    )


def test_a_branch_named_mullui_does_not_block_spawns(cli: Cli, git_repo: Path) -> None:
    git(git_repo, "branch", "mullui")
    aid = spawn(cli, git_repo, "true")
    assert finished(cli, git_repo, aid)["branch"].startswith("mullui-true-")


def test_spawn_initialises_submodules_in_the_agents_worktree(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _submodule_repo(tmp_path, monkeypatch)
    aid = spawn(cli, app, "cat vendor/lib/deep/n.txt > seen.txt", env=FILE_OK)
    a = finished(cli, app, aid)
    assert (Path(a["worktree"]) / "seen.txt").read_text() == "nested\n"
    refused = {**FILE_OK, "GIT_CONFIG_VALUE_0": "never"}
    r = cli("spawn", "--agent", "shell", "--no-attach", "true", cwd=app, env=refused)
    assert r.returncode == 0, r.stderr
    assert "submodule vendor/lib is left empty in the agent's worktree" in r.stderr
    assert r.stderr.count("\n") == 1


def test_a_task_of_60_kb_and_a_task_file_reach_the_agent(
    cli: Cli, git_repo: Path, mullui_home: Path, tmp_path: Path
) -> None:
    (mullui_home / "config.toml").write_text(
        '[profiles.echoer]\ncommand = ["python3", "-c", '
        "\"import sys; open('task.txt', 'w').write(sys.argv[1])\", \"{task}\"]\n"
    )
    task = "spec line with 'quotes' $(x) ü\n" * 2000
    assert len(task.encode()) > 60_000
    r = cli("spawn", "--agent", "echoer", "--no-attach", task, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    a = finished(cli, git_repo, r.stdout.strip())
    assert (Path(a["worktree"]) / "task.txt").read_text() == task
    spec = tmp_path / "SPEC.md"
    spec.write_text(task + "from a file\n")
    r = cli("spawn", "--agent", "echoer", "--no-attach", "--task-file", str(spec), cwd=git_repo)
    assert r.returncode == 0, r.stderr
    a = finished(cli, git_repo, r.stdout.strip())
    assert (Path(a["worktree"]) / "task.txt").read_text() == task + "from a file\n"
    for bad in (["--task-file", str(tmp_path / "missing.md")], ["--task-file", str(spec), "x"]):
        r = cli("spawn", "--agent", "echoer", "--no-attach", *bad, cwd=git_repo)
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr
        assert r.stderr.count("\n") <= 3


def test_stop_ends_processes_that_ignore_term_and_a_nohup_child(
    cli: Cli, git_repo: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    aid = spawn(
        cli,
        git_repo,
        f"trap '' TERM HUP INT; nohup sh -c 'trap \"\" TERM HUP; echo $$ >> {pids}; "
        f"exec sleep 300' >/dev/null 2>&1 & echo $$ >> {pids}; while :; do sleep 1; done",
    )
    tree = [int(p) for p in wait_for(lambda: len(_read(pids).split()) >= 2 and _read(pids)).split()]
    r = cli("stop", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert [p for p in tree if _alive(p)] == []
    assert record(cli, git_repo, aid)["state"] == "stopped"
    # rm --force of a live agent: its nohup'd server goes too.
    aid = spawn(
        cli,
        git_repo,
        f"nohup sh -c 'echo $$ >> {pids}.2; exec sleep 300' >/dev/null 2>&1 & sleep 300",
    )
    (child,) = [int(p) for p in wait_for(lambda: _read(Path(f"{pids}.2"))).split()]
    r = cli("rm", "--force", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not _alive(child), timeout=5)


def test_send_of_a_double_dash_is_not_a_traceback(cli: Cli, git_repo: Path) -> None:
    aid = spawn(cli, git_repo, 'IFS= read -r line; printf %s "$line" > got.txt')
    wt = Path(record(cli, git_repo, aid)["worktree"])
    r = cli("send", aid, "--", "--", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    finished(cli, git_repo, aid)
    assert (wt / "got.txt").read_text() == "--"
    for argv in ([aid, "--"], [aid, "a", "b"], [aid, "-x"]):
        r = cli("send", *argv, cwd=git_repo)
        assert r.returncode == 2 and "Traceback" not in r.stderr


def test_several_repositories_show_their_repo_and_can_be_narrowed(cli: Cli, tmp_path: Path) -> None:
    one = make_repo(tmp_path / "one")
    two = make_repo(tmp_path / "two")
    a1 = spawn(cli, one, "exit 1", "--name", "uno")
    a2 = spawn(cli, two / ".", "exit 1", "--name", "dos")
    finished(cli, one, a1, "failed")
    finished(cli, two, a2, "failed")
    rows = ls_json(cli, one)
    assert {r["id"]: r["repo"] for r in rows} == {a1: str(one), a2: str(two)}
    table = cli("ls", cwd=one).stdout
    assert "REPO" in table.splitlines()[0] and "one" in table and "two" in table
    assert [r["id"] for r in json.loads(cli("ls", "--json", "--here", cwd=two).stdout)] == [a2]
    narrowed = json.loads(cli("ls", "--json", "--repo", str(one), cwd=two).stdout)
    assert [r["id"] for r in narrowed] == [a1]
    inbox = cli("inbox", "--here", cwd=one).stdout
    assert "uno" in inbox and "dos" not in inbox
    assert "REPO" in cli("inbox", cwd=one).stdout.splitlines()[0]
    single = make_repo(tmp_path / "single")
    bad = cli("ls", "--repo", str(tmp_path / "nowhere"), cwd=single)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_wide_characters_keep_the_ls_table_aligned(cli: Cli, git_repo: Path) -> None:
    spawn(cli, git_repo, "exit 0", "--name", "修正ログイン")
    spawn(cli, git_repo, "exit 0", "--name", "plain-name")
    lines = cli("ls", cwd=git_repo).stdout.splitlines()
    col = [unicodedata_width(line[: line.index("shell")]) for line in lines[1:]]
    assert len(set(col)) == 1, lines


def unicodedata_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _locked(repo: Path, worktree: str) -> bool:
    blocks = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    block = next((b for b in blocks if b.startswith(f"worktree {worktree}\n")), "")
    return any(line.startswith("locked") for line in block.splitlines())


def test_a_finished_agents_worktree_is_unlocked(cli: Cli, git_repo: Path) -> None:
    live = spawn(cli, git_repo, "sleep 30")
    done = spawn(cli, git_repo, "true")
    wt = finished(cli, git_repo, done)["worktree"]
    wait_for(lambda: not _locked(git_repo, wt), timeout=5)
    assert _locked(git_repo, record(cli, git_repo, live)["worktree"])


def test_worktree_and_branch_removed_by_hand_are_said_and_cleaned(cli: Cli, git_repo: Path) -> None:
    aid = spawn(cli, git_repo, committing("w.txt", "w"))
    a = finished(cli, git_repo, aid)
    wt, branch = a["worktree"], a["branch"]
    git(git_repo, "worktree", "remove", "--force", "--force", wt)
    git(git_repo, "branch", "-D", branch)
    after = record(cli, git_repo, aid)
    assert after["worktree"] is None and after["branch"] is None
    assert "worktree and branch gone" in cli("ls", cwd=git_repo).stdout
    stop = cli("stop", aid, cwd=git_repo)
    assert stop.returncode == 0
    assert "stay" not in stop.stdout and "worktree and branch are gone" in stop.stdout
    rm = cli("rm", aid, cwd=git_repo)
    assert rm.returncode == 0, rm.stderr
    assert "stays" not in rm.stdout and "already gone" in rm.stdout
    assert wt not in git(git_repo, "worktree", "list")


def test_a_branch_deleted_under_its_worktree_is_said_and_rm_force_restores_it(
    cli: Cli, git_repo: Path
) -> None:
    aid = spawn(cli, git_repo, committing("w.txt", "w") + "; echo extra > loose.txt")
    a = finished(cli, git_repo, aid)
    wt, branch = a["worktree"], a["branch"]
    last = git(Path(wt), "rev-parse", "HEAD").strip()
    git(git_repo, "update-ref", "-d", f"refs/heads/{branch}")  # git branch -D refuses
    row = record(cli, git_repo, aid)
    assert row["worktree"] == wt and row["branch"] is None
    assert "branch gone" in cli("ls", cwd=git_repo).stdout
    r = cli("rm", aid, cwd=git_repo)
    assert r.returncode == 1
    assert f"branch {branch} was deleted by hand (it was at {last[:12]})" in r.stderr
    assert "uncommitted changes in" not in r.stderr
    r = cli("rm", "--force", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    # The agent's commit and only its uncommitted file: nothing lost, nothing invented.
    assert git(git_repo, "rev-parse", f"{branch}~1").strip() == last
    shown = git(git_repo, "show", "--name-only", "--format=", branch).split()
    assert shown == ["loose.txt"]
    assert not Path(wt).exists()


def test_a_worktree_deleted_with_rm_rf_is_pruned_by_rm(cli: Cli, git_repo: Path) -> None:
    aid = spawn(cli, git_repo, "true")
    a = finished(cli, git_repo, aid)
    shutil.rmtree(a["worktree"])
    rm = cli("rm", aid, cwd=git_repo)
    assert rm.returncode == 0, rm.stderr
    assert "already gone" in rm.stdout
    assert a["worktree"] not in git(git_repo, "worktree", "list")
    git(git_repo, "branch", "-D", a["branch"])  # nothing holds it any more


def test_spawn_in_a_linked_worktree_starts_from_that_worktrees_branch(
    cli: Cli, git_repo: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    git(git_repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    commit_file(mine, "only-on-feature.txt", "f\n")
    (mine / "deep").mkdir()
    aid = spawn(cli, mine / "deep", committing("agent.txt", "a"))
    a = finished(cli, mine, aid)
    assert (Path(a["worktree"]) / "only-on-feature.txt").exists()
    r = cli("merge", aid, cwd=mine)
    assert r.returncode == 0, r.stderr
    assert "into feature" in r.stdout
    assert (mine / "agent.txt").read_text() == "a\n"
    assert not (git_repo / "agent.txt").exists()  # main untouched


def test_base_head_means_the_branch_where_the_user_stands(cli: Cli, git_repo: Path) -> None:
    git(git_repo, "checkout", "-q", "-b", "feature")
    aid = spawn(cli, git_repo, committing("agent.txt", "a"), "--base", "HEAD")
    finished(cli, git_repo, aid)
    rows = json.loads(cli("report", "--json", cwd=git_repo).stdout)["agents"]
    assert next(r for r in rows if r["id"] == aid)["files_changed"] == 1
    r = cli("merge", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "into feature" in r.stdout


def test_a_detached_head_base_is_its_commit_with_a_note(cli: Cli, git_repo: Path) -> None:
    git(git_repo, "checkout", "-q", "--detach")
    r = cli("spawn", "--agent", "shell", "--no-attach", committing("d.txt", "d"), cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "not a branch: the agent starts there" in r.stderr
    aid = r.stdout.strip()
    finished(cli, git_repo, aid)
    m = cli("merge", aid, cwd=git_repo)
    assert m.returncode == 1 and "--into" in m.stderr and "Traceback" not in m.stderr
    m = cli("merge", aid, "--into", "main", cwd=git_repo)
    assert m.returncode == 0, m.stderr


def test_spawn_names_the_uncommitted_files_the_agent_will_not_see(cli: Cli, git_repo: Path) -> None:
    clean = cli("spawn", "--agent", "shell", "--no-attach", "true", cwd=git_repo)
    assert clean.returncode == 0 and clean.stderr == ""
    (git_repo / "README.md").write_text("edited\n")
    (git_repo / "notes.txt").write_text("new\n")
    r = cli("spawn", "--agent", "shell", "--no-attach", "true", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        "mullui: the agent starts from main as committed and will not see 2 uncommitted "
        "files here: README.md, notes.txt (commit first to include)\n"
    )


def test_merge_of_uncommitted_work_says_so_and_commits_it_on_request(
    cli: Cli, git_repo: Path
) -> None:
    aid = spawn(cli, git_repo, "echo w > f.py")
    finished(cli, git_repo, aid)
    before = git(git_repo, "rev-parse", "main")
    r = cli("merge", aid, cwd=git_repo)
    assert r.returncode == 1
    assert "uncommitted" in r.stderr and "f.py" in r.stderr and "merge --commit" in r.stderr
    assert "nothing to merge" not in r.stderr
    assert git(git_repo, "rev-parse", "main") == before
    ack = cli("ack", aid, cwd=git_repo)
    assert ack.returncode == 0
    assert "not merged" in ack.stderr and "f.py" in ack.stderr
    r = cli("merge", "--commit", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert (git_repo / "f.py").read_text() == "w\n"


def test_an_agent_that_switched_branches_is_merged_from_the_branch_it_is_on(
    cli: Cli, git_repo: Path
) -> None:
    aid = spawn(cli, git_repo, "git checkout -qb elsewhere; " + committing("g.txt", "g"))
    finished(cli, git_repo, aid)
    rows = json.loads(cli("report", "--json", cwd=git_repo).stdout)["agents"]
    assert next(r for r in rows if r["id"] == aid)["files_changed"] == 1
    assert "+++ b/g.txt" in Workspace(cwd=git_repo).diff(aid, color=False)  # the TUI's d
    ack = cli("ack", aid, cwd=git_repo)
    assert "1 commit not in main" in ack.stderr and "elsewhere" in ack.stderr
    r = cli("merge", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "merged" in r.stdout and "(elsewhere) into main" in r.stdout
    assert "it started on mullui/" in r.stderr
    assert (git_repo / "g.txt").read_text() == "g\n"


def _read(p: Path) -> str:
    return p.read_text() if p.exists() else ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"
