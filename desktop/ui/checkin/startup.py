"""Opening the gallery at start-up, and re-embedding templates of another encoder.

A damaged or unreadable gallery is never replaced silently by an empty one. The
:class:`GalleryProblemDialog` says what happened and offers, in this order: restore the
latest backup (the damaged file is kept beside it), start a new empty gallery (the damaged
file is moved aside, not deleted), or continue without check-ins (video only).

Templates made by another encoder version (a new release, a fine-tuned encoder) are
re-embedded from their stored chips with a cancellable progress dialog
(:class:`ReembedRunner`); until that finishes they are simply not matched, so embedding
spaces never mix.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from desktop.store import (
    GalleryCorruptError,
    GalleryOpenError,
    open_gallery,
    restore_backup,
)
from desktop.store.backups import move_aside
from desktop.store.location import is_server_url
from desktop.store.reembed import ReembedReport, reembed_gallery
from desktop.ui.error_dialog import show_error
from desktop.ui.qthreading import Worker

log = logging.getLogger(__name__)

RESTORE, NEW, CONTINUE, RETRY = "restore", "new", "continue", "retry"


class GalleryProblemDialog(QMessageBox):
    """What to do with a gallery that cannot be opened. ``choice`` after it closes."""

    def __init__(self, exc: GalleryOpenError, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.exc = exc
        self.choice: str | None = None
        self.setObjectName("galleryProblemDialog")
        self.setIcon(QMessageBox.Icon.Critical)
        self.setWindowTitle("The gallery cannot be opened")
        self.setText(exc.message)
        latest = exc.latest_backup
        lines = []
        if exc.hint:
            lines.append(exc.hint)
        if latest is not None:
            lines.append(f"The latest backup is from {latest.describe()}. Check-ins and "
                         "enrolments made after it are not in it.")
        else:
            lines.append("There is no backup to restore.")
        lines.append("Nothing has been changed or deleted yet.")
        self.setInformativeText("\n\n".join(lines))
        self.restore_button = None
        if latest is not None:
            self.restore_button = self.addButton("Restore the latest backup",
                                                 QMessageBox.ButtonRole.AcceptRole)
            self.setDefaultButton(self.restore_button)
        if isinstance(exc, GalleryCorruptError):
            self.new_button = self.addButton("Start a new, empty gallery",
                                             QMessageBox.ButtonRole.DestructiveRole)
        else:
            self.new_button = self.addButton("Try again", QMessageBox.ButtonRole.ResetRole)
        self.continue_button = self.addButton("Continue without check-ins",
                                              QMessageBox.ButtonRole.RejectRole)
        self.buttonClicked.connect(self._clicked)

    def _clicked(self, button: Any) -> None:
        if button is self.restore_button:
            self.choice = RESTORE
        elif button is self.new_button:
            self.choice = NEW if isinstance(self.exc, GalleryCorruptError) else RETRY
        else:
            self.choice = CONTINUE


class GalleryOpener(QObject):
    """Opens the gallery off the UI thread and walks the person through any problem.

    ``opened(gallery)`` when it is open; ``unavailable(exception)`` when the person chose
    to continue without one. ``dialog`` is the problem dialog while it is shown.
    """

    opened = Signal(object)
    unavailable = Signal(object)
    problem = Signal(object)  # the GalleryProblemDialog just shown (for tests)

    def __init__(self, path: str | Path | None, parent_widget: QWidget) -> None:
        super().__init__(parent_widget)
        # a SQLite file, or a postgresql:// URL (a desk of a shared gallery)
        self.path: str | Path | None = (path if path is None or is_server_url(path)
                                        else Path(path))
        self.parent_widget = parent_widget
        self.dialog: GalleryProblemDialog | None = None
        self.restored_from: Path | None = None
        self._worker: Worker | None = None

    def start(self) -> None:
        path = self.path
        self._worker = Worker(lambda: open_gallery(path, live=True))
        self._worker.result.connect(self.opened)
        self._worker.error.connect(self._on_error)
        self._worker.start()

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, GalleryOpenError):
            show_error(self.parent_widget, exc, "The gallery cannot be opened")
            self.unavailable.emit(exc)
            return
        log.error("gallery problem: %s", exc.message)
        dialog = GalleryProblemDialog(exc, self.parent_widget)
        dialog.finished.connect(lambda _: self._chosen(dialog))
        self.dialog = dialog
        dialog.open()
        self.problem.emit(dialog)

    def _chosen(self, dialog: GalleryProblemDialog) -> None:
        self.dialog = None
        exc = dialog.exc
        choice = dialog.choice or CONTINUE
        dialog.deleteLater()
        try:
            if choice == RESTORE:
                info = exc.latest_backup
                restore_backup(exc.path, info.path if info else None)
                self.restored_from = info.path if info else None
                log.warning("restored the gallery from %s", self.restored_from)
            elif choice == NEW:
                moved = move_aside(exc.path)
                log.warning("moved the damaged gallery aside to %s", moved)
        except Exception as exc2:
            show_error(self.parent_widget, exc2, "Restoring the gallery failed")
            self.unavailable.emit(exc2)
            return
        if choice == CONTINUE:
            self.unavailable.emit(exc)
        else:
            self.path = exc.path
            self.start()


class ReembedRunner(QObject):
    """Re-embeds stale templates with a progress dialog. ``done(report or None)``."""

    done = Signal(object)

    def __init__(self, parent_widget: QWidget) -> None:
        super().__init__(parent_widget)
        self.parent_widget = parent_widget
        self.progress: QProgressDialog | None = None
        self.report: ReembedReport | None = None
        self.worker: Worker | None = None

    def start(self, gallery: Any, engine: Any) -> bool:
        """Start when templates of another encoder exist; False (and ``done(None)``) when
        none do."""
        stale = gallery.count_stale(engine.model_id)
        if not stale:
            self.done.emit(None)
            return False
        dialog = QProgressDialog(
            f"The face encoder changed ({engine.model_id}). Updating {stale} stored face "
            f"template{'s' if stale != 1 else ''} so they can be matched…",
            "Cancel", 0, 1000, self.parent_widget)
        dialog.setObjectName("reembedProgress")
        dialog.setWindowTitle("Updating the gallery")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setValue(0)
        self.progress = dialog
        worker = Worker(reembed_gallery, gallery, engine,
                        model_version=getattr(engine, "model_version", ""))
        worker.progress.connect(self._on_progress)
        worker.result.connect(self._on_result)
        worker.cancelled.connect(self._on_cancelled)
        worker.error.connect(self._on_error)
        dialog.canceled.connect(worker.cancel)
        self.worker = worker
        dialog.show()
        worker.start()
        return True

    def _on_progress(self, fraction: float, message: str) -> None:
        dialog = self.progress  # setValue may process events that close it
        if dialog is None:
            return
        if message:
            dialog.setLabelText(f"Updating stored face templates for the new encoder: "
                                f"{message}")
        dialog.setValue(int(fraction * 1000))

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _on_result(self, report: ReembedReport) -> None:
        self.report = report
        self._close()
        if report.failed:
            log.warning("%d templates could not be re-embedded", len(report.failed))
        self.done.emit(report)

    def _on_cancelled(self) -> None:
        self._close()
        log.warning("re-embedding cancelled; stale templates stay unused until it finishes")
        self.done.emit(None)

    def _on_error(self, exc: BaseException) -> None:
        self._close()
        show_error(self.parent_widget, exc, "Updating the gallery failed")
        self.done.emit(None)
