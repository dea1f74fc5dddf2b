"""The collision guard with the real Claude Code CLI (against the loopback Anthropic stub),
real shell agents in tmux, real worktrees, the real radar in ``mullui watch``.

Agent B (shell) has changed ``src/app.py`` and keeps working; agent A (claude) reads
``src/app.py`` then asks to Write it (Claude's Write refuses an existing file the session
has not Read).  ``block``: the stub's next request carries a tool result naming B; ``ask``:
A is ``blocked`` with cause ``collision:src/app.py`` at once and goes on once the human
allows it; ``warn``: the write happens, the agent is told, the human has one inbox item.
A file nobody else changed is never held.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from mullui import guard
from mullui.agents.gemini import GEMINI_DIALOG
from mullui.agents.opencode import OPENCODE_DIALOG
from mullui.model import State
from mullui.paths import get_paths
from mullui.store import Store
from tests.conftest import git, ls_json, make_repo, wait_for
from tests.integration.test_radar import Watch
from tests.support.anthropic_stub import AnthropicStub, Turn
from tests.support.claude_env import make_claude_home

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("claude") is None,
        reason="CLAUDE CODE CLI NOT INSTALLED - the collision guard's real-CLI tests did NOT run",
    ),
]

APP = "".join(f"line {i}\n" for i in range(1, 41))
# A's version: its own far-away line (merges cleanly with B's line 1: an overlap, no conflict)
MINE = APP.replace("line 40\n", "A forty\n")


@dataclass
class Fleet:
    cli: Cli
    repo: Path
    stub: AnthropicStub
    beta: str  # B: the shell agent that changed src/app.py
    beta_branch: str
    watch: Watch | None = None  # a real `mullui watch` (terminal notifications), if asked

    def spawn_claude(self, turns: list[Turn], *args: str) -> tuple[str, Path]:
        """Spawn A with ``turns`` whose ``file_path`` inputs name files relative to A's
        worktree (known once it exists: filled in before the CLI's first request)."""
        self.stub.add(*turns)
        r = self.cli("spawn", "--agent", "claude", "--no-attach", "--name", "alpha", *args,
                     "edit the app", cwd=self.repo)  # fmt: skip
        assert r.returncode == 0, r.stderr
        aid = r.stdout.strip()
        wt = Path(record(aid).worktree or "")
        for t in turns:
            if t.tool_input and "file_path" in t.tool_input:
                t.tool_input["file_path"] = str(wt / t.tool_input["file_path"])
        return aid, wt

    def result_of(self, turn: Turn) -> list[dict[str, Any]]:
        """The blocks of the user message that carries ``turn``'s tool result (the
        result, and any text Claude Code adds beside it), as the CLI sent them next."""

        def find() -> list[dict[str, Any]] | None:
            for req in self.stub.main_requests():
                messages = (req.body or {}).get("messages", [])
                ids = {
                    b.get("id")
                    for m in messages
                    if m.get("role") == "assistant" and isinstance(m.get("content"), list)
                    for b in m["content"]
                    if isinstance(b, dict)
                    and b.get("type") == "tool_use"
                    and b.get("name") == turn.tool
                    and b.get("input") == turn.tool_input
                }
                for m in messages:
                    content = m.get("content")
                    if m.get("role") != "user" or not isinstance(content, list):
                        continue
                    blocks = [b for b in content if isinstance(b, dict)]
                    if any(b.get("tool_use_id") in ids for b in blocks if ids):
                        return blocks
            return None

        found: list[dict[str, Any]] = wait_for(find, timeout=60, interval=0.1)
        return found


def read_app_then(*turns: Turn) -> list[Turn]:
    """Claude's Write refuses an existing file the session has not Read: Glob, Read
    src/app.py, then ``turns``."""
    return [
        Turn(tool="Glob", tool_input={"pattern": "src/*.py"}),
        Turn(tool="Read", tool_input={"file_path": "src/app.py"}),
        *turns,
    ]


def record(aid: str) -> Any:
    return Store(get_paths()).load(aid)


@contextmanager
def fleet(
    cli: Cli, tmp_path: Path, mullui_home: Path, guard_mode: str, *, watch: bool = False
) -> Iterator[Fleet]:
    repo = make_repo(
        tmp_path / "repo", {"src/app.py": APP, "src/free.py": "free\n", "README.md": "r\n"}
    )
    git(repo, "config", "user.name", "mullui-test")
    git(repo, "config", "user.email", "test@mullui.invalid")
    with AnthropicStub() as stub:
        home = make_claude_home(tmp_path / "claude-home", [repo], base_url=stub.url)
        keep = [k for k in home.env if k not in ("PATH", "USER", "LANG", "TERM", "SHELL")]
        config = {
            "collisions": {"interval_s": 1, "guard": guard_mode},
            "profiles": {
                "claude": {
                    "env": {k: home.env[k] for k in keep},
                    # Claude asks before every edit otherwise: the guard is what we watch.
                    "args": ["--permission-mode", "acceptEdits"],
                }
            },
        }
        (mullui_home / "config.toml").write_text(tomli_w.dumps(config))
        watcher = Watch(repo, tmp_path / "watch.out") if watch else None
        # An idle agent, and B, which changes src/app.py and keeps working on it (its output
        # is what tells the radar to look again: a shell agent has no edit hooks).
        beta_task = "sleep 2; sed -i 's/^line 1$/B one/' src/app.py; echo edited; sleep 600"
        for name, task in (("idle", "sleep 600"), ("beta", beta_task)):
            r = cli("spawn", "--agent", "shell", "--no-attach", "--name", name, task, cwd=repo)
            assert r.returncode == 0, r.stderr
        beta = next(a for a in ls_json(cli, repo) if a["name"] == "beta")
        index = guard.index_file(get_paths().state_dir, str(repo))

        def indexed() -> bool:
            ls_json(cli, repo)  # without a supervisor, `ls` refreshes the radar
            doc = guard.read_index(index)
            return doc is not None and doc["files"].get("src/app.py") == [beta["id"]]

        try:
            wait_for(indexed, timeout=60, interval=0.5)
        except AssertionError:
            raise AssertionError(
                f"index: {guard.read_index(index)}\nls: {ls_json(cli, repo)}"
            ) from None
        try:
            yield Fleet(cli, repo, stub, beta["id"], beta["branch"], watcher)
        finally:
            if watcher is not None:
                watcher.stop()


def test_block_refuses_the_edit_and_the_model_reads_who_and_where(
    cli: Cli, tmp_path: Path, mullui_home: Path
) -> None:
    with fleet(cli, tmp_path, mullui_home, "block") as f:
        write = Turn(tool="Write", tool_input={"file_path": "src/app.py", "content": MINE})
        new = Turn(tool="Write", tool_input={"file_path": "src/new.py", "content": "new\n"})
        turns = read_app_then(write, new, Turn.say("I left src/app.py alone."))
        aid, wt = f.spawn_claude(turns)
        wait_for(lambda: record(aid).state is State.DONE, timeout=120, interval=0.2)

        results = [b for b in f.result_of(write) if b.get("type") == "tool_result"]
        assert len(results) == 1 and results[0]["is_error"] is True
        reason = str(results[0]["content"])
        assert "beta" in reason and f.beta_branch in reason and "src/app.py" in reason
        assert (wt / "src" / "app.py").read_text() == APP  # refused: untouched
        assert (wt / "src" / "new.py").read_text() == "new\n"  # nobody else's: never held
        new_results = f.result_of(new)
        assert not new_results[0].get("is_error"), new_results

        mine = next(a for a in ls_json(cli, f.repo) if a["id"] == aid)
        guarded = [c for c in mine["collisions"] if c["agent"] == f.beta]
        assert guarded and [(g["file"], g["action"]) for g in guarded[0]["guard"]] == [
            ("src/app.py", "block")
        ]
        report = json.loads(cli("collisions", "--json", cwd=f.repo).stdout)
        pair = next(p for p in report if set(p["agents"]) == {aid, f.beta})
        assert [(g["agent"], g["file"], g["action"]) for g in pair["guard"]] == [
            (aid, "src/app.py", "block")
        ]
        assert "guard: alpha block on src/app.py" in cli("collisions", cwd=f.repo).stdout


def test_ask_blocks_the_agent_at_once_and_it_goes_on_when_the_human_allows(
    cli: Cli, tmp_path: Path, mullui_home: Path
) -> None:
    with fleet(cli, tmp_path, mullui_home, "warn") as f:  # --guard ask for A alone
        write = Turn(tool="Write", tool_input={"file_path": "src/app.py", "content": MINE})
        turns = read_app_then(write, Turn.say("Written after the human said yes."))
        aid, wt = f.spawn_claude(turns, "--guard", "ask")

        def blocked() -> Any:
            a = record(aid)
            return a if a.state is State.BLOCKED else None

        a = wait_for(blocked, timeout=120, interval=0.02)
        seen = time.monotonic()
        assert write.sent_at is not None and write.sent_wall is not None
        assert a.cause == "collision:src/app.py"
        assert "beta" in (a.question or "")
        # When mullui knew (the blocked transition's time) against when the "API" sent the
        # tool call: the hook ran, the guard answered and the record said blocked.
        since = a.state_since.timestamp() - write.sent_wall
        print(f"\nask: blocked {since * 1000:.0f} ms after the tool call left the stub "
              f"(seen by polling {(seen - write.sent_at) * 1000:.0f} ms)")  # fmt: skip
        assert since < 1.0, f"blocked {since:.2f}s after the tool call"
        assert (wt / "src" / "app.py").read_text() == APP  # not before the human allows

        inbox = json.loads(cli("inbox", "--json", cwd=f.repo).stdout)
        assert [i["id"] for i in inbox] == [aid]
        # The CLI's own dialog opened too (its PermissionRequest): the cause stays the guard's.
        time.sleep(1.0)
        assert record(aid).cause == "collision:src/app.py"

        # The human allows it, as for any permission prompt: "1" picks Claude's "Yes".
        r = cli("send", aid, "1", cwd=f.repo)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: (wt / "src" / "app.py").read_text() == MINE, timeout=30, interval=0.1)
        done = wait_for(lambda: record(aid).state is State.DONE, timeout=60, interval=0.2)
        assert done
        history = [(t.state, t.cause) for t in record(aid).history]
        assert (State.BLOCKED, "collision:src/app.py") in history
        assert history.index((State.BLOCKED, "collision:src/app.py")) < len(history) - 1


