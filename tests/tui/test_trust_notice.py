"""The TUI says, once, what an untrusted repository config could not set (issue 20)."""

from __future__ import annotations

from pathlib import Path

from mullui.paths import Paths
from tests.support.gitrepo import make_repo
from tests.tui.conftest import make_app, until


async def test_an_untrusted_repo_config_is_named_in_a_warning_with_the_fix(
    paths: Paths, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "x\n"})
    (repo / ".mullui.toml").write_text(
        '[profiles.claude]\nargs = ["--x"]\n[hosts.h]\nssh = "a"\nrepo = "/"\n'
    )
    app = make_app(paths, cwd=repo)
    async with app.run_test() as pilot:
        shown = await until(pilot, lambda: [n for n in app._notifications if "trust" in n.message])
        n = shown[0]
        assert n.severity == "warning" and not n.markup
        assert "ignored profiles.claude.args, hosts.h" in n.message
        assert f"mullui trust {repo / '.mullui.toml'}" in n.message
