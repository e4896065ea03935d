"""Choosing, saving and deleting style presets (built-in ones and the user's own).

The logic lives in :mod:`desktop.style.presets`; this is its row of widgets. Picking a
preset emits ``preset_chosen(StyleSettings)``; the tab applies it with
:func:`~desktop.style.presets.apply_preset` (the look changes, the size and device stay).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QToolButton,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.style import presets as core
from desktop.style.settings import StyleSettings


class PresetsBar(QWidget):
    """A combo of presets and a menu: Save as…, Import…, Delete, Open folder."""

    preset_chosen = Signal(object)  # StyleSettings
    failed = Signal(object)  # FacestyleError
    saved = Signal(str)  # name

    def __init__(self, current: Callable[[], StyleSettings],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._current = current  # () -> StyleSettings, for "Save as…"
        self._presets: list[core.Preset] = []
        self.combo = QComboBox()
        self.combo.setObjectName("presetCombo")
        self.combo.setToolTip("Built-in presets, then your own. Choosing one sets the weights,\n"
                              "layers and optimiser; the image size and device stay.")
        self.combo.activated.connect(self._activated)
        self.menu_button = QToolButton()
        self.menu_button.setText("Presets ▾")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.menu_button)
        self.save_action = QAction("Save current settings as…", self)
        self.save_action.triggered.connect(self._ask_save)
        self.import_action = QAction("Import a preset file…", self)
        self.import_action.triggered.connect(self._ask_import)
        self.from_image_action = QAction("Load settings from a saved image…", self)
        self.from_image_action.setToolTip("Take the settings facestyle stored in a PNG it "
                                          "saved (or in its .json file).")
        self.from_image_action.triggered.connect(self._ask_from_image)
        self.delete_action = QAction("Delete this preset", self)
        self.delete_action.triggered.connect(self.delete_current)
        self.defaults_action = QAction("Reset to the default settings", self)
        self.defaults_action.triggered.connect(self.reset_to_defaults)
        folder_action = QAction("Open the presets folder", self)
        folder_action.triggered.connect(self._open_folder)
        for action in (self.save_action, self.import_action, self.from_image_action,
                       self.delete_action, self.defaults_action, folder_action):
            menu.addAction(action)
        self.menu_button.setMenu(menu)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.menu_button)
        self.reload()

    # -- the list ----------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Re-read the presets folder; a broken file is reported and skipped."""
        builtin = [core.Preset(n, s, True) for n, s in core.builtin_presets().items()]
        user, problems = core.user_presets()
        self._presets = builtin + user
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("Choose a preset…", None)
        for preset in self._presets:
            label = preset.name if preset.builtin else f"{preset.name}  (yours)"
            self.combo.addItem(label, preset.name)
        if user:
            self.combo.insertSeparator(1 + len(builtin))
        self.combo.blockSignals(False)
        if select is not None:
            self.select(select)
        self._update_actions()
        for problem in problems:
            self.failed.emit(problem)

    def names(self) -> list[str]:
        return [p.name for p in self._presets]

    def preset(self, name: str) -> core.Preset:
        return next(p for p in self._presets if p.name == name)

    def current_name(self) -> str | None:
        return self.combo.currentData()

    def select(self, name: str) -> None:
        index = self.combo.findData(name)
        self.combo.setCurrentIndex(max(index, 0))
        self._update_actions()

    # -- actions -----------------------------------------------------------------------
    def choose(self, name: str) -> StyleSettings:
        """Select ``name`` and emit its settings (what picking it in the combo does)."""
        self.select(name)
        settings = self.preset(name).settings
        self.preset_chosen.emit(settings)
        return settings

    def save_as(self, name: str) -> Path | None:
        try:
            path = core.save_preset(name, self._current())
        except FacestyleError as exc:
            self.failed.emit(exc)
            return None
        self.reload(select=name.strip())
        self.saved.emit(name.strip())
        return path

    def delete_current(self) -> bool:
        name = self.current_name()
        if name is None:
            return False
        try:
            done = core.delete_preset(name)
        except FacestyleError as exc:
            self.failed.emit(exc)
            return False
        self.reload()
        return done

    def import_file(self, path: str | Path) -> bool:
        """Read a preset file from anywhere, save it among the user's presets, apply it."""
        try:
            preset = core.read_preset(path)
            name = preset.name
            if name.casefold() in {b.casefold() for b in core.BUILTIN_CHANGES}:
                name = f"{name} (imported)"
            core.save_preset(name, preset.settings)
        except FacestyleError as exc:
            self.failed.emit(exc)
            return False
        self.reload()
        self.choose(name)
        return True

    def load_from_image(self, path: str | Path) -> bool:
        """Apply the settings saved with a facestyle result (PNG text or JSON sidecar)."""
        from desktop.style.output import read_settings

        try:
            settings = core.validate(read_settings(path))
        except FacestyleError as exc:
            self.failed.emit(exc)
            return False
        self.select_none()
        self.preset_chosen.emit(settings)
        return True

    def reset_to_defaults(self) -> None:
        self.select_none()
        self.preset_chosen.emit(StyleSettings())

    def select_none(self) -> None:
        self.combo.setCurrentIndex(0)
        self._update_actions()

    def _activated(self, index: int) -> None:
        name = self.combo.itemData(index)
        self._update_actions()
        if name is not None:
            self.preset_chosen.emit(self.preset(name).settings)

    def _update_actions(self) -> None:
        name = self.current_name()
        self.delete_action.setEnabled(
            name is not None and not any(p.builtin and p.name == name for p in self._presets))

    def _ask_save(self) -> None:
        suggestion = self.current_name() or "My style"
        if suggestion in core.BUILTIN_CHANGES:
            suggestion = f"My {suggestion}"
        name, ok = QInputDialog.getText(self, "Save preset", "Name of the preset:",
                                        text=suggestion)
        if ok and name.strip():
            self.save_as(name)

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a style preset", "",
                                              "Style presets (*.json)")
        if path:
            self.import_file(path)

    def _ask_from_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load settings from a saved image", "",
                                              "facestyle results (*.png *.json)")
        if path:
            self.load_from_image(path)

    def _open_folder(self) -> None:
        folder = core.presets_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
