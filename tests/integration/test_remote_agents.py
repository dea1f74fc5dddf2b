"""Agents on a remote host, end to end, against a real sshd on 127.0.0.1.

The "remote" is this machine with its own ``MULLUI_HOME``, tmux socket and repository
(a clone of the local one), reached only through ssh: ``[hosts.devbox]`` carries the
test sshd's address and keys as ``ssh_options`` and the remote side's environment as
``env``; the remote ``mullui`` is this checkout (``python -m mullui``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from mullui.model import Agent, State, Transition, utcnow
from mullui.paths import get_paths
from mullui.remote import dispatch
from mullui.remote.mirror import back_from_unknown, mirrored, returned
from mullui.store import Store
from mullui.supervisor import SupervisorLock
from mullui.workspace import Workspace
from tests.conftest import ROOT, git, stop_supervisor, wait_for
from tests.support.agents import agent_row as ls_one
from tests.support.agents import spawn
from tests.support.sshd import HOST_ALIAS, Sshd, sshd  # noqa: F401

pytestmark = pytest.mark.timeout(120)

CLI = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Remote:
    """The test's remote side: where its mullui keeps state, its tmux socket, its repo."""

    home: Path
    socket: str
    repo: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run mullui as the remote side would (no ssh): to look at the host's own view."""
        return subprocess.run(
            [sys.executable, "-m", "mullui", *args],
            cwd=self.repo,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def agent(self, aid: str) -> dict[str, Any]:
        r = self.cli("ls", "--json")
        assert r.returncode == 0, r.stderr
        return next(a for a in json.loads(r.stdout) if a["id"] == aid)


def ssh_options(server: Sshd, directory: Path, identity: Path | None = None) -> list[str]:
    """What tests/support/sshd.py's client config says, as ``-o`` options."""
    directory.mkdir(parents=True, exist_ok=True)
    kh = directory / "known_hosts"
    kh.write_text(server.known_hosts_line())
    return [
        "HostName=127.0.0.1",
        f"Port={server.port}",
        f"User={server.user}",
        f"IdentityFile={identity or server.user_key}",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        f"UserKnownHostsFile={kh}",
        "GlobalKnownHostsFile=/dev/null",
        "StrictHostKeyChecking=yes",
        "UpdateHostKeys=no",
    ]


def write_config(home: Path, hosts: dict[str, dict[str, Any]]) -> None:
    (home / "config.toml").write_text(tomli_w.dumps({"hosts": hosts}))


@pytest.fixture
def remote(tmp_path: Path, git_repo: Path) -> Iterator[Remote]:
    home = tmp_path / "remote-home"
    home.mkdir()
    repo = tmp_path / "remote-repo"
    git(tmp_path, "clone", "-q", str(git_repo), str(repo))
    sock = f"mullui-remote-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "MULLUI_HOME": str(home),
        "MULLUI_TMUX_SOCKET": sock,
        "MULLUI_NOTIFY": "none",
        **{k: os.environ[k] for k in os.environ if k.startswith("GIT_") and "NAME" in k},
        **{k: os.environ[k] for k in os.environ if k.startswith("GIT_") and "EMAIL" in k},
    }
    yield Remote(home, sock, repo, env)
    stop_supervisor(home / "state")  # the host's own watch, started by its spawns
    subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def _supervised(autostart: Path) -> None:
    """The local supervisor that follows the host starts by itself, as for a user."""


