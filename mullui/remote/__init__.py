"""Agents on other machines: OpenSSH + the remote's tmux + mullui installed there.

``ssh.SshHost`` is the transport (one multiplexed connection per host), ``hosts`` checks
what a host lacks and keeps a durable, resumable link to its event stream.
"""

from mullui.remote.ssh import (
    HostAuthError,
    HostUnreachable,
    RemoteCommandMissing,
    SshHost,
    control_dir_for,
)

__all__ = [
    "HostAuthError",
    "HostUnreachable",
    "RemoteCommandMissing",
    "SshHost",
    "control_dir_for",
]
