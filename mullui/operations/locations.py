"""Which :class:`Location` an agent runs at: chosen here, once, from its ``host``."""

from __future__ import annotations

from mullui.context import Context
from mullui.model import Agent
from mullui.operations.local import LocalLocation
from mullui.operations.location import Location


def location_at(ctx: Context, host: str | None) -> Location:
    """This machine (``host`` None) or the configured host ``host``."""
    if host:
        # SSH transport (asyncio, ~15 ms to import): only a command on a remote agent pays.
        from mullui.remote.dispatch import RemoteLocation

        return RemoteLocation(ctx, host)
    return LocalLocation(ctx)


def location_for(ctx: Context, a: Agent) -> Location:
    """Where agent ``a`` runs."""
    return location_at(ctx, a.host)
