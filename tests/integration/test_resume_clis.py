"""``mullui resume`` with the real Claude Code and Codex CLIs against their loopback stubs.

What this proves: an agent whose tmux server was killed while it waited on a permission
dialog - or that the user stopped - comes back with ``mullui resume ID`` in the same
worktree, and the next request its CLI sends to the "API" carries the first
conversation's messages and the resume prompt: the session continued, it did not start
over.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for

CLAUDE = shutil.which("claude")
CODEX = shutil.which("codex")

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Carry on please (resume test)."


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=30,
    )


@dataclass
class Mullui:
    repo: Path
    env: dict[str, str]
    socket: str

    def __call__(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mullui", *args],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def agent(self) -> dict[str, Any]:
        res = self("ls", "--json")
        assert res.returncode == 0, res.stderr
        (a,) = json.loads(res.stdout)
        return dict(a)

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )

    def pane_cwd(self, target: str) -> str:
        return self.tmux("display-message", "-p", "-t", target, "#{pane_current_path}").stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("demo\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    return repo


@contextlib.contextmanager
def _mullui(tmp_path: Path, repo: Path, env: dict[str, str]) -> Iterator[Mullui]:
    socket = f"mullui-resume-{uuid.uuid4().hex[:8]}"
    full = dict(
        env,
        MULLUI_HOME=str(tmp_path / "mullui"),
        MULLUI_TMUX_SOCKET=socket,
        MULLUI_NOTIFY="none",
        PYTHONPATH=str(ROOT),
    )
    m = Mullui(repo, full, socket)
    try:
        yield m
    finally:
        m.tmux("kill-server")


def _texts(body: dict[str, Any] | None) -> str:
    """Every text, tool input and tool result of a request's messages, as one string."""
    return json.dumps((body or {}).get("messages") or (body or {}).get("input") or [])


# ---- Claude Code ---------------------------------------------------------------------------


@pytest.mark.skipif(CLAUDE is None, reason="CLAUDE CODE CLI NOT INSTALLED - resume NOT tested")
@pytest.mark.parametrize("interruption", ["kill-server", "stop"])
def test_claude_agent_resumes_its_conversation(
    tmp_path: Path, repo: Path, interruption: str
) -> None:
    from tests.support.anthropic_stub import AnthropicStub, StubUsage, Turn
    from tests.support.claude_env import make_claude_home

    with AnthropicStub() as stub:
        stub.add(
            Turn(
                text="Creating it.",
                tool="Bash",
                tool_input={"command": "touch created.txt", "description": "Create it"},
                usage=StubUsage(1000, 50),
            ),
            Turn.say("Continued after the resume.", usage=StubUsage(1200, 30)),
        )
        home = make_claude_home(tmp_path / "home", [repo], base_url=stub.url)
        with _mullui(tmp_path, repo, home.env) as m:
            res = m("spawn", "Create created.txt", "--agent", "claude", "--no-attach")
            assert res.returncode == 0, res.stderr
            agent_id = res.stdout.split()[-1]
            blocked = wait_for(lambda: (a := m.agent())["state"] == "blocked" and a, 90, 0.2)
            worktree = blocked["worktree"]
            first = stub.main_requests()
            assert first and "Create created.txt" in _texts(first[-1].body)
            if interruption == "kill-server":
                m.tmux("kill-server")
                failed = wait_for(lambda: (a := m.agent())["state"] == "failed" and a, 20, 0.2)
                assert failed["cause"].startswith("tmux:server-gone")
                assert failed["interrupted"] is True
            else:
                res = m("stop", agent_id)
                assert res.returncode == 0, res.stderr
                assert m.agent()["state"] == "stopped"
            n = len(stub.main_requests())

            res = m("resume", agent_id, "--prompt", PROMPT)
            assert res.returncode == 0, res.stderr
            assert f"resumed in {worktree}" in res.stdout

            # The next request carries the first conversation and then the resume prompt.
            assert stub.wait_for(lambda: len(stub.of_kind("main")) > n, 90), "no request"
            after = _texts(stub.main_requests()[n].body)
            assert "Create created.txt" in after
            # The first turn's answer; Claude Code 2.1.197 leaves out the tool call that
            # never got a result (the dialog it was interrupted at).
            assert "Creating it." in after
            assert PROMPT in after
            assert after.index("Create created.txt") < after.index("Creating it.")
            assert after.index("Creating it.") < after.index(PROMPT)

            a = wait_for(lambda: (x := m.agent())["state"] == "done" and x, 60, 0.2)
            assert a["id"] == agent_id and a["worktree"] == worktree
            assert m.pane_cwd(a["tmux_target"]).strip() == worktree
            # The history keeps both runs: the resume is a transition of its own.
            record = json.loads(
                (tmp_path / "mullui" / "state" / "agents" / f"{agent_id}.json").read_text()
            )
            causes = [(t["state"], t["cause"]) for t in record["history"]]
            assert ("starting", "resume:manual") in causes
            assert [s for s, _ in causes].count("starting") == 2
            # The ledger adds both runs up: the same transcript, both turns' usage.
            assert (a["tokens_in"], a["tokens_out"]) == (2200, 80)
            res = m("report", "--json")
            assert res.returncode == 0, res.stderr
            (row,) = json.loads(res.stdout)["agents"]
            assert (row["runs"], row["resumes"], row["tokens_in"]) == (2, 1, 2200)


