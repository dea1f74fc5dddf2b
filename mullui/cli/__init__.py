"""The command line: argparse in, one line + an exit code out.

0 ok; 1 refused or failed (stderr says why and what to do); 2 bad usage.  Errors are
raised deep as :class:`MulluiError` and printed here, once.  Imports are lazy so the
commands agents' hooks call (``mullui hook``) start fast.
"""

from mullui.cli.entry import main
from mullui.cli.parser import build_parser, parse_duration

__all__ = ["build_parser", "main", "parse_duration"]
