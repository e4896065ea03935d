"""People: everyone enrolled, with a face thumbnail; rename, add or remove photos, delete.

Deleting a person removes their templates and thumbnails in one transaction and asks
whether their check-in history stays (listed under the name they had) or goes too.
"""

from __future__ import annotations

import logging
from datetime import datetime

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError
from desktop.store import Person
from desktop.ui.checkin.context import ManagerContext
from desktop.ui.checkin.images import to_icon
from desktop.ui.checkin.page_common import cell, page_layout, read_only_table

log = logging.getLogger(__name__)

THUMB = 48
KEEP, DELETE = "keep", "delete"


def _when(ts: float | None) -> str:
    return "—" if ts is None else f"{datetime.fromtimestamp(ts):%Y-%m-%d %H:%M}"


class PeoplePage(QWidget):
    def __init__(self, ctx: ManagerContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = page_layout(self, "People", "Everyone the front desk can recognise. "
                             "Select a person to rename them, change their photos or delete "
                             "them.")
        self.filter_edit = QLineEdit(objectName="peopleFilter")
        self.filter_edit.setPlaceholderText("Find by name or employee id")
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.enrol_button = QPushButton("Enrol new…", objectName="peopleEnrol")
        self.rename_button = QPushButton("Rename…", objectName="peopleRename")
        self.add_button = QPushButton("Add photos…", objectName="peopleAddPhotos")
        self.photos_button = QPushButton("Remove photos…", objectName="peopleRemovePhotos")
        self.delete_button = QPushButton("Delete…", objectName="peopleDelete")
        self.delete_button.setStyleSheet("color: #b3261e;")
        self.enrol_button.clicked.connect(self._enrol)
        self.rename_button.clicked.connect(self.rename_selected)
        self.add_button.clicked.connect(self._add_photos)
        self.photos_button.clicked.connect(self.remove_photos_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        for b in (self.enrol_button, self.rename_button, self.add_button, self.photos_button,
                  self.delete_button):
            bar.addWidget(b)
        layout.addLayout(bar)
        self.table = read_only_table(["Name", "Employee id", "Photos", "Enrolled",
                                      "Last check-in"], "peopleTable")
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 8)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _: self.rename_selected())
        layout.addWidget(self.table, 1)
        self.status = QLabel(objectName="peopleStatus")
        layout.addWidget(self.status)
        self.people: list[Person] = []
        self._icons: dict[tuple[int, float], object] = {}

    # -- listing ------------------------------------------------------------------------
    def refresh(self) -> None:
        self.status.setStyleSheet("")
        selected = self.selected_person()
        try:
            self.people = self.ctx.gallery.people()
        except FacestyleError as exc:
            self.status.setText(exc.message)
            return
        self.table.setRowCount(len(self.people))
        for row, p in enumerate(self.people):
            name = cell(p.name)
            name.setData(Qt.ItemDataRole.UserRole, p.id)
            icon = self._thumbnail(p)
            if icon is not None:
                name.setIcon(icon)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, cell(p.employee_id or ""))
            photos = cell(str(p.n_templates), align_right=True)
            if p.n_templates == 0:
                photos.setToolTip("No photos: this person cannot be recognised.")
            self.table.setItem(row, 2, photos)
            self.table.setItem(row, 3, cell(_when(p.created_at)))
            self.table.setItem(row, 4, cell(_when(p.last_checkin)))
            if selected is not None and p.id == selected.id:
                self.table.selectRow(row)
        n = len(self.people)
        self.status.setText(f"{n} {'person' if n == 1 else 'people'} enrolled." if n else
                            "No one is enrolled yet. Use Enrol new… to add the first person.")
        self._apply_filter()
        self._update_buttons()

    def _thumbnail(self, p: Person) -> object | None:
        key = (p.id, p.updated_at)
        if key not in self._icons:
            icon = None
            try:
                templates = self.ctx.gallery.templates(p.id)
                if templates:
                    icon = to_icon(self.ctx.gallery.template_chip(templates[0].id), THUMB)
            except (FacestyleError, ValueError) as exc:
                log.warning("no thumbnail for %s: %s", p.name, exc)
            self._icons[key] = icon
        return self._icons[key]

    def _apply_filter(self) -> None:
        text = self.filter_edit.text().strip().lower()
        for row, p in enumerate(self.people):
            hit = not text or text in p.name.lower() or text in (p.employee_id or "").lower()
            self.table.setRowHidden(row, not hit)

    def selected_person(self) -> Person | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        pid = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        return next((p for p in self.people if p.id == pid), None)

    def select(self, person_id: int) -> None:
        for row, p in enumerate(self.people):
            if p.id == person_id:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        has = self.selected_person() is not None
        for b in (self.rename_button, self.add_button, self.photos_button, self.delete_button):
            b.setEnabled(has)
        self.enrol_button.setEnabled(True)

    def _changed(self) -> None:
        self.ctx.people_changed.emit()
        self.refresh()

    # -- actions ------------------------------------------------------------------------
    def _enrol(self) -> None:
        from desktop.ui.checkin.enrol_dialog import EnrolDialog

        dialog = EnrolDialog(self.ctx, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _: self.refresh())
        dialog.open()

    def _add_photos(self) -> None:
        from desktop.ui.checkin.enrol_dialog import EnrolDialog

        person = self.selected_person()
        if person is None:
            return
        dialog = EnrolDialog(self.ctx, person=person, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _: self.refresh())
        dialog.open()

    def rename_selected(self, new_name: str | None = None,
                        employee_id: str | None = None) -> bool:
        """Rename the selected person (asks when ``new_name`` is None)."""
        person = self.selected_person()
        if person is None:
            return False
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename", f"New name for {person.name}:",
                                                QLineEdit.EchoMode.Normal, person.name)
            if not ok:
                return False
        kwargs = {} if employee_id is None else {"employee_id": employee_id}
        try:
            self.ctx.gallery.rename_person(person.id, new_name, **kwargs)
        except (FacestyleError, ValueError) as exc:
            self._error(getattr(exc, "message", None) or f"{str(exc).capitalize()}.")
            return False
        self._changed()
        return True

    def _error(self, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b3261e;")

    def ask_keep_history(self, person: Person) -> str | None:
        """Ask whether to keep the check-in history: KEEP, DELETE or None (cancel)."""
        n = len(self.ctx.gallery.checkins_between(person_id=person.id))
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete person",
                          f"Delete {person.name}?", parent=self)
        box.setInformativeText(
            f"Their {person.n_templates} face template{'s' if person.n_templates != 1 else ''}"
            " and thumbnails are deleted for good, and they will no longer be recognised.\n\n"
            f"They have {n} check-in{'s' if n != 1 else ''} in the log. Keep that history "
            "(listed under their name), or delete it too?")
        keep = box.addButton("Delete, keep history", QMessageBox.ButtonRole.AcceptRole)
        drop = box.addButton("Delete with history", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return KEEP if clicked is keep else DELETE if clicked is drop else None

    def delete_selected(self) -> bool:
        person = self.selected_person()
        if person is None:
            return False
        choice = self.ask_keep_history(person)
        if choice is None:
            return False
        try:
            result = self.ctx.gallery.delete_person(person.id, keep_history=choice == KEEP)
        except FacestyleError as exc:
            self._error(exc.message)
            return False
        self.status.setText(
            f"Deleted {result.name}: {result.templates_deleted} templates; "
            + (f"{result.checkins_kept} check-ins kept." if choice == KEEP else
               f"{result.checkins_deleted} check-ins deleted."))
        self.ctx.people_changed.emit()
        self.ctx.checkins_changed.emit()
        status = self.status.text()
        self.refresh()
        self.status.setText(status)
        return True

    def remove_photos_selected(self) -> None:
        person = self.selected_person()
        if person is None:
            return
        dialog = PhotosDialog(self.ctx, person, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.removed:
            self._changed()


class PhotosDialog(QDialog):
    """A person's stored face chips; tick the ones to remove."""

    def __init__(self, ctx: ManagerContext, person: Person, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.person = person
        self.removed = 0
        self.setWindowTitle(f"Photos of {person.name}")
        self.resize(560, 420)
        self.list = QListWidget(objectName="photosList")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(96, 96))
        self.list.setGridSize(QSize(120, 136))
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.templates = ctx.gallery.templates(person.id)
        for t in self.templates:
            try:
                icon = to_icon(ctx.gallery.template_chip(t.id), 96)
            except (FacestyleError, ValueError):
                icon = None
            when = datetime.fromtimestamp(t.created_at)
            item = QListWidgetItem(f"{'camera' if t.source == 'webcam' else 'file'}\n"
                                   f"{when:%Y-%m-%d}")
            if icon is not None:
                item.setIcon(icon)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, t.id)
            item.setToolTip(f"template {t.id}, encoder {t.model_id}")
            self.list.addItem(item)
        self.note = QLabel("Tick the photos to remove.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.remove_button = buttons.addButton("Remove ticked",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.remove_checked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)

    def checked_ids(self) -> list[int]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def remove_checked(self) -> None:
        ids = self.checked_ids()
        if not ids:
            self.reject()
            return
        if len(ids) == len(self.templates):
            answer = QMessageBox.question(
                self, "Remove every photo",
                f"{self.person.name} will have no photos left and will not be recognised "
                "until new ones are added. Remove them all?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        for tid in ids:
            self.ctx.gallery.remove_template(tid)
            self.removed += 1
        self.accept()