@pytest.fixture
def devbox(
    mullui_home: Path,
    remote: Remote,
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    """``[hosts.devbox]`` in the local config; the shared connection closed afterwards."""
    key = tmp_path / "ssh" / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_bytes(sshd.user_key.read_bytes())
    key.chmod(0o600)
    host = {
        "ssh": HOST_ALIAS,
        "repo": str(remote.repo),
        "env": remote.env,
        "ssh_options": ssh_options(sshd, tmp_path / "ssh", key),
        "mullui": [sys.executable, "-m", "mullui"],
    }
    write_config(mullui_home, {"devbox": host})
    host["key"] = key
    yield host
    ws = Workspace(get_paths(), cwd=remote.repo)
    # The local `mullui watch` is stopped by mullui_home's teardown; the master would
    # outlive the test by ControlPersist.
    dispatch.transport(ws, "devbox")[1].close()


def local(aid: str) -> Agent:
    a = Store(get_paths()).get(aid)
    assert a is not None
    return a


def state_is(aid: str, *states: str) -> Callable[[], bool]:
    return lambda: local(aid).state.value in states


# ---- a shell agent on the host ----------------------------------------------------------------
def test_remote_agents_run_there_and_report_done_and_failed_here(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any]
) -> None:
    # Each waits on a FIFO until the test has seen it working (no race with a sleep).
    wait = "mkfifo go && read -r x < go; "
    ok = spawn(cli, git_repo, wait + "echo out-of-$((40+2))", "--host", "devbox", name="ok")
    bad = spawn(cli, git_repo, wait + "exit 3", "--host", "devbox", name="bad")
    for aid in (ok, bad):
        wait_for(state_is(aid, "working"), timeout=30, interval=0.05)
    seen = ls_one(cli, git_repo, ok)
    assert seen["host"] == "devbox" and seen["state"] == "working", seen
    # It runs there: the worktree and window belong to the remote side.
    assert Path(seen["worktree"]).is_relative_to(remote.home)
    assert remote.agent(ok)["host"] is None  # local to the host itself
    for aid in (ok, bad):
        fifo = Path(ls_one(cli, git_repo, aid)["worktree"]) / "go"
        wait_for(fifo.exists, timeout=10)
        with fifo.open("w") as f:  # opens once the agent reads
            f.write("go\n")

    wait_for(state_is(bad, "failed"), timeout=30, interval=0.05)
    wait_for(state_is(ok, "done"), timeout=30, interval=0.05)
    b = ls_one(cli, git_repo, bad)
    assert (b["state"], b["exit_code"], b["cause"], b["host"]) == ("failed", 3, "exit:3", "devbox")
    o = ls_one(cli, git_repo, ok)
    assert (o["state"], o["exit_code"], o["host"]) == ("done", 0, "devbox")
    assert o["branch"] == remote.agent(ok)["branch"]

    inbox = json.loads(cli("inbox", "--json", cwd=git_repo).stdout)
    assert {a["id"] for a in inbox} == {ok, bad}

    logs = cli("logs", ok, cwd=git_repo)
    assert logs.returncode == 0, logs.stderr
    assert "out-of-42" in logs.stdout


