"""A compromised host cannot reach past its own agents (issue 20 item 3).

Real sshd on 127.0.0.1 and a real "remote" mullui (tests/support/sshd.py and the
fixtures of test_remote_agents.py).  The host's own records are tampered with, as a
compromised host would: its agent's ``branch`` becomes ``release`` or ``*``, its
``repo`` another path, its ``tmux_target`` a shell command.  The local mirror keeps what
it had, ``mullui merge`` fetches the agent's own branch into
``refs/mullui/hosts/devbox/<id>`` and local ``release`` / ``develop`` never move.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mullui.errors import MulluiError
from mullui.paths import get_paths
from mullui.remote import dispatch
from mullui.store import Store
from mullui.workspace import Workspace
from tests.conftest import git, wait_for
from tests.integration.test_remote_agents import (  # noqa: F401 - fixtures
    Remote,
    _supervised,  # autouse: the local supervisor that follows the host starts by itself
    devbox,
    local,
    remote,
    state_is,
)
from tests.support.agents import spawn
from tests.support.sshd import sshd  # noqa: F401

pytestmark = pytest.mark.timeout(150)

CLI = Callable[..., subprocess.CompletedProcess[str]]


def heads(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    return dict(line.split() for line in out.splitlines())


def test_a_host_naming_release_or_star_leaves_local_branches_untouched(
    cli: CLI,
    git_repo: Path,
    remote: Remote,  # noqa: F811
    devbox: dict[str, Any],  # noqa: F811
) -> None:
    for b in ("release", "develop"):
        git(git_repo, "branch", b)
    # On the host, release and develop hold other (hostile) commits.
    for b in ("release", "develop"):
        git(remote.repo, "checkout", "-q", "-b", b)
        (remote.repo / "evil.txt").write_text(f"{b} from the host\n")
        git(remote.repo, "add", "evil.txt")
        git(remote.repo, "commit", "-qm", f"hostile {b}")
    git(remote.repo, "checkout", "-q", "main")

    aid = spawn(cli, git_repo, "echo hi > new.txt && git add new.txt && git commit -qm add",
                "--host", "devbox", name="feature")  # fmt: skip
    wait_for(state_is(aid, "done"), timeout=40, interval=0.05)
    own = local(aid).branch
    assert own is not None and own.startswith("mullui/") and own.endswith(aid)
    before = heads(git_repo)

    # The host turns hostile: its record of the agent names foreign refs and targets.
    host_store = Store(get_paths({"MULLUI_HOME": str(remote.home)}))
    for n, branch in enumerate(("release", "*", "refs/heads/develop")):
        host_store.emit(
            aid,
            "update",
            fields={
                "branch": branch,
                "repo": "/etc",
                "base": "--output=/tmp/x",
                "tmux_target": "%1; touch /tmp/pwned",
                "task": f"tampered {n}",
            },
        )
        wait_for(lambda n=n: local(aid).task == f"tampered {n}", timeout=30)  # type: ignore[misc]
        mirror = local(aid)
        assert mirror.branch == own, mirror.branch
        assert mirror.repo == str(remote.repo)  # the config's, never the host's word
        assert mirror.base == "main" and mirror.tmux_target != "%1; touch /tmp/pwned"

    r = cli("merge", aid, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    after = heads(git_repo)
    assert after["refs/heads/release"] == before["refs/heads/release"]
    assert after["refs/heads/develop"] == before["refs/heads/develop"]
    assert set(after) == set(before)  # no branch made or fetched into refs/heads
    assert git(git_repo, "show", "main:new.txt") == "hi\n"
    fetched = git(git_repo, "rev-parse", f"refs/mullui/hosts/devbox/{aid}").strip()
    assert git(git_repo, "merge-base", "--is-ancestor", fetched, "main") == ""

    # Had a bad branch got through, the fetch itself refuses it.
    ws = Workspace(get_paths(), cwd=git_repo)
    for bad in ("release", "*", f"mullui/../release-{aid}"):
        with pytest.raises(MulluiError, match="not an agent branch"):
            dispatch.fetch_branch(ws, dataclasses.replace(local(aid), branch=bad), git_repo)
    assert heads(git_repo) == after


def test_a_remote_log_reaches_this_terminal_filtered(
    cli: CLI,
    git_repo: Path,
    remote: Remote,  # noqa: F811
    devbox: dict[str, Any],  # noqa: F811
) -> None:
    """The host sends every byte (``--raw``); this side filters: a host is not trusted
    with the user's terminal (issue 20 item 4)."""
    aid = spawn(cli, git_repo, r"printf 'a\033]52;c;ZXZpbA==\007b\033[31mred\033[0m\n'",
                "--host", "devbox")  # fmt: skip
    wait_for(state_is(aid, "done"), timeout=40, interval=0.05)
    for args in (("logs", aid), ("logs", "-f", aid)):
        r = cli(*args, cwd=git_repo)
        assert r.returncode == 0, r.stderr
        assert "abred\n" in r.stdout and "\x1b" not in r.stdout, r.stdout
    raw = cli("logs", "--raw", aid, cwd=git_repo).stdout
    assert "\x1b]52;c;ZXZpbA==\x07" in raw and "\x1b[31m" in raw
