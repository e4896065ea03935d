"""What the manager's dialogs share: the live session, the gallery, and change signals.

Pages and dialogs announce changes here (``people_changed``, ``settings_changed``,
``checkins_changed``); the Check-in tab listens and refreshes the matcher and the side
panel, so no page needs to know about the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.ui.checkin.live import LiveSession


class ManagerContext(QObject):
    people_changed = Signal()
    settings_changed = Signal(dict)  # the keys that changed -> new values
    checkins_changed = Signal()

    def __init__(self, session: LiveSession, gallery: Any,
                 choose_source: Callable[[], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.gallery = gallery
        self.choose_source = choose_source

    @property
    def engine(self) -> Any:
        return self.session.engine