def test_ask_refused_by_the_human_leaves_the_file_and_waits_for_what_instead(
    cli: Cli, tmp_path: Path, mullui_home: Path
) -> None:
    """``mullui send A n`` to the dialog the guard's ``ask`` opened: Esc, the file stays as
    it was, A is ``blocked`` on ``reply:denied`` (no longer on the collision: the dialog
    is gone), and the human's next line reaches the model as text."""
    with fleet(cli, tmp_path, mullui_home, "ask") as f:
        write = Turn(tool="Write", tool_input={"file_path": "src/app.py", "content": MINE})
        turns = read_app_then(write, Turn.say("Left it alone."))
        aid, wt = f.spawn_claude(turns)
        wait_for(lambda: record(aid).cause == "collision:src/app.py", timeout=120, interval=0.05)
        r = cli("send", aid, "n", cwd=f.repo)
        assert r.returncode == 0, r.stderr
        a = wait_for(lambda: (x := record(aid)).cause == "reply:denied" and x, timeout=30)
        assert a.state is State.BLOCKED
        time.sleep(1.0)
        assert (wt / "src" / "app.py").read_text() == APP
        n = len(f.stub.main_requests())
        r = cli("send", aid, "leave src/app.py to beta", cwd=f.repo)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len(f.stub.main_requests()) > n, timeout=60, interval=0.2)
        assert "leave src/app.py to beta" in json.dumps(f.stub.main_requests()[n].body)
        wait_for(lambda: record(aid).state is State.DONE, timeout=60, interval=0.2)
        assert (wt / "src" / "app.py").read_text() == APP


