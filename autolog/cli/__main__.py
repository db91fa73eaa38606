"""``python -m autolog.cli`` runs the ``autolog`` command."""

from autolog.cli.commands import main

raise SystemExit(main())
