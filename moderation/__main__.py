"""Run the command line: ``python -m moderation``."""

from moderation.cli import main

raise SystemExit(main())
