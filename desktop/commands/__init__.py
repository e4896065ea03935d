"""Subcommands of the ``facestyle`` CLI, one module each (see :mod:`desktop.cli`)."""
