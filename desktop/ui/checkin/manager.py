"""The manager area: one window with a page list on the left (People, Enrol, Check-in log,
Settings, Model). It opens only after the manager PIN (see :mod:`.pin`).

Adding a page is one line in :data:`PAGES`: a key, a title and ``"module:Class"``. The
class is built as ``Class(ctx, parent)`` with the :class:`~.context.ManagerContext`, and
may define ``refresh()``, called each time the page is shown, and ``shutdown()``, called
when the window closes.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.checkin.context import ManagerContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    factory: str  # "module:Class", imported when the window opens
    subtitle: str = ""


PAGES: tuple[PageSpec, ...] = (
    PageSpec("people", "People", "desktop.ui.checkin.people_page:PeoplePage",
             "Who is enrolled"),
    PageSpec("enrol", "Enrol", "desktop.ui.checkin.enrol_page:EnrolPage",
             "Add a new person"),
    PageSpec("log", "Check-in log", "desktop.ui.checkin.log_page:LogPage",
             "Who came, when"),
    PageSpec("settings", "Settings", "desktop.ui.checkin.settings_page:SettingsPage",
             "Threshold, cooldown, retention"),
    PageSpec("model", "Model", "desktop.ui.checkin.model:ModelPage",
             "Encoder and decision rule"),
)


def _load(factory: str) -> type[QWidget]:
    module, _, name = factory.partition(":")
    return getattr(importlib.import_module(module), name)


class ManagerDialog(QDialog):
    """The manager's window. ``page(key)`` gives a page, ``show_page(key)`` selects one."""

    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None,
                 pages: tuple[PageSpec, ...] = PAGES, initial: str | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("managerDialog")
        self.setWindowTitle("Check-in manager")
        self.resize(1000, 680)
        self.nav = QListWidget(objectName="managerNav")
        self.nav.setFixedWidth(210)
        self.nav.setIconSize(QSize(0, 0))
        self.nav.setStyleSheet(
            "#managerNav { border: none; background: palette(window); outline: 0; }"
            "#managerNav::item { padding: 9px 14px; border-radius: 6px; margin: 1px 6px; }"
            "#managerNav::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }")
        self.stack = QStackedWidget(objectName="managerStack")
        self._pages: dict[str, QWidget] = {}
        self._keys: list[str] = []
        for spec in pages:
            try:
                page = _load(spec.factory)(ctx, self)
            except Exception as exc:  # one broken page must not close the manager area
                log.exception("manager page %s failed to load", spec.key)
                page = QLabel(f"This page could not be opened: {exc}")
                page.setAlignment(Qt.AlignmentFlag.AlignCenter)
            page.setObjectName(f"managerPage_{spec.key}")
            self._pages[spec.key] = page
            self._keys.append(spec.key)
            self.stack.addWidget(page)
            item = QListWidgetItem(spec.title)
            item.setToolTip(spec.subtitle)
            self.nav.addItem(item)
        self.nav.currentRowChanged.connect(self._on_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText("Close and lock")
        buttons.rejected.connect(self.reject)
        heading = QLabel("Manager", objectName="managerHeading")
        heading.setStyleSheet("font-size: 18px; font-weight: 700; padding: 12px 16px 8px;")
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(heading)
        left.addWidget(self.nav, 1)
        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self.show_page(initial or self._keys[0])

    def page(self, key: str) -> QWidget:
        return self._pages[key]

    def page_keys(self) -> list[str]:
        return list(self._keys)

    def current_key(self) -> str:
        return self._keys[self.stack.currentIndex()]

    def show_page(self, key: str) -> QWidget:
        row = self._keys.index(key)
        if self.nav.currentRow() != row:
            self.nav.setCurrentRow(row)  # -> _on_row
        else:
            self._on_row(row)
        return self._pages[key]

    def _on_row(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentIndex(row)
        refresh = getattr(self.stack.widget(row), "refresh", None)
        if callable(refresh):
            refresh()

    def done(self, result: int) -> None:
        for page in self._pages.values():
            hook = getattr(page, "shutdown", None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("manager page shutdown failed")
        super().done(result)