def test_warn_lets_the_write_happen_tells_the_agent_and_the_human_once(
    cli: Cli, tmp_path: Path, mullui_home: Path
) -> None:
    with fleet(cli, tmp_path, mullui_home, "warn", watch=True) as f:
        write = Turn(tool="Write", tool_input={"file_path": "src/app.py", "content": MINE})
        edit = Turn(
            tool="Edit",
            tool_input={"file_path": "src/app.py", "old_string": "line 39", "new_string": "A 39"},
        )
        turns = read_app_then(
            write,
            edit,  # the same file again: told again, no second inbox item or notification
            Turn.say("Kept it small."),
        )
        aid, wt = f.spawn_claude(turns)
        wait_for(lambda: record(aid).state is State.DONE, timeout=120, interval=0.2)
        assert (wt / "src" / "app.py").read_text() == MINE.replace("line 39", "A 39")

        blocks = f.result_of(write)
        told = " ".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        assert "beta" in told and f.beta_branch in told and "src/app.py" in told, blocks
        assert not any(b.get("is_error") for b in blocks)

        a = record(aid)
        assert a.conflict is not None and a.conflict.kind == "guard"
        assert (a.conflict.agent, a.conflict.files) == (f.beta, ("src/app.py",))
        assert [(g.file, g.action) for g in a.guarded] == [("src/app.py", "warn")]
        assert f.watch is not None
        title = "alpha edits a file beta also changed"
        wait_for(lambda: title in f.watch.titles(), timeout=20, interval=0.2)
        time.sleep(2.5)  # more radar passes (A and B overlap on src/app.py, no conflict)
        # One for the guard's item (beside A's own "done"); no second one, no conflict.
        titles = f.watch.titles()
        assert titles.count(title) == 1 and set(titles) <= {title, "alpha is done"}, titles
        inbox = json.loads(cli("inbox", "--json", cwd=f.repo).stdout)
        assert [i["id"] for i in inbox] == [aid]
        assert "beta" in inbox[0]["why"]
        mine = next(x for x in ls_json(cli, f.repo) if x["id"] == aid)
        (col,) = [c for c in mine["collisions"] if c["agent"] == f.beta]
        assert col["conflict"] is False and col["files"] == ["src/app.py"]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "warn")]


# ---- Gemini CLI: BeforeTool ------------------------------------------------------------------


