"""``python -m bot`` runs the command line."""

from bot.surfaces.cli import main

raise SystemExit(main())
