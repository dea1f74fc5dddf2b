"""``mullui demo``: a throw-away repository with scripted demo agents - the whole loop
(work, a question, done, a failure) within a minute, offline, with no API key.

The demo runs in its own ``MULLUI_HOME`` and tmux socket (unless those are set), so it
never mixes with your real agents.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mullui.errors import MulluiError

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


def run_demo(*, tui: bool = True) -> int:
    repo, ids = setup()
    print(f"mullui demo: {len(ids)} scripted agents in {repo}", file=sys.stderr)
    print(
        f"  MULLUI_HOME={os.environ['MULLUI_HOME']}"
        f" MULLUI_TMUX_SOCKET={os.environ['MULLUI_TMUX_SOCKET']}",
        file=sys.stderr,
    )
    if not tui:
        for i in ids:
            print(i)
        return 0
    os.chdir(repo)
    from mullui.tui.app import run as run_tui

    return run_tui()