def test_send_and_logs_follow_cross_ssh_byte_for_byte(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any], tmp_path: Path
) -> None:
    aid = spawn(
        cli,
        git_repo,
        'IFS= read -r line; printf %s "$line" > got.txt; echo "got it"',
        "--host",
        "devbox",
    )
    wait_for(state_is(aid, "working"), timeout=30, interval=0.05)
    marker = tmp_path / "PWNED"
    text = f'-rf it\'s "quoted" $(touch {marker}) `touch {marker}` ; | & > ü ☃ $HOME'
    time.sleep(0.3)  # the shell must be reading before the keys arrive
    r = cli("send", aid, text, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    follow = cli("logs", "-f", aid, cwd=git_repo, timeout=30)  # returns once the agent ends
    assert follow.returncode == 0, follow.stderr
    assert "got it" in follow.stdout
    wait_for(state_is(aid, "done"), timeout=30, interval=0.05)
    worktree = Path(ls_one(cli, git_repo, aid)["worktree"])
    assert (worktree / "got.txt").read_text() == text
    assert not marker.exists()


def test_a_hostile_task_reaches_the_remote_agent_byte_for_byte(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any], tmp_path: Path
) -> None:
    (remote.home / "config.toml").write_text(
        '[profiles.echoer]\ncommand = ["python3", "-c", '
        "\"import sys; open('task.txt', 'w', encoding='utf-8').write(sys.argv[1])\", \"{task}\"]\n"
    )
    marker = tmp_path / "X"
    hostile = (
        f"--help $(touch {marker}) `touch {marker}` 'q' \"dq\" ; | & > ü ☃ \\n $HOME\n"
        "second line\t" + "z" * 5000
    )
    r = cli("spawn", "--host", "devbox", "--agent", "echoer", "--", hostile, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    aid = r.stdout.strip()
    wait_for(state_is(aid, "done"), timeout=30, interval=0.05)
    a = ls_one(cli, git_repo, aid)
    assert a["task"] == hostile
    assert (Path(a["worktree"]) / "task.txt").read_text(encoding="utf-8") == hostile
    assert not marker.exists()


def test_stop_rm_and_merge_across_ssh(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any]
) -> None:
    busy = spawn(cli, git_repo, "sleep 60", "--host", "devbox")
    wait_for(state_is(busy, "working"), timeout=30, interval=0.05)
    r = cli("stop", busy, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert ls_one(cli, git_repo, busy)["state"] == "stopped"
    wait_for(lambda: remote.agent(busy)["state"] == "stopped", timeout=10)

    work = spawn(
        cli,
        git_repo,
        "echo hi > new.txt && git add new.txt && git commit -qm add && echo left > wip.txt",
        "--host",
        "devbox",
        name="feature",
    )
    wait_for(state_is(work, "done"), timeout=30, interval=0.05)
    # Uncommitted work on the host: merge and rm refuse, naming it; nothing is lost.
    r = cli("merge", work, cwd=git_repo)
    assert r.returncode == 1 and "wip.txt" in r.stderr, r.stderr
    r = cli("rm", work, cwd=git_repo)
    assert r.returncode == 1 and "wip.txt" in r.stderr, r.stderr
    r = cli("rm", "--force", work, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "saved uncommitted work" in r.stdout
    # The branch is fetched into this repository and merged here.
    r = cli("merge", work, cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert git(git_repo, "show", "main:new.txt") == "hi\n"
    assert git(git_repo, "show", "main:wip.txt") == "left\n"
    merged = local(work)
    assert merged.merged_into == "main" and merged.removed
    assert work not in {a["id"] for a in json.loads(cli("inbox", "--json", cwd=git_repo).stdout)}


def test_resume_runs_on_the_host(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any]
) -> None:
    busy = spawn(cli, git_repo, "echo ran >> ran.txt; sleep 60", "--host", "devbox")
    wait_for(state_is(busy, "working"), timeout=30, interval=0.05)
    assert cli("stop", busy, cwd=git_repo).returncode == 0
    wait_for(lambda: remote.agent(busy)["state"] == "stopped", timeout=10)
    r = cli("resume", busy, "--prompt", "go on", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    assert "resumed on devbox" in r.stdout
    wait_for(lambda: remote.agent(busy)["state"] == "working", timeout=30)
    wait_for(state_is(busy, "working"), timeout=30, interval=0.05)  # the mirror follows
    there = remote.agent(busy)
    assert (Path(there["worktree"]) / "ran.txt").read_text() == "ran\nran\n"  # same worktree
    host_record = Store(get_paths({"MULLUI_HOME": str(remote.home)})).load(busy)
    assert ("starting", "resume:manual") in [(t.state.value, t.cause) for t in host_record.history]
    r = cli("resume", busy, cwd=git_repo)  # refused here: the mirror says it runs
    assert r.returncode == 1 and "only a stopped or failed agent resumes" in r.stderr, r.stderr
    # The host's own refusal comes back as its one line, and nothing changed here.
    assert cli("stop", busy, cwd=git_repo).returncode == 0
    wait_for(lambda: remote.agent(busy)["state"] == "stopped", timeout=10)
    subprocess.run(["rm", "-rf", there["worktree"]], check=True)
    seq = local(busy).seq
    r = cli("resume", busy, cwd=git_repo)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("mullui: on devbox: ") and "--recreate" in r.stderr, r.stderr
    assert local(busy).seq == seq and local(busy).state is State.STOPPED


# ---- faults ----------------------------------------------------------------------------------
def test_a_dropped_connection_marks_agents_unknown_then_replays_once(
    cli: CLI,
    git_repo: Path,
    remote: Remote,
    devbox: dict[str, Any],
    mullui_home: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "watch.out"
    env = {
        **os.environ,
        "MULLUI_NOTIFY": "terminal",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    with out.open("wb") as sink:
        watch = subprocess.Popen(
            [sys.executable, "-m", "mullui", "watch"],
            cwd=git_repo,
            env=env,
            stdout=sink,
            stderr=subprocess.PIPE,
        )
    try:
        lock = SupervisorLock(get_paths().supervisor_lock)
        wait_for(lambda: not lock.is_free(), timeout=10, interval=0.05)
        aid = spawn(
            cli,
            git_repo,
            "while [ ! -e go ]; do sleep 0.05; done; exit 0",
            "--host",
            "devbox",
            name="waiter",
        )
        wait_for(state_is(aid, "working"), timeout=30, interval=0.05)
        worktree = Path(local(aid).worktree or "")

        # The network goes away: the master dies and no new connection is accepted.
        key: Path = devbox["key"]
        hidden = key.with_name("hidden")
        key.rename(hidden)
        ws = Workspace(get_paths(), cwd=git_repo)
        host = dispatch.transport(ws, "devbox")[1]
        pid = host.master_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

        wait_for(state_is(aid, "unknown"), timeout=20, interval=0.05)
        a = ls_one(cli, git_repo, aid)
        assert a["state"] == "unknown" and "devbox unreachable since" in a["cause"], a
        assert "was working" in a["cause"]

        # Meanwhile the agent finishes on the host.
        (worktree / "go").touch()
        wait_for(lambda: remote.agent(aid)["state"] == "done", timeout=20, interval=0.1)
        time.sleep(0.3)
        assert local(aid).state is State.UNKNOWN  # still away: never failed, never guessed

        key.with_name("hidden").rename(key)  # the network is back
        wait_for(state_is(aid, "done"), timeout=30, interval=0.05)
        time.sleep(1.5)  # room for a duplicate to show up
    finally:
        watch.send_signal(signal.SIGTERM)
        try:
            _out, err = watch.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            watch.kill()
            _out, err = watch.communicate()
    states = [t.state for t in local(aid).history]
    assert State.FAILED not in states
    i = states.index(State.UNKNOWN)
    assert states[i - 1] is State.WORKING and states[i + 1] is State.DONE, states
    assert states.count(State.DONE) == 1
    text = out.read_text(errors="replace")
    assert text.count("\x1b]777;notify;") == 1, (text, err)
    assert "waiter" in text and "done" in text.lower()
    assert b"unreachable" in err
    # The cost ledger sees the remote agent's time, the outage included.
    r = cli("report", "--json", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    row = next(x for x in json.loads(r.stdout)["agents"] if x["id"] == aid)
    assert row["state"] == "done" and row["working_s"] > 0 and row["unknown_s"] > 0, row


def test_hosts_lists_and_checks_what_is_missing(
    cli: CLI,
    git_repo: Path,
    remote: Remote,
    devbox: dict[str, Any],
    mullui_home: Path,
    sshd: Sshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    broken = {**devbox, "mullui": ["mullui-not-installed"], "repo": str(tmp_path / "nope")}
    broken.pop("key")
    stranger = {**broken, "ssh_options": ssh_options(sshd, tmp_path / "s2", sshd.other_key)}
    good = {k: v for k, v in devbox.items() if k != "key"}
    # git and tmux there, but no mullui on its PATH.
    plain = {**good, "mullui": ["mullui"], "env": {**good["env"], "PATH": "/usr/bin:/bin"}}
    write_config(
        mullui_home, {"devbox": good, "bare": broken, "stranger": stranger, "plain": plain}
    )

    r = cli("hosts", "check", "devbox", cwd=git_repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("devbox: ready")

    r = cli("hosts", "check", "bare", cwd=git_repo)
    assert r.returncode == 1
    assert "MISSING mullui: `mullui-not-installed` not found on PATH" in r.stdout
    assert "MISSING repo" in r.stdout and "does not exist" in r.stdout

    r = cli("hosts", cwd=git_repo)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()}
    assert lines["devbox"].endswith("reachable") and "0 agents" in lines["devbox"]
    assert "UNREACHABLE: permission denied (publickey)" in lines["stranger"]

    r = cli("spawn", "--host", "bare", "--agent", "shell", "true", cwd=git_repo)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "bare" in r.stderr, r.stderr
    r = cli("spawn", "--host", "plain", "--agent", "shell", "true", cwd=git_repo)
    assert r.returncode == 1
    assert r.stderr == (
        "mullui: mullui is not installed on plain: pip install mullui there"
        " (or set PATH in [hosts.plain] env)\n"
    )
    r = cli("spawn", "--host", "nowhere", "--agent", "shell", "true", cwd=git_repo)
    assert r.returncode == 1 and "no host 'nowhere'" in r.stderr
    assert json.loads(cli("ls", "--json", cwd=git_repo).stdout) == []  # nothing half-made


# ---- the mirror's numbering (pure) ------------------------------------------------------------
def _agent(**kw: Any) -> Agent:
    t0 = utcnow()
    base = Agent(
        id="abcd1234",
        name="n",
        profile="shell",
        task="t",
        host="devbox",
        state=State.STARTING,
        seq=1,
        history=(Transition(1, State.STARTING, "spawn", t0),),
        extra={"remote_seq": 0},
    )
    return Agent.from_record({**base.to_record(), **kw})


def _remote(*states: str, **kw: Any) -> dict[str, Any]:
    t = utcnow().isoformat()
    hist = [{"seq": i + 1, "state": s, "cause": f"c{i}", "at": t} for i, s in enumerate(states)]
    return {
        "id": "abcd1234",
        "state": states[-1],
        "cause": f"c{len(states) - 1}",
        "seq": len(states),
        "history": hist,
        **kw,
    }


def test_mirror_takes_each_remote_change_once_and_never_goes_back() -> None:
    a = _agent()
    rec = mirrored(a, _remote("queued", "starting", "working"))
    assert rec is not None
    a = Agent.from_record({**a.to_record(), **rec})
    assert [t.state.value for t in a.history] == ["queued", "starting", "working"]
    assert mirrored(a, _remote("queued", "starting", "working")) is None  # a replay
    assert mirrored(a, _remote("queued", "starting")) is None  # older news
    rec = mirrored(a, _remote("queued", "starting", "working", "done", exit_code=0))
    assert rec is not None
    a = Agent.from_record({**a.to_record(), **rec})
    assert (a.state, a.seq, a.exit_code) == (State.DONE, 4, 0)


def test_back_from_unknown_keeps_the_ack_and_is_not_news() -> None:
    a = _agent()
    a = Agent.from_record({**a.to_record(), **(mirrored(a, _remote("working", "done")) or {})})
    a = Agent.from_record({**a.to_record(), "acked_seq": a.seq})
    from mullui.reducer import apply_event

    away = apply_event(a, {"kind": "unknown", "cause": "host devbox unreachable"})
    assert away is not None and away.state is State.UNKNOWN and not away.needs_human()
    rec = returned(away)
    assert rec is not None
    back = Agent.from_record({**away.to_record(), **rec})
    assert back.state is State.DONE and back.is_acked()
    assert back_from_unknown(back, back.history[-1])


def test_attach_is_an_ssh_tty_into_the_remote_pane_and_detach_returns(
    cli: CLI, git_repo: Path, remote: Remote, devbox: dict[str, Any], mullui_home: Path
) -> None:
    aid = spawn(cli, git_repo, "mkfifo go && read -r x < go", "--host", "devbox")
    wait_for(state_is(aid, "working"), timeout=30, interval=0.05)
    # "working" and the pane's id are two changes on the host: wait for the second too.
    wait_for(lambda: local(aid).tmux_target, timeout=30, interval=0.05)
    argv = Workspace(get_paths(), cwd=git_repo).attach_argv(aid)
    assert argv is not None and "-t" in argv
    # A terminal to attach from: a pane of the local tmux server (it gives ssh a tty).
    here = ["tmux", "-L", os.environ["MULLUI_TMUX_SOCKET"]]
    subprocess.run([*here, "new-session", "-d", "-s", "term", "-x", "100", "-y", "30", *argv],
                   check=True, timeout=10)  # fmt: skip
    there = ["tmux", "-L", remote.socket]

    def clients() -> list[str]:
        r = subprocess.run([*there, "list-clients", "-F", "#{pane_id}"],
                           capture_output=True, text=True, timeout=5, check=False)  # fmt: skip
        return r.stdout.split()

    wait_for(clients, timeout=20, interval=0.1)
    target = remote.agent(aid)["tmux_target"]
    assert clients() == [target], (clients(), target)
    ttys = subprocess.run([*there, "list-clients", "-F", "#{client_tty}"], capture_output=True,
                          text=True, timeout=5, check=True).stdout.split()  # fmt: skip
    for tty in ttys:  # the user presses the detach key
        subprocess.run([*there, "detach-client", "-t", tty], timeout=5, check=True)

    def term_gone() -> bool:
        r = subprocess.run([*here, "has-session", "-t", "=term"], capture_output=True,
                           timeout=5, check=False)  # fmt: skip
        return r.returncode != 0

    wait_for(term_gone, timeout=20, interval=0.1)  # ssh returned: back where we came from
    assert ls_one(cli, git_repo, aid)["state"] == "working"  # detaching stops nothing
