"""What the lower layers take instead of the whole workspace: where mullui's files are,
the store of agents, the current directory and its repository, the tmux server, and the
config read through one holder.

The config is never cached by a caller: ``ctx.config`` asks :class:`ConfigSource` every
time, so a reload only has to change what :meth:`ConfigSource.current` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mullui import config as config_mod
from mullui.errors import ConfigError, MulluiError
from mullui.model import Agent
from mullui.paths import Paths, get_paths, tmux_socket
from mullui.runtime import worktrees
from mullui.store import Store

if TYPE_CHECKING:
    from mullui.runtime.tmux import Tmux


class ConfigSource:
    """The one holder of a context's config: ``config.toml`` merged with the repository's
    ``.mullui.toml``, loaded on first use by ``load``."""

    def __init__(self, load: Callable[[], config_mod.Config]) -> None:
        self._load = load
        self._config: config_mod.Config | None = None
        self._repos: dict[Path, config_mod.Config] = {}  # last good config per repository

    def current(self) -> config_mod.Config:
        """The config in force now (loads it the first time; raises ConfigError)."""
        if self._config is None:
            self._config = self._load()
        return self._config

    def replace(self, config: config_mod.Config) -> None:
        """Make ``config`` the one in force from now on (a reload)."""
        self._config = config

    def for_repo(self, repo: Path, load: Callable[[], config_mod.Config]) -> config_mod.Config:
        """The config of another repository (a ``mullui watch`` runs outside any): read
        afresh, so an edit counts at once; an invalid edit keeps the last good one."""
        try:
            config = load()
        except ConfigError:
            if repo in self._repos:
                return self._repos[repo]
            raise
        self._repos[repo] = config
        return config

    def last_good(self, repo: Path) -> config_mod.Config | None:
        """The last valid config read of ``repo`` (None before the first)."""
        return self._repos.get(repo)

    def remember(self, repo: Path, config: config_mod.Config) -> None:
        """Record a valid config of ``repo`` (read by the config follower)."""
        self._repos[repo] = config


class Context:
    """Paths, store, cwd and repository, tmux server and config of one mullui instance."""

    def __init__(self, paths: Paths | None = None, cwd: Path | None = None) -> None:
        self.paths = paths or get_paths()
        self.store = Store(self.paths)
        self.cwd = (cwd or Path.cwd()).absolute()
        self.socket = tmux_socket()
        self.config_source = ConfigSource(self._load_config)
        self._repo: Path | None = None
        self._tmux: Tmux | None = None
        #: receives worktree checkout progress lines (big repositories); the CLI shows them
        self.progress: Callable[[str], None] | None = None
        #: receives, once, the line naming what an untrusted ``.mullui.toml`` could not set
        self.notice: Callable[[str], None] | None = None

    def repo(self) -> Path:
        """The main repository of the current directory (error outside one)."""
        if self._repo is None:
            self._repo = worktrees.repo_root(self.cwd)
        return self._repo

    def repo_or_none(self) -> Path | None:
        """The main repository of the current directory, or None outside one."""
        try:
            return self.repo()
        except MulluiError:
            return None

    @property
    def config(self) -> config_mod.Config:
        """The config in force (through the one holder: never keep a copy)."""
        return self.config_source.current()

    def load_config(self, repo: Path | None) -> config_mod.Config:
        """The user's config merged with ``repo``'s ``.mullui.toml`` (as far as trusted)."""
        return config_mod.load(self.paths.config_file, repo, self.paths.trust_file)

    def _load_config(self) -> config_mod.Config:
        config = self.load_config(self.repo_or_none())
        notice = config.trust_notice()
        if notice and self.notice is not None:
            self.notice(notice)
        return config

    @property
    def tmux(self) -> Tmux:
        """mullui's tmux server (``tmux -L SOCKET``)."""
        if self._tmux is None:
            # ~8 ms to import: a command that never talks to tmux (`ls` of a quiet fleet,
            # `inbox`) does not pay it.
            from mullui.runtime.tmux import Tmux

            self._tmux = Tmux(self.socket)
        return self._tmux

    def get(self, ref: str) -> Agent:
        """The agent named or numbered ``ref`` (NotFound otherwise)."""
        return self.store.resolve(ref)

    def profile_names(self) -> list[str]:
        """Every profile an agent may be spawned with."""
        return self.config.profile_names()
