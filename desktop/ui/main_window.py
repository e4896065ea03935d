"""The main window: one tab per tool, a menu bar and a status bar.

Tabs are plain QWidgets listed in :data:`TABS`. A tab may implement any of these optional
hooks, which the window calls at the right time:

* ``restore_state(settings: QSettings)`` after construction, ``save_state(settings)`` on
  close, to persist last-used choices;
* ``activated()`` when the tab becomes the current one;
* ``shutdown()`` on close, to stop cameras and cancel work (before workers are joined).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QTabWidget, QWidget

from desktop import APP_DISPLAY_NAME
from desktop.device import describe_device, fallback_notices, on_fallback_notice
from desktop.paths import user_dirs
from desktop.ui import settings as ui_settings
from desktop.ui.about_dialog import AboutDialog
from desktop.ui.qthreading import shutdown_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TabSpec:
    key: str  # stable id used by --tab and in settings
    title: str
    factory: str  # "module:Class", imported when the window is built


TABS: tuple[TabSpec, ...] = (
    TabSpec("checkin", "Check-in", "desktop.ui.checkin_tab:CheckinTab"),
    TabSpec("style", "Style", "desktop.ui.style_tab:StyleTab"),
    TabSpec("explore", "Explore", "desktop.ui.explore_tab:ExploreTab"),
)


def _load(factory: str) -> Callable[..., QWidget]:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)


class MainWindow(QMainWindow):
    """The application window. ``tab(key)`` gives a tab's widget."""

    current_tab_changed = Signal(str)
    #: a precision fallback (e.g. bf16 asked on a CPU without it), from any thread
    fallback_notice = Signal(str)

    def __init__(self, initial_tab: str | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_DISPLAY_NAME)
        self._settings = ui_settings.app_settings()
        self._tabs: dict[str, QWidget] = {}

        self.tab_widget = QTabWidget(self)
        self.tab_widget.setObjectName("mainTabs")
        self.tab_widget.setDocumentMode(True)
        for spec in TABS:
            widget = _load(spec.factory)(self)
            self._tabs[spec.key] = widget
            self.tab_widget.addTab(widget, spec.title)
        self.setCentralWidget(self.tab_widget)

        self.device_label = QLabel(describe_device())
        self.device_label.setObjectName("deviceLabel")
        self.statusBar().addPermanentWidget(self.device_label)
        self._permanent: dict[str, QLabel] = {}
        self.fallback_notice.connect(self._show_fallback)
        self._stop_notices = on_fallback_notice(self.fallback_notice.emit)
        for text in fallback_notices():  # made before the window existed
            self._show_fallback(text)

        self._build_menus()
        self._restore(initial_tab)
        self.tab_widget.currentChanged.connect(self._on_tab_changed)

    # -- tabs ------------------------------------------------------------------------
    def tab(self, key: str) -> QWidget:
        return self._tabs[key]

    def tab_keys(self) -> list[str]:
        return list(self._tabs)

    def current_tab_key(self) -> str:
        widget = self.tab_widget.currentWidget()
        return next(k for k, w in self._tabs.items() if w is widget)

    def show_tab(self, key: str) -> None:
        if key not in self._tabs:
            raise KeyError(f"no tab {key!r}; tabs are {', '.join(self._tabs)}")
        self.tab_widget.setCurrentWidget(self._tabs[key])

    def _on_tab_changed(self, index: int) -> None:
        key = self.current_tab_key()
        hook = getattr(self._tabs[key], "activated", None)
        if callable(hook):
            hook()
        self.current_tab_changed.emit(key)

    # -- status bar ------------------------------------------------------------------
    def set_status_field(self, key: str, text: str) -> None:
        """A permanent status-bar field (e.g. camera FPS), created on first use."""
        label = self._permanent.get(key)
        if label is None:
            label = QLabel(self)
            label.setObjectName(f"status_{key}")
            self._permanent[key] = label
            self.statusBar().insertPermanentWidget(0, label)
        label.setText(text)

    def _show_fallback(self, text: str) -> None:
        """Say a precision fallback once: in the status bar now, and for good in the
        device label (``· fp32 fallback``, its tooltip giving the reasons)."""
        self.statusBar().showMessage(text, 30_000)
        self.device_label.setText(f"{describe_device()} · fp32 fallback")
        self.device_label.setToolTip("\n".join(fallback_notices()) or text)

    # -- menus -----------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About facestyle", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)
        for label, folder in (("Open data folder", "data"), ("Open logs folder", "logs")):
            action = QAction(label, self)
            action.triggered.connect(lambda _=False, f=folder: self._open_folder(f))
            help_menu.addAction(action)
        self.help_menu = help_menu

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.open()
        return dialog

    def _open_folder(self, which: str) -> None:
        path = getattr(user_dirs(), which)
        path.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    # -- persistence -----------------------------------------------------------------
    def _restore(self, initial_tab: str | None) -> None:
        s = self._settings
        geometry = s.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(
                ui_settings.read(s, "window/width", 1280, int),
                ui_settings.read(s, "window/height", 800, int),
            )
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        key = initial_tab or ui_settings.read(s, "window/tab", "checkin", str)
        if key in self._tabs:
            self.show_tab(key)
        for widget in self._tabs.values():
            hook = getattr(widget, "restore_state", None)
            if callable(hook):
                hook(s)

    def save_settings(self) -> None:
        s = self._settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.current_tab_key())
        for widget in self._tabs.values():
            hook = getattr(widget, "save_state", None)
            if callable(hook):
                hook(s)
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_notices()
        try:
            self.save_settings()
        except Exception:  # never block quitting on a settings problem
            log.exception("could not save settings")
        for widget in self._tabs.values():
            hook = getattr(widget, "shutdown", None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("tab shutdown failed")
        if not shutdown_workers(timeout=5.0):
            log.warning("some background work did not stop within 5 s")
        super().closeEvent(event)
