"""Where an agent runs is chosen once, from its record, and every location implements the
whole interface."""

from __future__ import annotations

import inspect
from pathlib import Path

from mullui.context import Context
from mullui.model import Agent, State
from mullui.operations.local import LocalLocation
from mullui.operations.location import Location
from mullui.operations.locations import location_at, location_for
from mullui.paths import get_paths
from mullui.remote.dispatch import RemoteLocation


def ctx(tmp_path: Path) -> Context:
    return Context(get_paths({"MULLUI_HOME": str(tmp_path / "home")}), cwd=tmp_path)


def agent(host: str | None) -> Agent:
    return Agent(id="a1b2c3d4", name="n", profile="shell", task="t", state=State.DONE, host=host)


def test_an_agent_without_a_host_runs_here_and_one_with_a_host_there(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    here = location_for(c, agent(None))
    there = location_for(c, agent("devbox"))
    assert isinstance(here, LocalLocation) and here.ctx is c
    assert isinstance(there, RemoteLocation) and there.host == "devbox"
    assert isinstance(location_at(c, None), LocalLocation)


def test_every_location_implements_the_whole_interface() -> None:
    wanted = {n for n, f in inspect.getmembers(Location) if getattr(f, "__isabstractmethod__", 0)}
    assert {"spawn", "start", "send", "stop", "rm", "attach_argv", "diff", "logs"} <= wanted
    for cls in (LocalLocation, RemoteLocation):
        assert not inspect.isabstract(cls), (cls, cls.__abstractmethods__)


def test_a_local_agent_is_merged_from_its_own_branch(tmp_path: Path) -> None:
    a = agent(None)
    assert location_for(ctx(tmp_path), a).branch_here(a) is a


def test_the_config_is_read_through_one_holder_that_a_reload_swaps(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    first = c.config
    assert c.config is first  # loaded once
    c.config_source.replace(c.load_config(None))
    assert c.config is not first
