"""`python -m mullui` runs the command line."""

from mullui.cli import main

raise SystemExit(main())