def beta_changed_app(p: Any, mode: str, config: str = "") -> dict[str, str]:
    """In ``p`` (a tests.support.agent_clis.Pipeline): src/app.py committed, guard ``mode``
    (and ``config``, more TOML), an idle shell agent and B (``beta``), which changes
    src/app.py; returns their ids once the radar's index lists B for it."""
    (p.repo / "src").mkdir()
    (p.repo / "src" / "app.py").write_text(APP)
    git(p.repo, "add", "-A")
    git(p.repo, "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "a")
    home = Path(p.env["MULLUI_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[collisions]\ninterval_s = 1\nguard = "{mode}"\n' + config)
    beta_task = "sleep 2; sed -i 's/^line 1$/B one/' src/app.py; echo edited; sleep 600"
    ids = {}
    for name, task in (("idle", "sleep 600"), ("beta", beta_task)):
        r = p.mullui("spawn", "--agent", "shell", "--no-attach", "--name", name, task)
        assert r.returncode == 0, r.stderr
        ids[name] = r.stdout.strip().splitlines()[-1]
    index = guard.index_file(home / "state", str(p.repo))

    def indexed() -> bool:
        p.mullui("ls", "--json")  # no supervisor: `ls` refreshes the radar
        doc = guard.read_index(index)
        return doc is not None and doc["files"].get("src/app.py") == [ids["beta"]]

    wait_for(indexed, timeout=60, interval=0.5)
    return ids


@pytest.mark.skipif(shutil.which("gemini") is None, reason="GEMINI CLI NOT INSTALLED")
def test_gemini_block_refuses_write_file_and_the_model_reads_who(tmp_path: Path) -> None:
    from tests.support.agent_clis import Pipeline, setup_gemini
    from tests.support.gemini_stub import GeminiStub
    from tests.support.http_stub import Turn as GTurn

    p = Pipeline(tmp_path)
    write = GTurn.call("write_file", file_path="src/app.py", content=MINE)
    try:
        with GeminiStub([write, GTurn.say("I left src/app.py alone.")]) as stub:
            setup_gemini(p, stub.url)  # before the first spawn starts the tmux server
            ids = beta_changed_app(p, "block")
            r = p.mullui("spawn", "--agent", "gemini", "--no-attach", "--name", "gem", "edit it")
            assert r.returncode == 0, r.stderr
            aid = r.stdout.strip().splitlines()[-1]
            agents = {a["id"]: a for a in json.loads(p.mullui("ls", "--json").stdout)}
            wt = Path(agents[aid]["worktree"])
            assert write.args is not None
            write.args["file_path"] = str(wt / "src" / "app.py")

            def answered() -> str | None:
                for req in stub.main_requests():
                    text = json.dumps(req.body)
                    if "functionResponse" in text and "beta" in text:
                        return text
                return None

            try:
                text = wait_for(answered, timeout=120, interval=0.5)
            except AssertionError:
                screen = p.screen(agents[aid]["tmux_target"])
                bodies = [json.dumps(r.body)[-1500:] for r in stub.main_requests()]
                raise AssertionError(f"screen:\n{screen}\nrequests: {bodies}") from None
            branch = agents[ids["beta"]]["branch"]
            assert branch in text and "src/app.py" in text
            assert (wt / "src" / "app.py").read_text() == APP  # refused: untouched
            mine = next(a for a in json.loads(p.mullui("ls", "--json").stdout) if a["id"] == aid)
            (col,) = [c for c in mine["collisions"] if c["agent"] == ids["beta"]]
            assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "block")]
    finally:
        p.close()


@dataclass
class CliAgent:
    """A: a real agent CLI (Gemini CLI, OpenCode) on its stub, beside B (``beta``)."""

    p: Any  # tests.support.agent_clis.Pipeline
    stub: Any  # tests.support.gemini_stub.GeminiStub
    id: str
    wt: Path
    target: str
    beta: str
    beta_branch: str

    def record(self) -> dict[str, Any]:
        return next(
            a for a in json.loads(self.p.mullui("ls", "--json").stdout) if a["id"] == self.id
        )

    def stored(self) -> Any:
        return Store(get_paths(self.p.env)).load(self.id)

    def screen(self, history: bool = False) -> str:
        """The pane's screen (``history``: and its scrollback)."""
        more = ["-S", "-"] if history else []
        argv = ["tmux", "-L", self.p.socket, "capture-pane", "-p", *more, "-t", self.target]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout

    def fail(self, what: str) -> AssertionError:
        bodies = [json.dumps(r.body)[-800:] for r in self.stub.main_requests()]
        return AssertionError(f"{what}\nscreen:\n{self.screen()}\nrecord: {self.record()}\n"
                              f"requests: {bodies}")  # fmt: skip

    def wait(self, what: str, cond: Callable[[], Any], timeout: float = 120) -> Any:
        try:
            return wait_for(cond, timeout=timeout, interval=0.05)
        except AssertionError:
            raise self.fail(f"timed out: {what}") from None


GEMINI_AUTO_EDIT = '[profiles.gemini]\nargs = ["--approval-mode", "auto_edit"]\n'


@contextmanager
def beside_beta(
    tmp_path: Path,
    profile: str,
    mode: str,
    turns: list[Any],
    *,
    watch: bool = False,
    opencode_edit: str = "ask",
) -> Iterator[tuple[CliAgent, Watch | None]]:
    """B (shell) changed src/app.py; A (``profile``: ``gemini`` named ``gem``, or
    ``opencode`` named ``oc``) runs on the stub with ``turns``.  Gemini CLI runs in
    ``auto_edit`` approval mode (its edits need no confirmation: only the guard can make it
    ask), ``file_path`` args made absolute in A's worktree before the first request;
    OpenCode with ``permission.edit = opencode_edit`` (its ``filePath`` args stay relative:
    OpenCode resolves them against its directory).  With ``watch``, a real ``mullui watch``
    writes terminal notifications."""
    from tests.support.agent_clis import Pipeline, setup_gemini, setup_opencode
    from tests.support.chat_stub import ChatStub
    from tests.support.gemini_stub import GeminiStub

    p = Pipeline(tmp_path)
    watcher: Watch | None = None
    stub: Any = GeminiStub(turns) if profile == "gemini" else ChatStub(turns)
    name = {"gemini": "gem", "opencode": "oc"}[profile]
    try:
        with stub:
            # before the first spawn starts the tmux server
            if profile == "gemini":
                setup_gemini(p, stub.url)
                config = GEMINI_AUTO_EDIT
            else:
                setup_opencode(p, stub.url)
                inline = json.loads(p.env["OPENCODE_CONFIG_CONTENT"])
                inline["permission"] = {"bash": "ask", "edit": opencode_edit}
                p.env["OPENCODE_CONFIG_CONTENT"] = json.dumps(inline)
                config = ""
            if watch:
                p.env["MULLUI_WATCH_AUTOSTART"] = "0"  # ours, with terminal notifications
                watcher = Watch(p.repo, tmp_path / "watch.out",
                                {**p.env, "MULLUI_NOTIFY": "terminal"})  # fmt: skip
            ids = beta_changed_app(p, mode, config)
            r = p.mullui("spawn", "--agent", profile, "--no-attach", "--name", name, "edit it")
            assert r.returncode == 0, r.stderr
            aid = r.stdout.strip().splitlines()[-1]
            agents = {a["id"]: a for a in json.loads(p.mullui("ls", "--json").stdout)}
            wt = Path(agents[aid]["worktree"])
            for t in turns:
                if t.args and "file_path" in t.args:
                    t.args["file_path"] = str(wt / t.args["file_path"])
            beta = agents[ids["beta"]]
            yield CliAgent(p, stub, aid, wt, agents[aid]["tmux_target"], beta["id"],
                           beta["branch"]), watcher  # fmt: skip
    finally:
        if watcher is not None:
            watcher.stop()
        p.close()


def deny_then_allow(
    a: CliAgent, first: Any, again: Any, marker: str, start_s: float, quiet: bool = False
) -> None:
    """The guard's ``ask`` for the stub's ``first`` write of src/app.py, refused with
    ``mullui send A n``; then for ``again`` (the model's next try, after the human's "try
    again"), allowed with ``mullui send A y``.  Each time: A ``blocked`` on
    ``collision:src/app.py`` within a second of the call leaving the stub, the CLI's own
    dialog (``marker``) on screen, the cause still the guard's, nothing written before
    the answer, A in the inbox naming B.  ``quiet``: after the refusal the CLI sends no
    request until the human's next line."""
    from tests.support.agent_clis import since as agent_since

    app = a.wt / "src" / "app.py"
    for turn, reply in ((first, "n"), (again, "y")):
        rec = a.wait("blocked on the guard", lambda: (r := a.record())["state"] == "blocked"
                     and r["cause"] == "collision:src/app.py" and r, start_s)  # fmt: skip
        assert turn.sent_wall is not None
        since = agent_since(rec) - turn.sent_wall
        print(f"\n{rec['profile']} ask: blocked {since * 1000:.0f} ms after the call left the stub")
        assert since < 1.0, f"blocked {since:.2f}s after the tool call"
        assert "beta" in (a.stored().question or ""), rec
        a.wait("the CLI's own dialog", lambda: marker in a.screen(), 30)
        assert app.read_text() == APP
        time.sleep(0.5)  # the CLI's own dialog event has reached mullui: the cause stays
        assert a.record()["cause"] == "collision:src/app.py"
        inbox = json.loads(a.p.mullui("inbox", "--json").stdout)
        # (B may be there too: blocked on silence when the CLI took a minute to start)
        (mine,) = [i for i in inbox if i["id"] == a.id]
        assert "beta" in mine["why"], mine
        n = len(a.stub.main_requests())
        r = a.p.mullui("send", a.id, reply)
        assert r.returncode == 0, r.stderr
        if reply == "n":
            # mullui's own "reply:denied"; OpenCode ends its turn on a rejection, and its
            # session.idle (done: idle at its prompt) may come after that
            a.wait("the denial", lambda: (r := a.record())["cause"] == "reply:denied"
                   or r["state"] == "done", 30)  # fmt: skip
            assert marker not in a.screen()
            assert not quiet or a.record()["cause"] == "reply:denied"
            time.sleep(1.5)
            assert app.read_text() == APP, "refused, yet written"
            assert not quiet or len(a.stub.main_requests()) == n
            r = a.p.mullui("send", a.id, "try again")  # the model's next turn: `again`
            assert r.returncode == 0, r.stderr
        else:
            a.wait("the write", lambda: app.read_text() == MINE, 30)


@pytest.mark.skipif(shutil.which("gemini") is None, reason="GEMINI CLI NOT INSTALLED")
def test_gemini_ask_blocks_at_once_the_cli_confirms_and_the_human_decides(
    tmp_path: Path,
) -> None:
    """``ask``: BeforeTool answers ``decision: "ask"``; Gemini CLI (in ``auto_edit``, where
    its edits need no confirmation) opens its own confirmation anyway.  A is ``blocked``,
    cause ``collision:src/app.py``, within a second of the tool call leaving the stub.
    ``mullui send A n`` refuses it (Esc: the file stays as it was); the model tries again,
    ``mullui send A y`` allows it (``1``: the write happens)."""
    from tests.support.http_stub import Turn as GTurn

    first = GTurn.call("write_file", file_path="src/app.py", content=MINE)
    again = GTurn.call("write_file", file_path="src/app.py", content=MINE)
    turns = [first, again, GTurn.say("Written after the human said yes.")]
    with beside_beta(tmp_path, "gemini", "ask", turns) as (a, _):
        # Gemini CLI waits at its prompt after the refusal: no request until "try again"
        deny_then_allow(a, first, again, GEMINI_DIALOG.marker, start_s=120, quiet=True)
        a.wait("done", lambda: a.record()["state"] == "done", 60)
        history = [(t.state, t.cause) for t in a.stored().history]
        assert history.count((State.BLOCKED, "collision:src/app.py")) == 2, history
        mine = a.record()
        (col,) = [c for c in mine["collisions"] if c["agent"] == a.beta]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "ask")]


