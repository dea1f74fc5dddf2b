"""``python -m mullui.tui``: the TUI alone (the same as ``mullui`` with no command)."""

from mullui.tui.app import main

raise SystemExit(main())
