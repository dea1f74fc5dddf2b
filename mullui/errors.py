"""Errors a user can act on.

Deep code raises these with a message that says what happened, where, and what to do;
the edges (``cli.py``, the TUI) print the message once.  Anything else escaping is a bug.
"""

from __future__ import annotations


class MulluiError(Exception):
    """An operation was refused or failed; the message is one line a user can act on."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MulluiError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


class ConfigError(MulluiError):
    """A config file is invalid; the message names file, line and key."""


class NotFound(MulluiError):
    """An agent id/name (or another named thing) does not exist."""


class IllegalTransition(Exception):
    """A state change the model forbids: a programming error, never user input."""