@pytest.mark.skipif(shutil.which("gemini") is None, reason="GEMINI CLI NOT INSTALLED")
def test_gemini_warn_writes_shows_the_message_and_tells_the_human_once(tmp_path: Path) -> None:
    """``warn``: the write goes ahead (no confirmation in ``auto_edit``), Gemini CLI draws
    the hook's ``systemMessage`` naming B, the human gets one inbox item and one
    notification; a second edit of the same file (``replace``) adds neither."""
    from tests.support.http_stub import Turn as GTurn

    write = GTurn.call("write_file", file_path="src/app.py", content=MINE)
    edit = GTurn.call("replace", file_path="src/app.py", old_string="line 39",
                      new_string="A 39", instruction="Rename line 39.")  # fmt: skip
    turns = [write, edit, GTurn.say("Kept it small.")]
    with beside_beta(tmp_path, "gemini", "warn", turns, watch=True) as (a, w):
        assert w is not None
        app = a.wt / "src" / "app.py"
        a.wait("done", lambda: a.record()["state"] == "done", 180)
        assert app.read_text() == MINE.replace("line 39", "A 39")
        told = f"collision: src/app.py is also changed by beta (branch {a.beta_branch})"
        screen = a.screen(history=True)
        assert told in " ".join(screen.split()), screen
        rec = a.record()
        (col,) = [c for c in rec["collisions"] if c["agent"] == a.beta]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "warn")]
        title = "gem edits a file beta also changed"
        wait_for(lambda: title in w.titles(), timeout=20, interval=0.2)
        time.sleep(2.5)  # more radar passes: no second notification
        titles = w.titles()
        assert titles.count(title) == 1 and set(titles) <= {title, "gem is done"}, titles
        inbox = json.loads(a.p.mullui("inbox", "--json").stdout)
        assert [i["id"] for i in inbox] == [a.id], inbox
        assert "beta" in inbox[0]["why"]