@pytest.mark.skipif(CLAUDE is None, reason="CLAUDE CODE CLI NOT INSTALLED - resume NOT tested")
def test_claude_resumed_without_a_prompt_is_idle_at_its_prompt(tmp_path: Path, repo: Path) -> None:
    from tests.support.anthropic_stub import AnthropicStub, Turn
    from tests.support.claude_env import make_claude_home

    with AnthropicStub() as stub:
        stub.add(Turn.bash("touch created.txt"), Turn.say("Continued."))
        home = make_claude_home(tmp_path / "home", [repo], base_url=stub.url)
        with _mullui(tmp_path, repo, home.env) as m:
            res = m("spawn", "Create created.txt", "--agent", "claude", "--no-attach")
            assert res.returncode == 0, res.stderr
            agent_id = res.stdout.split()[-1]
            wait_for(lambda: m.agent()["state"] == "blocked", 90, 0.2)
            assert m("stop", agent_id).returncode == 0
            n = len(stub.main_requests())
            res = m("resume", agent_id, "--prompt", "")
            assert res.returncode == 0, res.stderr
            # Nothing to do until the human says: done (idle at its prompt), not working.
            a = m.agent()
            assert a["state"] == "done", a
            assert a["cause"].startswith("resumed: idle at its prompt (no prompt given")
            time.sleep(3)  # nothing is asked of the model meanwhile
            assert len(stub.main_requests()) == n
            # The human's next line continues the first conversation.
            wait_for(
                lambda: "❯" in m.tmux("capture-pane", "-p", "-t", a["tmux_target"]).stdout, 60, 0.2
            )
            time.sleep(1)
            assert m("send", agent_id, PROMPT).returncode == 0
            assert stub.wait_for(lambda: len(stub.of_kind("main")) > n, 90), "no request"
            after = _texts(stub.main_requests()[n].body)
            assert "Create created.txt" in after and PROMPT in after


# ---- Codex ---------------------------------------------------------------------------------


@pytest.mark.skipif(CODEX is None, reason="CODEX CLI NOT INSTALLED - resume NOT tested")
@pytest.mark.parametrize("interruption", ["kill-server", "stop"])
def test_codex_agent_resumes_its_thread(tmp_path: Path, repo: Path, interruption: str) -> None:
    from tests.support.openai_stub import OpenAIStub, Turn

    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(f'[projects."{repo}"]\ntrust_level = "trusted"\n')
    turns = [
        Turn.call(
            "exec_command",
            cmd="touch hello.txt",
            sandbox_permissions="require_escalated",
            justification="create the file you asked for",
        ),
        Turn.say("Continued after the resume."),
    ]
    with OpenAIStub(turns) as stub:
        provider = f'{{name="stub", base_url="{stub.url}", wire_api="responses"}}'
        config = tmp_path / "mullui" / "config.toml"  # MULLUI_HOME's config
        config.parent.mkdir()
        args = ["-c", 'model_provider="stub"', "-c", f"model_providers.stub={provider}"]
        config.write_text('[profiles.codex]\nmodel = "gpt-5"\nargs = ' + json.dumps(args) + "\n")
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        env.update(HOME=str(home), CODEX_HOME=str(codex_home))
        with _mullui(tmp_path, repo, env) as m:
            res = m("spawn", "create hello.txt", "--agent", "codex", "--no-attach")
            assert res.returncode == 0, res.stderr
            agent_id = res.stdout.split()[-1]
            blocked = wait_for(lambda: (a := m.agent())["state"] == "blocked" and a, 90, 0.2)
            worktree = blocked["worktree"]
            if interruption == "kill-server":
                m.tmux("kill-server")
                wait_for(lambda: m.agent()["state"] == "failed", 20, 0.2)
            else:
                assert m("stop", agent_id).returncode == 0
            n = len(stub.model_requests())
            res = m("resume", agent_id, "--prompt", PROMPT)
            assert res.returncode == 0, res.stderr
            assert f"resumed in {worktree}" in res.stdout
            assert stub.wait_model_requests(n + 1, 90), "no request after the resume"
            after = _texts(stub.model_requests()[n].body)
            assert "create hello.txt" in after
            assert "touch hello.txt" in after
            assert PROMPT in after
            a = wait_for(lambda: (x := m.agent())["state"] == "done" and x, 60, 0.2)
            assert a["worktree"] == worktree
            # The resumed thread writes on in the same rollout: usage counts every
            # response of both runs (the stub's 120 prompt / 15 output tokens each) -
            # but a response whose token count Codex 0.171.0 had not yet written when
            # its tmux server was killed is not in the rollout to count.
            n = len(stub.model_requests())
            if interruption == "stop":
                assert (a["tokens_in"], a["tokens_out"]) == (120 * n, 15 * n)
            else:
                assert 120 * (n - 1) <= a["tokens_in"] <= 120 * n


