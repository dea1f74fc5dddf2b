"""mullui: a terminal inbox for many AI coding agents working in parallel."""

__version__ = "0.1.0"
