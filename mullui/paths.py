"""Where mullui keeps its files.

One module knows every location.  ``MULLUI_HOME`` puts everything under one root
(tests, benchmarks, several isolated instances); otherwise the XDG base directories.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """All of mullui's locations for one instance."""

    config_dir: Path
    state_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def user_themes_dir(self) -> Path:
        return self.config_dir / "themes"

    @property
    def agents_dir(self) -> Path:
        """One ``<id>.json`` record per agent (a cache of its events, rebuildable)."""
        return self.state_dir / "agents"

    @property
    def spool_dir(self) -> Path:
        """One append-only ``<id>.jsonl`` event file per agent; watched by the supervisor."""
        return self.state_dir / "spool"

    @property
    def logs_dir(self) -> Path:
        """Pane output (``pipe-pane``); deliberately apart from the spool so busy logs do
        not wake the event watcher."""
        return self.state_dir / "logs"

    @property
    def secrets_dir(self) -> Path:
        """Per-agent hook tokens, mode 0600."""
        return self.state_dir / "secrets"

    @property
    def hookdata_dir(self) -> Path:
        """Raw hook payloads the fast hook stored, one file each until folded in."""
        return self.state_dir / "hookdata"

    @property
    def profiles_dir(self) -> Path:
        """Generated per-agent files (hook settings, plugins) kept outside the worktree."""
        return self.state_dir / "profiles"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def supervisor_lock(self) -> Path:
        return self.state_dir / "supervisor.lock"

    @property
    def changes_file(self) -> Path:
        """Journal of applied changes (one line per record update, with its new state
        transitions); its byte offset is the cursor of notifiers and remote mirrors."""
        return self.state_dir / "changes.jsonl"

    @property
    def notify_cursor(self) -> Path:
        return self.state_dir / "notified.json"

    @property
    def trust_file(self) -> Path:
        """sha256 of each repository ``.mullui.toml`` the user trusted (``mullui trust``).
        In a directory of its own: a running TUI or watch follows it (inotify on its
        directory), and the state dir itself changes with every agent event."""
        return self.state_dir / "trust" / "trusted.json"

    @property
    def old_trust_file(self) -> Path:
        """Where the trust file was kept before it had a directory of its own."""
        return self.state_dir / "trusted.json"

    @property
    def ui_state(self) -> Path:
        """Small UI preferences (chosen theme)."""
        return self.state_dir / "ui.json"

    def log_file(self, agent_id: str) -> Path:
        return self.logs_dir / f"{agent_id}.log"

    def spool_file(self, agent_id: str) -> Path:
        return self.spool_dir / f"{agent_id}.jsonl"

    def record_file(self, agent_id: str) -> Path:
        return self.agents_dir / f"{agent_id}.json"

    def secret_file(self, agent_id: str) -> Path:
        return self.secrets_dir / agent_id

    def profile_dir(self, agent_id: str) -> Path:
        return self.profiles_dir / agent_id

    def ensure(self) -> None:
        """Create the directories (private: agents' tokens and prompts live here).

        The three roots are made first, 0700 (``mkdir(parents=True)`` of a subdirectory
        would leave them at the umask's 0755); the XDG ones (``~/.local/state/mullui``,
        ...) are mullui's own, so one an older version left open is closed too."""
        for root in (self.config_dir, self.state_dir, self.data_dir):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if root.name == "mullui" and root.stat().st_mode & 0o077:
                with contextlib.suppress(OSError):
                    root.chmod(0o700)
        for d in (
            self.agents_dir,
            self.spool_dir,
            self.logs_dir,
            self.secrets_dir,
            self.hookdata_dir,
            self.profiles_dir,
            self.worktrees_dir,
            self.trust_file.parent,
        ):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._move_trust_file()

    def _move_trust_file(self) -> None:
        """Copy the trust file from its old place into its own directory, once.  The old
        file stays where it was, unchanged (a mullui of before reads it there); from now
        on the new one is the one read and written."""
        new, old = self.trust_file, self.old_trust_file
        if new.exists() or not old.exists():
            return
        from mullui.files import atomic_write  # tempfile's import: only when moving

        try:
            data = old.read_bytes()
        except OSError:
            return  # unreadable: trusts nothing, as config reads an unreadable one
        atomic_write(new, data)


def get_paths(env: dict[str, str] | None = None) -> Paths:
    """Locations for this process, from ``MULLUI_HOME`` or XDG."""
    e = os.environ if env is None else env
    home = e.get("MULLUI_HOME")
    state_override = e.get("MULLUI_STATE_DIR")
    if state_override and not home:
        # Set by mullui itself for hooks that run under another HOME (an agent with a
        # fresh HOME, a tmux run-shell): only the state dir matters to them.
        st = Path(state_override)
        return Paths(config_dir=st.parent / "config", state_dir=st, data_dir=st.parent / "data")
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(config_dir=root, state_dir=root / "state", data_dir=root / "data")
    user = Path(e.get("HOME") or Path.home())
    cfg = _xdg(e, "XDG_CONFIG_HOME", user / ".config")
    st = _xdg(e, "XDG_STATE_HOME", user / ".local" / "state")
    data = _xdg(e, "XDG_DATA_HOME", user / ".local" / "share")
    return Paths(config_dir=cfg / "mullui", state_dir=st / "mullui", data_dir=data / "mullui")


def _xdg(env: Mapping[str, str], name: str, default: Path) -> Path:
    """An XDG base directory.  The spec: "All paths set in these environment variables
    must be absolute.  If an implementation encounters a relative path in any of these
    variables it should consider the path invalid and ignore it" — a relative one would
    put mullui's state wherever the command happens to run."""
    value = env.get(name, "")
    return Path(value) if os.path.isabs(value) else default


def tmux_socket(env: dict[str, str] | None = None) -> str:
    """The tmux socket name (``tmux -L NAME``) this instance uses."""
    e = os.environ if env is None else env
    return e.get("MULLUI_TMUX_SOCKET") or "mullui"
