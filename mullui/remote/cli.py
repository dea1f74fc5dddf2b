"""``mullui hosts [check NAME]``: the configured hosts, reachable or not, and what each lacks."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from mullui.context import Context
from mullui.errors import MulluiError, UsageError
from mullui.model import RUNNING
from mullui.remote import dispatch
from mullui.remote.hosts import HostReport, check, unreachable_because

#: How long the listing waits for one host: it shows many at once, in parallel.
LIST_TIMEOUT_S = 10.0


def _counts(ctx: Context, name: str) -> tuple[int, int]:
    """(agents not removed, of which live) on host ``name``, from the local mirrors."""
    mine = [a for a in ctx.store.all() if a.host == name and not a.removed]
    live = [a for a in mine if a.state in RUNNING]
    return len(mine), len(live)


def list_hosts(ctx: Context) -> int:
    """One line per configured host: reachable (or why not) and its agent count."""
    hosts = ctx.config.hosts
    if not hosts:
        print(
            f"no hosts configured: add a [hosts.NAME] table (ssh, repo) to {ctx.paths.config_file}"
            " — see docs/remote.md"
        )
        return 0

    def probe(name: str) -> str | None:
        try:
            _cfg, host = dispatch.transport(ctx, name)
        except MulluiError as e:
            return str(e)
        return unreachable_because(host, timeout=LIST_TIMEOUT_S)

    names = sorted(hosts)
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        reasons = list(pool.map(probe, names))
    for name, why in zip(names, reasons, strict=True):
        n, live = _counts(ctx, name)
        agents = f"{n} agent{'s' if n != 1 else ''}" + (f" ({live} running)" if live else "")
        status = "reachable" if why is None else f"UNREACHABLE: {why}"
        print(f"{name}  {hosts[name].ssh}  {agents}  {status}")
    return 0


def check_host(ctx: Context, name: str) -> HostReport:
    """What ``name`` lacks to run agents (never raises for a problem on the host)."""
    cfg, host = dispatch.transport(ctx, name)
    return check(host, cfg.repo, mullui=cfg.mullui)


def hosts(ctx: Context, action: str | None, name: str | None) -> int:
    """``mullui hosts`` (list) and ``mullui hosts check [NAME]``; exit 1 when a checked
    host is unreachable or lacks something it needs."""
    if action is None:
        if name is not None:
            raise UsageError("usage: mullui hosts [check NAME]")
        return list_hosts(ctx)
    if action != "check":
        raise UsageError(f"unknown hosts action {action!r}: use `mullui hosts check NAME`")
    names = [name] if name else sorted(ctx.config.hosts)
    if not names:
        raise MulluiError(
            f"no hosts configured: add a [hosts.NAME] table to {ctx.paths.config_file}"
        )
    ok = True
    for n in names:
        report = check_host(ctx, n)
        print("\n".join(report.lines()))
        ok = ok and report.ok
    sys.stdout.flush()
    return 0 if ok else 1
