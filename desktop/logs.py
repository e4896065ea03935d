"""Logging to stderr and to a rotating file in the user logs folder."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from desktop.errors import UserDirError
from desktop.paths import ensure_writable, user_dirs

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO, to_file: bool = True) -> Path | None:
    """Configure the root logger once. Returns the log file, or None when not writing one.

    A logs folder that cannot be written is not fatal: logging then goes to stderr only.
    """
    root = logging.getLogger()
    if getattr(root, "_facestyle_configured", False):
        return getattr(root, "_facestyle_logfile", None)
    root.setLevel(level)
    stream = logging.StreamHandler()
    stream.setLevel(logging.WARNING)
    stream.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(stream)
    logfile: Path | None = None
    if to_file:
        try:
            logfile = ensure_writable(user_dirs().logs) / "facestyle.log"
            handler = logging.handlers.RotatingFileHandler(
                logfile, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(handler)
        except UserDirError as exc:
            root.warning("not writing a log file: %s", exc.message)
            logfile = None
    root._facestyle_configured = True  # type: ignore[attr-defined]
    root._facestyle_logfile = logfile  # type: ignore[attr-defined]
    return logfile