# ---- OpenCode: its plugin's tool.execute.before ----------------------------------------------


@pytest.mark.skipif(shutil.which("opencode") is None, reason="OPENCODE NOT INSTALLED")
def test_opencode_block_refuses_write_and_the_model_reads_who(tmp_path: Path) -> None:
    """B (shell) changed src/app.py; OpenCode agent A asks to write it (a relative
    ``filePath``, resolved against A's worktree) with guard=block: mullui's plugin throws
    in ``tool.execute.before`` and the stub's next request carries the refusal naming B
    and its branch; then A writes a file nobody else changed and that goes through."""
    from tests.support.agent_clis import Pipeline, setup_opencode
    from tests.support.chat_stub import ChatStub
    from tests.support.http_stub import Turn as CTurn

    p = Pipeline(tmp_path)
    turns = [
        CTurn.call("write", filePath="src/app.py", content=MINE),
        CTurn.call("write", filePath="src/new.py", content="new\n"),
        CTurn.say("I left src/app.py alone and wrote src/new.py."),
    ]
    try:
        with ChatStub(turns) as stub:
            setup_opencode(p, stub.url)
            inline = json.loads(p.env["OPENCODE_CONFIG_CONTENT"])
            inline["permission"] = {"bash": "ask", "edit": "allow"}  # the guard is what we watch
            p.env["OPENCODE_CONFIG_CONTENT"] = json.dumps(inline)
            ids = beta_changed_app(p, "block")
            r = p.mullui("spawn", "--agent", "opencode", "--no-attach", "--name", "oc", "edit it")
            assert r.returncode == 0, r.stderr
            aid = r.stdout.strip().splitlines()[-1]
            agents = {a["id"]: a for a in json.loads(p.mullui("ls", "--json").stdout)}
            wt = Path(agents[aid]["worktree"])

            def wrote_new() -> bool:
                return (wt / "src" / "new.py").exists() and len(stub.main_requests()) >= 3

            try:
                wait_for(wrote_new, timeout=180, interval=0.5)
            except AssertionError:
                screen = p.screen(agents[aid]["tmux_target"])
                bodies = [json.dumps(r.body)[-1500:] for r in stub.main_requests()]
                raise AssertionError(f"screen:\n{screen}\nrequests: {bodies}") from None
            refusal = json.dumps(stub.main_requests()[1].body)
            branch = agents[ids["beta"]]["branch"]
            assert "beta" in refusal and branch in refusal and "src/app.py" in refusal
            assert "mullui collision guard" in refusal
            assert (wt / "src" / "app.py").read_text() == APP  # refused: untouched
            assert (wt / "src" / "new.py").read_text() == "new\n"  # nobody else's: written
            after = json.dumps(stub.main_requests()[2].body)
            assert "beta" not in after.split("src/new.py", 1)[-1]  # not held, not warned
            mine = next(a for a in json.loads(p.mullui("ls", "--json").stdout) if a["id"] == aid)
            (col,) = [c for c in mine["collisions"] if c["agent"] == ids["beta"]]
            assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "block")]
    finally:
        p.close()