# ---- Gemini CLI and OpenCode ---------------------------------------------------------------


def _resumed_after_stop(pipe: Any, stub: Any, agent: str, prompt_drawn: str) -> str:
    """Spawn ``agent`` on "create hello.txt", stop it at its permission prompt, resume it
    with PROMPT; the next main request's text (which must carry the first conversation)."""
    pipe.spawn("create hello.txt", agent)
    pipe.drawn(prompt_drawn, 180)
    blocked = pipe.state("blocked", 60)
    res = pipe.mullui("stop", pipe.agent_id)
    assert res.returncode == 0, res.stderr
    n = len(stub.main_requests())
    res = pipe.mullui("resume", pipe.agent_id, "--prompt", PROMPT)
    assert res.returncode == 0, res.stderr
    assert f"resumed in {blocked['worktree']}" in res.stdout
    if agent == "opencode":
        # 1.18.33 reopens the session but sends no --prompt: idle at its prompt (done)
        # until the human gives it one; its screen shows the first conversation.
        done = pipe.state("done", 60)
        assert done["cause"].startswith("resumed: idle at its prompt")
        pipe.drawn("create hello.txt", 120)
        pipe.drawn("Build", 60)
        time.sleep(2)  # the input box takes keys a moment after it is drawn
        pipe.send(PROMPT)
    if not stub.wait_for(lambda: len(stub.of_kind("main")) > n, 180):
        a = pipe.agent()
        raise AssertionError(f"no request after the resume: {a}\n{pipe.screen()}")
    return json.dumps(stub.main_requests()[n].body)


@pytest.mark.skipif(shutil.which("gemini") is None, reason="GEMINI CLI NOT INSTALLED")
def test_gemini_agent_resumes_its_session(tmp_path: Path) -> None:
    from tests.support.agent_clis import Pipeline, setup_gemini
    from tests.support.gemini_stub import GeminiStub
    from tests.support.http_stub import Turn

    pipe = Pipeline(tmp_path)
    turns = [
        Turn.call("run_shell_command", command="touch hello.txt", description="Create it"),
        Turn.say("Continued after the resume."),
    ]
    try:
        with GeminiStub(turns) as stub:
            setup_gemini(pipe, stub.url)
            after = _resumed_after_stop(pipe, stub, "gemini", "Allow execution")
            assert "create hello.txt" in after and PROMPT in after
            assert after.index("create hello.txt") < after.index(PROMPT)
    finally:
        pipe.close()


@pytest.mark.skipif(shutil.which("opencode") is None, reason="OPENCODE NOT INSTALLED")
def test_opencode_agent_resumes_its_session(tmp_path: Path) -> None:
    from tests.support.agent_clis import Pipeline, setup_opencode
    from tests.support.chat_stub import ChatStub
    from tests.support.http_stub import Turn

    pipe = Pipeline(tmp_path)
    turns = [
        Turn.call("bash", command="touch hello.txt", description="Create hello.txt"),
        Turn.say("Continued after the resume."),
    ]
    try:
        with ChatStub(turns) as stub:
            setup_opencode(pipe, stub.url)
            after = _resumed_after_stop(pipe, stub, "opencode", "Permission required")
            assert "create hello.txt" in after and PROMPT in after
            assert after.index("create hello.txt") < after.index(PROMPT)
    finally:
        pipe.close()


# ---- Aider ---------------------------------------------------------------------------------

AIDER_REPLY = "I will create it.\n\n```bash\ntouch hello.txt\n```\n"


@contextlib.contextmanager
def aider_at_its_question(tmp_path: Path) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """An aider agent on "create hello.txt", blocked at its "Run shell command?" (the
    stub's first answer suggests ``touch hello.txt``; the next says it continued):
    (pipeline, stub, the blocked agent)."""
    from tests.support.agent_clis import Pipeline, setup_aider
    from tests.support.chat_stub import ChatStub
    from tests.support.http_stub import Turn

    pipe = Pipeline(tmp_path)
    turns = [Turn.say(AIDER_REPLY), Turn.say("Continued after the resume.")]
    try:
        with ChatStub(turns, is_main=lambda b: True) as stub:
            setup_aider(pipe, stub.url)
            pipe.spawn("create hello.txt", "aider")
            pipe.drawn("(Y)es/(N)o", 180)
            yield pipe, stub, pipe.state("blocked", 60)
    finally:
        pipe.close()


