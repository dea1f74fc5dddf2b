"""Real repositories, real habits (issue 19): what a user does in their own terminal and
repository does not break or mislead mullui.  Real git (linked worktrees, submodules,
detached and symbolic refs), real tmux, real processes, the real CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from mullui.paths import get_paths

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