@pytest.mark.skipif(shutil.which("opencode") is None, reason="OPENCODE NOT INSTALLED")
def test_opencode_ask_blocks_at_once_its_edit_permission_asks_and_the_human_decides(
    tmp_path: Path,
) -> None:
    """``ask`` with OpenCode's ``permission.edit = "ask"``: the plugin lets the call go, the
    guard's event has A ``blocked`` on ``collision:src/app.py`` at once, and OpenCode's own
    permission dialog (``permission.asked``, which keeps the guard's cause) takes the
    answer: ``mullui send A n`` rejects it (the file stays as it was), then - the model
    trying again - ``mullui send A y`` allows it (the write happens)."""
    from tests.support.http_stub import Turn as CTurn

    first = CTurn.call("write", filePath="src/app.py", content=MINE)
    again = CTurn.call("write", filePath="src/app.py", content=MINE)
    turns = [
        CTurn.call("read", filePath="src/app.py"),  # OpenCode overwrites only a file it read
        first,
        again,
        CTurn.say("Written after the human said yes."),
    ]
    with beside_beta(tmp_path, "opencode", "ask", turns) as (a, _):
        deny_then_allow(a, first, again, OPENCODE_DIALOG.marker, start_s=180)
        a.wait("done", lambda: a.record()["state"] == "done", 60)
        history = [(t.state, t.cause) for t in a.stored().history]
        assert history.count((State.BLOCKED, "collision:src/app.py")) == 2, history
        (col,) = [c for c in a.record()["collisions"] if c["agent"] == a.beta]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "ask")]


