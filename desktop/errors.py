"""Errors meant for people: a plain message, plus an optional hint on what to do next.

Core code raises these for bad input and missing resources; the UI shows ``message`` and
``hint`` in its error dialog and the CLI prints them, so no traceback reaches a user for a
problem they can fix.
"""

from __future__ import annotations


class FacestyleError(Exception):
    """Base class for every error with a message written for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UserDirError(FacestyleError):
    """A user folder (data, cache, logs, config) cannot be created or written."""


class ModelFileError(FacestyleError):
    """A pretrained model file is missing, truncated or not what we expect."""


class ImageError(FacestyleError):
    """An image cannot be read, is corrupt, or is too large to decode safely."""


class Cancelled(Exception):
    """Raised inside a long task when its :class:`~desktop.tasks.CancelToken` is set."""
