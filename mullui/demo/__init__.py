"""``mullui demo``: a throw-away repository with scripted demo agents - the whole loop
(work, a question, done, a failure) within a minute, offline, with no API key.

The demo runs in its own ``MULLUI_HOME`` and tmux socket (unless those are set), so it
never mixes with your real agents.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mullui.errors import MulluiError
from mullui.loop import SupervisorLock
from mullui.paths import get_paths

AGENTS = [
    ("refactor-parser", "refactor", "Extract tokenize() from the parser"),
    ("export-endpoint", "question", "Add an /export endpoint"),
    ("clean-build", "permission", "Make the build reproducible"),
    ("sync-tests", "flaky", "Fix the flaky sync tests"),
    ("index-modules", "long", "Index every module for search"),
]

DEMO_CONFIG = """\
# mullui demo sandbox config (throw-away)
default_agent = "demo"

[limits]
max_running = 8
"""


def make_repo(root: Path) -> Path:
    repo = root / "sandbox-repo"
    repo.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "mullui-demo",
        "GIT_AUTHOR_EMAIL": "demo@mullui.invalid",
        "GIT_COMMITTER_NAME": "mullui-demo",
        "GIT_COMMITTER_EMAIL": "demo@mullui.invalid",
    }

    def git(*args: str) -> None:
        r = subprocess.run(
            ["git", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if r.returncode != 0:
            raise MulluiError(f"demo: git {' '.join(args)} failed: {r.stderr.strip()}")

    git("init", "-q", "-b", "main")
    (repo / "README.md").write_text("# sandbox\n\nA throw-away repository for `mullui demo`.\n")
    (repo / "src").mkdir(exist_ok=True)
    (repo / "src" / "parser.py").write_text("def parse(text):\n    return text.split()\n")
    git("add", "-A")
    git("commit", "-qm", "Initial sandbox")
    return repo


class Sandbox:
    """What one run of the demo made for itself: its home, its tmux socket.  Only what
    the demo made is removed; a ``MULLUI_HOME`` or socket the user set is left alone."""

    def __init__(self) -> None:
        self.own_home = not os.environ.get("MULLUI_HOME")
        self.own_socket = not os.environ.get("MULLUI_TMUX_SOCKET")
        if self.own_home:
            os.environ["MULLUI_HOME"] = tempfile.mkdtemp(prefix="mullui-demo-")
        if self.own_socket:
            os.environ["MULLUI_TMUX_SOCKET"] = f"mullui-demo-{os.getpid()}"
        self.home = Path(os.environ["MULLUI_HOME"])
        self.socket = os.environ["MULLUI_TMUX_SOCKET"]
        self.cleaned = False

    def come_back(self) -> str:
        return f"MULLUI_HOME={self.home} MULLUI_TMUX_SOCKET={self.socket} mullui"

    def clean(self) -> None:
        """Stop the demo's agents, its supervisor and its tmux server; remove the sandbox.
        Idempotent (a signal may arrive while the normal exit cleans)."""
        if self.cleaned:
            return
        self.cleaned = True
        paths = get_paths()
        if self.own_socket:
            # The agents and the hidden `mullui watch` live in windows of this server:
            # killing it hangs them all up.
            subprocess.run(
                ["tmux", "-L", self.socket, "kill-server"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        # A supervisor still holding the lock (one started outside tmux) is told to end;
        # the sandbox goes only once it let go, so nothing writes into a removed tree.
        lock = SupervisorLock(paths.supervisor_lock)
        deadline = time.monotonic() + 5.0
        while not lock.is_free() and time.monotonic() < deadline:
            pid = lock.holder()
            if pid == os.getpid():
                break  # the TUI's own supervisor: it ends with us
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            time.sleep(0.05)
        if self.own_home:
            shutil.rmtree(self.home, ignore_errors=True)


def setup(root: Path | None = None) -> tuple[Path, list[str]]:
    """Create the sandbox and start the demo agents; returns (repo, agent ids)."""
    if not os.environ.get("MULLUI_HOME"):
        home = Path(tempfile.mkdtemp(prefix="mullui-demo-"))
        os.environ["MULLUI_HOME"] = str(home)
    if not os.environ.get("MULLUI_TMUX_SOCKET"):
        os.environ["MULLUI_TMUX_SOCKET"] = f"mullui-demo-{os.getpid()}"
    home = Path(os.environ["MULLUI_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "config.toml"
    if not cfg.exists():
        cfg.write_text(DEMO_CONFIG)
    repo = make_repo(root or home / "demo")
    from mullui.workspace import Workspace

    ws = Workspace(cwd=repo)
    ids = []
    for name, script, task in AGENTS:
        a = ws.spawn(task, agent="demo", name=name, extra={"script": script})
        ids.append(a.id)
    return repo, ids


def run_demo(*, tui: bool = True, keep: bool = False) -> int:
    """``mullui demo``: quitting (q, ctrl+c, a closed terminal: SIGHUP, SIGTERM) stops its
    agents, its tmux server and its supervisor and removes the sandbox, unless ``keep``
    (or ``--no-tui``, which only sets it up)."""
    sandbox = Sandbox()
    keep = keep or not tui
    if not keep:

        def on_signal(signum: int, _frame: object) -> None:
            if sandbox.cleaned:
                return  # a second signal while cleaning: let the first finish
            sandbox.clean()
            os._exit(128 + signum)

        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, on_signal)
    try:
        repo, ids = setup()
        print(f"mullui demo: {len(ids)} scripted agents in {repo}", file=sys.stderr)
        print(f"  {sandbox.come_back()}", file=sys.stderr)
        if not tui:
            for i in ids:
                print(i)
            return 0
        os.chdir(repo)
        from mullui.tui.app import run as run_tui

        return run_tui(keep_watch=keep)
    finally:
        if keep:
            print(
                f"mullui demo: the sandbox stays in {sandbox.home}; come back with: "
                f"{sandbox.come_back()}",
                file=sys.stderr,
            )
        else:
            os.chdir(tempfile.gettempdir())
            sandbox.clean()
            print("mullui demo: its agents, tmux server and sandbox are gone", file=sys.stderr)