@pytest.mark.skipif(shutil.which("opencode") is None, reason="OPENCODE NOT INSTALLED")
def test_opencode_ask_with_edits_allowed_holds_the_edit_until_the_human_answers(
    tmp_path: Path,
) -> None:
    """``ask`` with OpenCode's ``permission.edit = "allow"`` (its default): OpenCode opens
    no dialog, so mullui's plugin holds the call in ``tool.execute.before`` (OpenCode
    awaits it) until ``mullui send`` writes the human's decision.  Three tries of the
    model: ``n`` refuses (the file untouched, the stub's next request carries the guard's
    refusal), a text refuses and reaches the model as what the human said, ``y`` allows
    (the write happens).  Each time: A ``blocked`` on ``collision:src/app.py`` within a
    second, no dialog on the screen, nothing written while it waits; ``working`` (cause
    ``reply:held``) after each answer."""
    from tests.support.agent_clis import since as agent_since
    from tests.support.http_stub import Turn as CTurn

    tries = [CTurn.call("write", filePath="src/app.py", content=MINE) for _ in range(3)]
    turns = [CTurn.call("read", filePath="src/app.py"), *tries, CTurn.say("Written.")]
    said = "use src/app_local.py instead"
    with beside_beta(tmp_path, "opencode", "ask", turns, opencode_edit="allow") as (a, _):
        app = a.wt / "src" / "app.py"
        decisions = get_paths(a.p.env).state_dir / "answer" / "decisions"
        for turn, reply in zip(tries, ("n", said, "y"), strict=True):
            rec = a.wait("blocked on the guard", lambda: (r := a.record())["state"] == "blocked"
                         and r["cause"] == "collision:src/app.py" and r, 180)  # fmt: skip
            assert turn.sent_wall is not None
            since = agent_since(rec) - turn.sent_wall
            print(f"\nopencode ask (held): blocked {since * 1000:.0f} ms after the call")
            assert since < 1.0, f"blocked {since:.2f}s after the tool call"
            time.sleep(2.0)  # held: nothing written, no dialog, still blocked
            assert app.read_text() == APP
            assert OPENCODE_DIALOG.marker not in a.screen()
            assert a.record()["cause"] == "collision:src/app.py"
            (held,) = os.listdir(decisions)
            assert held.startswith(a.id + ".") and held.endswith(".wait"), held
            inbox = json.loads(a.p.mullui("inbox", "--json").stdout)
            (mine,) = [i for i in inbox if i["id"] == a.id]
            assert "beta" in mine["why"] and "y allows" in mine["why"], mine
            n = len(a.stub.main_requests())
            r = a.p.mullui("send", a.id, reply)
            assert r.returncode == 0, r.stderr
            if reply == "y":
                a.wait("the write", lambda: app.read_text() == MINE, 30)
                continue
            a.wait("the next request", lambda n=n: len(a.stub.main_requests()) > n, 30)
            refusal = json.dumps(a.stub.main_requests()[n].body)
            assert "The human refused this edit" in refusal and "beta" in refusal, refusal
            assert (said in refusal) == (reply == said), refusal
            assert app.read_text() == APP, "refused, yet written"
        a.wait("done", lambda: a.record()["state"] == "done", 60)
        assert not os.listdir(decisions)
        history = [(t.state, t.cause) for t in a.stored().history]
        held_at = [i for i, h in enumerate(history) if h == (State.BLOCKED, "collision:src/app.py")]
        assert len(held_at) == 3, history
        assert all(history[i + 1] == (State.WORKING, "reply:held") for i in held_at), history
        (col,) = [c for c in a.record()["collisions"] if c["agent"] == a.beta]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "ask")]


@pytest.mark.skipif(shutil.which("opencode") is None, reason="OPENCODE NOT INSTALLED")
def test_opencode_warn_lets_the_edit_go_and_tells_the_human_once(tmp_path: Path) -> None:
    """``warn`` (OpenCode's ``permission.edit = "allow"``): the plugin lets the call go,
    the write and a later ``edit`` of the same file happen, the human gets one inbox item
    and one notification for the pair and file (OpenCode has no way for a plugin to add
    context for the model: the agent is not told)."""
    from tests.support.http_stub import Turn as CTurn

    turns = [
        CTurn.call("read", filePath="src/app.py"),
        CTurn.call("write", filePath="src/app.py", content=MINE),
        CTurn.call("edit", filePath="src/app.py", oldString="line 39", newString="A 39"),
        CTurn.say("Kept it small."),
    ]
    with beside_beta(tmp_path, "opencode", "warn", turns, watch=True,
                     opencode_edit="allow") as (a, w):  # fmt: skip
        assert w is not None
        app = a.wt / "src" / "app.py"
        a.wait("done", lambda: a.record()["state"] == "done", 240)
        assert app.read_text() == MINE.replace("line 39", "A 39")
        (col,) = [c for c in a.record()["collisions"] if c["agent"] == a.beta]
        assert [(g["file"], g["action"]) for g in col["guard"]] == [("src/app.py", "warn")]
        title = "oc edits a file beta also changed"
        wait_for(lambda: title in w.titles(), timeout=20, interval=0.2)
        time.sleep(2.5)  # more radar passes: no second notification
        titles = w.titles()
        assert titles.count(title) == 1, titles
        assert not any("conflicts with" in t for t in titles), titles
        inbox = json.loads(a.p.mullui("inbox", "--json").stdout)
        (mine,) = [i for i in inbox if i["id"] == a.id]
        assert "src/app.py, also changed by beta" in mine["why"], mine
        stored = a.stored()
        assert stored.conflict is not None and stored.conflict.kind == "guard"
        assert (stored.conflict.agent, stored.conflict.files) == (a.beta, ("src/app.py",))