@pytest.mark.skipif(shutil.which("aider") is None, reason="AIDER NOT INSTALLED - resume NOT tested")
@pytest.mark.parametrize("interruption", ["stop", "kill-server"])
def test_aider_agent_resumes_its_chat_history(tmp_path: Path, interruption: str) -> None:
    """Aider has no session ids: ``resume_command`` reruns it in the same worktree with
    ``--restore-chat-history`` on the agent's own chat history file (in mullui's profile
    dir) and the prompt as ``--message``.  Stopped (or its tmux server killed) at its
    "Run shell command?" question, the resumed aider's first request carries the first
    conversation - the task, the model's answer - and then the resume prompt."""
    with aider_at_its_question(tmp_path) as (pipe, stub, blocked):
        worktree = blocked["worktree"]
        (history,) = tmp_path.glob("mullui/**/aider.chat.history.md")
        assert "I will create it." in history.read_text()
        if interruption == "kill-server":
            subprocess.run(["tmux", "-L", pipe.socket, "kill-server"], timeout=10)
            failed = pipe.state("failed", 30)
            assert failed["cause"].startswith("tmux:server-gone"), failed
            assert failed["interrupted"] is True
        else:
            res = pipe.mullui("stop", pipe.agent_id)
            assert res.returncode == 0, res.stderr
            assert pipe.agent()["state"] == "stopped"
        n = len(stub.main_requests())
        res = pipe.mullui("resume", pipe.agent_id, "--prompt", PROMPT)
        assert res.returncode == 0, res.stderr
        assert f"resumed in {worktree}" in res.stdout
        if not stub.wait_for(lambda: len(stub.main_requests()) > n, 120):
            raise AssertionError(f"no request after the resume: {pipe.agent()}\n"
                                 f"{pipe.screen()}")  # fmt: skip
        after = _texts(stub.main_requests()[n].body)
        assert "create hello.txt" in after and "I will create it." in after, after
        assert PROMPT in after
        assert after.index("create hello.txt") < after.index("I will create it.")
        assert after.index("I will create it.") < after.index(PROMPT)
        # --message: aider exits after its reply; the same agent, worktree and branch
        done = pipe.exited(120)
        assert (done["state"], done["exit_code"]) == ("done", 0), done
        assert done["id"] == pipe.agent_id and done["worktree"] == worktree
        assert done["branch"] == blocked["branch"]
        assert not (Path(worktree) / "hello.txt").exists()  # never allowed
        # the history stayed in mullui's profile dir (aider's repo-map cache,
        # .aider.tags.cache.v4, is written into the worktree by aider itself)
        assert not list(Path(worktree).glob(".aider.*history*"))


@pytest.mark.skipif(shutil.which("aider") is None, reason="AIDER NOT INSTALLED - resume NOT tested")
def test_aider_resumed_without_a_prompt_waits_in_its_chat_then_continues(tmp_path: Path) -> None:
    """Resumed with no prompt, aider (``--restore-chat-history``, no ``--message``) stays in
    its chat: ``done``, idle at its prompt ("Restored previous conversation history.",
    the chat itself not drawn); the human's next line goes out with the first
    conversation, and the reply's chat prompt (read from the pane) is ``done`` again, the
    process still running."""
    with aider_at_its_question(tmp_path) as (pipe, stub, _):
        assert pipe.mullui("stop", pipe.agent_id).returncode == 0
        n = len(stub.main_requests())
        res = pipe.mullui("resume", pipe.agent_id, "--prompt", "")
        assert res.returncode == 0, res.stderr
        a = pipe.agent()
        assert a["state"] == "done", a
        assert a["cause"].startswith("resumed: idle at its prompt (no prompt given")
        target = a["tmux_target"]
        try:
            wait_for(lambda: pipe.screen(target).rstrip().endswith(">"), 120, 0.2)
        except AssertionError:
            raise AssertionError(pipe.screen(target)) from None
        # aider 0.86.2 says so; it does not draw the restored chat
        assert "Restored previous conversation history." in pipe.screen(target)
        time.sleep(2)
        assert len(stub.main_requests()) == n  # nothing asked of the model meanwhile
        pipe.send(PROMPT)
        assert stub.wait_for(lambda: len(stub.main_requests()) > n, 120), pipe.screen()
        after = _texts(stub.main_requests()[n].body)
        assert after.index("create hello.txt") < after.index("I will create it.")
        assert after.index("I will create it.") < after.index(PROMPT)
        pipe.drawn("Continued after the resume.", 60)
        done = pipe.state("done", 60)
        assert done["cause"] == "screen:aider-idle" and done["exit_code"] is None, done
