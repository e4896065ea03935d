"""Starting the Qt application: the window, offscreen screenshots, and the error hook."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QSize, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop import APP_DISPLAY_NAME, APP_NAME, ORG_NAME, __version__
from desktop.resources import resource_path


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with names, icon and the app style sheet."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName(ORG_NAME)
        QCoreApplication.setApplicationName(APP_NAME)
        QCoreApplication.setApplicationVersion(__version__)
        app = QApplication(argv if argv is not None else [sys.argv[0]])
        app.setApplicationDisplayName(APP_DISPLAY_NAME)
    apply_look(app)
    return app  # type: ignore[return-value]


def apply_look(app: QApplication) -> None:
    icon = resource_path("icons", "facestyle.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    qss = resource_path("style.qss")
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


def run_gui(tab: str | None = None) -> int:
    """Open the main window and run the event loop until it closes."""
    from desktop.logs import setup_logging
    from desktop.ui.error_dialog import install_excepthook
    from desktop.ui.main_window import MainWindow

    setup_logging()
    app = create_app()
    install_excepthook()
    window = MainWindow(initial_tab=tab)
    window.show()
    return app.exec()


def settle(ms: int) -> None:
    """Process events for ``ms`` milliseconds, so tabs can finish starting up.

    The thread sleeps between events, as in the app's own event loop: a loop that polled
    instead would hold a core at normal priority and starve the low-priority workers
    (the Style tab's painter took 2.5 s instead of 0.9 s to its first G under a polling
    wait on 2 cores)."""
    QApplication.instance().processEvents()
    timer = QElapsedTimer()
    timer.start()
    loop = QEventLoop()
    while (left := ms - timer.elapsed()) > 0:
        QTimer.singleShot(left, loop.quit)
        loop.exec()


def screenshot(path: str | Path, tab: str | None = None, size: QSize | None = None,
               settle_ms: int = 300) -> QSize:
    """Build the window offscreen, render it to PNG at ``path`` and return its size."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop.ui.main_window import MainWindow

    create_app()
    window = MainWindow(initial_tab=tab)
    window.resize(size or QSize(1280, 800))
    window.show()
    settle(settle_ms)
    image = window.grab()
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write the screenshot to {path}")
    window.close()
    return image.size()
