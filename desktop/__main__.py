"""``python -m desktop`` is the ``facestyle`` command."""

from desktop.cli import main

raise SystemExit(main())
