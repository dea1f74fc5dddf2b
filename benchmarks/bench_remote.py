"""Remote agents: an agent's exit on the host -> its state here, and ssh connections per host.

A real sshd on 127.0.0.1 (tests/support/sshd.py) fronts a "remote" side that is this
machine with its own MULLUI_HOME, tmux socket and repository.  Shell agents spawned with
``mullui spawn --host`` wait on a FIFO, write the time, and exit 0.  Each exit travels:
the host's tmux pane-died hook -> the host's spool -> its ``mullui events --follow``
(over the shared ssh connection) -> the local ``mullui watch``'s HostLink -> a
``mirror`` event in the local spool.  Latency = that local event's time minus the time
the agent wrote just before exiting (same clock: one machine).

Also counted: ssh processes for the host (the ControlMaster and the one events stream
client) and logins at the sshd (one key exchange for everything).

    python benchmarks/bench_remote.py [--count 20]

Prints a table and writes benchmarks/results/remote.json; ``run()`` returns the dict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `mullui` and `tests.support` importable
    sys.path.insert(0, str(ROOT))

import tomli_w  # noqa: E402

from benchmarks.bench_core import metric, print_table  # noqa: E402
from mullui.model import State  # noqa: E402
from mullui.paths import get_paths  # noqa: E402
from mullui.remote import dispatch  # noqa: E402
from mullui.store import Store  # noqa: E402
from mullui.workspace import Workspace  # noqa: E402
from tests.support.sshd import HOST_ALIAS, SSHD, Sshd  # noqa: E402

TARGET_P95_MS = 300.0
RESULTS = ROOT / "benchmarks" / "results" / "remote.json"
GIT_ID = {
    "GIT_AUTHOR_NAME": "mullui-bench",
    "GIT_AUTHOR_EMAIL": "bench@mullui.invalid",
    "GIT_COMMITTER_NAME": "mullui-bench",
    "GIT_COMMITTER_EMAIL": "bench@mullui.invalid",
}
# Blocks on a FIFO (no CPU while waiting: 20 polling loops would skew the numbers).
TASK = "mkfifo go && read -r x < go; date +%s.%N > exit_at; exit 0"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60,
                   env={**os.environ, **GIT_ID})  # fmt: skip


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


def _ssh_processes(control_path: Path) -> tuple[int, int]:
    """(masters, clients) among ssh processes using this control socket."""
    needle = os.fsencode(str(control_path))
    masters = clients = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if not cmd.startswith(b"ssh") or needle not in cmd:
            continue
        # The master renames itself "ssh: <ControlPath> [mux]" (OpenSSH 9.2).
        if cmd.startswith(b"ssh: ") and b"[mux]" in cmd:
            masters += 1
        else:
            clients += 1
    return masters, clients


def _mirror_done_at(paths: Any, aid: str) -> datetime | None:
    """When the local side recorded the agent as done (its first such mirror event)."""
    for line in paths.spool_file(aid).read_text().splitlines():
        ev = json.loads(line)
        if ev.get("kind") == "mirror" and (ev.get("record") or {}).get("state") == "done":
            return datetime.fromisoformat(ev["at"].replace("Z", "+00:00"))
    return None


def run(count: int = 20, quick: bool = False) -> dict[str, Any]:
    if quick:
        count = min(count, 8)
    if not SSHD.exists() or shutil.which("ssh") is None:
        return {"what": "remote agents over ssh", "skipped": "OpenSSH server not installed",
                "metrics": [metric("remote: skipped (no sshd)", "")]}  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="mullui-bremote-"))
    server = Sshd(root)
    server.start()
    lsock, rsock = f"mullui-bl-{uuid.uuid4().hex[:8]}", f"mullui-br-{uuid.uuid4().hex[:8]}"
    local_home, remote_home = root / "lhome", root / "rhome"
    local_home.mkdir()
    remote_home.mkdir()
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("bench\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "initial")
    remote_repo = root / "rrepo"
    _git(root, "clone", "-q", str(repo), str(remote_repo))
    kh = root / "known_hosts"
    kh.write_text(server.known_hosts_line())
    remote_env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "MULLUI_HOME": str(remote_home),
        "MULLUI_TMUX_SOCKET": rsock,
        "MULLUI_NOTIFY": "none",
        **GIT_ID,
    }
    host = {
        "ssh": HOST_ALIAS,
        "repo": str(remote_repo),
        "env": remote_env,
        "mullui": [sys.executable, "-m", "mullui"],
        "ssh_options": [
            "HostName=127.0.0.1",
            f"Port={server.port}",
            f"User={server.user}",
            f"IdentityFile={server.user_key}",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            f"UserKnownHostsFile={kh}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
        ],  # fmt: skip
    }
    (local_home / "config.toml").write_text(tomli_w.dumps({"hosts": {"devbox": host}}))
    # Every agent waits for its turn: none may be held queued by the host's own limit.
    (remote_home / "config.toml").write_text(tomli_w.dumps({"limits": {"max_running": 1000}}))
    env = {
        **os.environ,
        **GIT_ID,
        "MULLUI_HOME": str(local_home),
        "MULLUI_TMUX_SOCKET": lsock,
        "MULLUI_NOTIFY": "none",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("TMUX", None)
    env.pop("MULLUI_STATE_DIR", None)
    paths = get_paths({"MULLUI_HOME": str(local_home)})
    store = Store(paths)
    ws = Workspace(paths, cwd=repo)
    ssh = dispatch.transport(ws, "devbox")[1]
    samples: list[float] = []
    spawn_ms: list[float] = []
    missed = 0
    try:
        ids = []
        for i in range(count):
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "mullui", "spawn", "--host", "devbox", "--agent", "shell",
                 "--no-attach", "--name", f"b{i}", TASK],
                cwd=repo, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            spawn_ms.append((time.perf_counter() - t0) * 1000)
            if r.returncode != 0:
                raise RuntimeError(f"spawn --host failed: {r.stderr.strip()}")
            ids.append(r.stdout.strip())
        for aid in ids:
            _wait(lambda aid=aid: (store.get(aid) or ws.get(aid)).state is State.WORKING, 60,
                  f"{aid} working here")  # fmt: skip
        masters, clients = _ssh_processes(ssh.control_path)
        for aid in ids:
            a = store.get(aid)
            assert a is not None and a.worktree
            time.sleep(0.15)  # one change at a time: latency, not throughput
            fifo = Path(a.worktree) / "go"
            _wait(fifo.exists, 10, f"{aid}'s fifo")
            with fifo.open("w") as f:  # opens once the agent reads
                f.write("go\n")
            try:
                _wait(lambda aid=aid: (store.get(aid) or ws.get(aid)).state is State.DONE, 30,
                      f"{aid} done here")  # fmt: skip
            except RuntimeError:
                missed += 1
                continue
            exit_at = float((Path(a.worktree) / "exit_at").read_text().strip())
            seen = _mirror_done_at(paths, aid)
            if seen is None:
                missed += 1
                continue
            samples.append((seen.timestamp() - exit_at) * 1000)
        logins = server.log.read_text().count("Accepted publickey")
    finally:
        for sock in (lsock, rsock):
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
        ssh.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    lat = metric("remote exit -> local state (ssh, loopback)", "ms", samples=samples,
                 target=f"p95 < {TARGET_P95_MS:g} ms", limit=TARGET_P95_MS,
                 note=f"{len(samples)}/{count} measured, {missed} missed")  # fmt: skip
    if missed:
        lat["ok"] = False
    spawn = metric("spawn --host (CLI, to id printed)", "ms", samples=spawn_ms)
    procs = metric("ssh masters per host", "", value=float(masters), target="1", limit=1.5,
                   judge="value",
                   note=f"+{clients} multiplexed client(s): the events stream; "
                   f"{logins} sshd login(s) in all")  # fmt: skip
    metrics = [lat, spawn, procs]
    return {
        "what": "agent exit on the host -> mirror event in the local spool; ssh processes",
        "count": count,
        "missed": missed,
        "latency_ms": [round(x, 1) for x in samples],
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
        "spawn_p50_ms": spawn["p50"],
        "ssh_masters": masters,
        "ssh_clients": clients,
        "sshd_logins": logins,
        "target_p95_ms": TARGET_P95_MS,
        "ok": all(m["ok"] is not False for m in metrics),
        "metrics": metrics,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    result = run(args.count)
    print_table(result["metrics"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
