"""Picking the content image and the style images: a card per image with a thumbnail.

Each :class:`ImageSlot` takes an image from a file dialog, a drop (file or image data) or
the clipboard ("Paste"); the content slot may also take a snapshot from the Check-in
camera. Every image goes through :func:`desktop.imageio.load_rgb`, so grayscale, CMYK,
16-bit, palette and transparent images arrive as 8-bit RGB, and a bad file gives a message
instead of an exception. Images larger than :data:`MAX_INPUT_SIDE` are reduced on arrival
(the job paints at a few hundred pixels anyway) and say so.

:class:`StyleList` holds one or more style slots, each with a blend slider.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.errors import FacestyleError, ImageError
from desktop.imageio import downscale_to, load_rgb
from desktop.ui.style.qimage import rgb_from_mime, thumbnail

#: Longest side kept of an input image; larger ones are reduced on arrival, with a notice.
MAX_INPUT_SIDE = 2048
THUMB = 84
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"

CameraSource = Callable[[], "np.ndarray | None"]


def prepare_input(rgb: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """Cap an incoming image at :data:`MAX_INPUT_SIDE`; returns it and a notice ("" when
    it was small enough)."""
    h, w = rgb.shape[:2]
    small, scale = downscale_to(rgb, MAX_INPUT_SIDE)
    if scale == 1.0:
        return rgb, ""
    sh, sw = small.shape[:2]
    return small, (f"{Path(name).name} is {w}×{h} pixels; it was reduced to {sw}×{sh} "
                   f"(the painting is at most {MAX_INPUT_SIDE} px).")


class ImageSlot(QFrame):
    """One input image: thumbnail, name, size and the ways to set it.

    Signals: ``changed()`` when the image is set or cleared, ``notice(str)`` for something
    the user should know (an image was reduced), ``failed(Exception)`` for a bad image.
    """

    changed = Signal()
    notice = Signal(str)
    failed = Signal(object)
    remove_requested = Signal()

    def __init__(self, role: str, title: str, parent: QWidget | None = None,
                 removable: bool = False) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName(f"{role}Slot")
        self.setProperty("slot", True)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.image: np.ndarray | None = None
        self.source = ""  # file path, "pasted image" or "camera snapshot"
        self._camera: CameraSource | None = None

        self.thumb = QLabel("Drop an\nimage here")
        self.thumb.setObjectName("thumb")
        self.thumb.setFixedSize(THUMB, THUMB)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(f"<b>{title}</b>")
        self.name = QLabel("none yet")
        self.name.setObjectName("slotName")
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Choose an image file (or drop one on this card).")
        self.open_button.clicked.connect(self.choose_file)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Use the image on the clipboard (Ctrl+V in the tab).")
        self.paste_button.clicked.connect(self.paste)
        self.camera_button = QPushButton("Camera")
        self.camera_button.setToolTip(
            "Take the current frame of the Check-in camera as the content image.")
        self.camera_button.clicked.connect(self.snapshot)
        self.camera_button.setVisible(role == "content")
        self.camera_button.setEnabled(False)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setToolTip("Remove this image")
        self.remove_button.clicked.connect(self._remove)
        self.remove_button.setVisible(removable)

        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.remove_button)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.setSpacing(4)
        for b in (self.open_button, self.paste_button, self.camera_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.extra = QVBoxLayout()  # room for the blend slider of a style
        self.extra.setContentsMargins(0, 0, 0, 0)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(3)
        right.addLayout(head)
        right.addWidget(self.name)
        right.addLayout(buttons)
        right.addLayout(self.extra)
        right.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 6)
        row.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(right, 1)

    # -- setting the image -------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None, source: str = "") -> None:
        """Show ``rgb`` (reduced to :data:`MAX_INPUT_SIDE` if larger), or clear."""
        notice = ""
        if rgb is not None:
            rgb, notice = prepare_input(rgb, source or "the image")
        self.image = rgb
        self.source = source if rgb is not None else ""
        if rgb is None:
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText("Drop an\nimage here")
            self.name.setText("none yet")
            self.name.setToolTip("")
        else:
            self.thumb.setPixmap(thumbnail(rgb, THUMB - 4))
            h, w = rgb.shape[:2]
            label = Path(source).name if source and Path(source).suffix else source
            self.name.setText(f"{label}  ·  {w}×{h}")
            self.name.setToolTip(source)
        self.set_missing(False)
        self.changed.emit()
        if notice:
            self.notice.emit(notice)

    def load_file(self, path: str | Path) -> bool:
        """Load an image file; a bad one emits ``failed`` and keeps the current image."""
        try:
            self.set_image(load_rgb(path), str(path))
        except FacestyleError as exc:
            self.failed.emit(exc)
            return False
        return True

    def choose_file(self) -> None:
        start = str(Path(self.source).parent) if self.source and Path(self.source).exists() \
            else ""
        path, _ = QFileDialog.getOpenFileName(self, f"Choose the {self.role} image", start,
                                              IMAGE_FILTER)
        if path:
            self.load_file(path)

    def paste(self) -> bool:
        """Take the image (or image file) on the clipboard."""
        return self.take_mime(QGuiApplication.clipboard().mimeData(), "The clipboard")

    def take_mime(self, mime, where: str) -> bool:
        try:
            found = rgb_from_mime(mime) if mime is not None else None
        except FacestyleError as exc:
            self.failed.emit(exc)
            return False
        if found is None:
            self.failed.emit(ImageError(f"{where} holds no image.",
                                        "Copy an image or an image file, then try again."))
            return False
        self.set_image(*found)
        return True

    # -- camera ------------------------------------------------------------------------
    def set_camera_source(self, source: CameraSource | None) -> None:
        """Offer the Check-in camera's picture; the button is enabled while it has one."""
        self._camera = source
        try:
            live = source is not None and source() is not None
        except Exception:  # a camera that fails to answer is no camera
            live = False
        self.camera_button.setEnabled(live)
        self.camera_button.setToolTip(
            "Take the current frame of the Check-in camera as the content image." if live
            else "Start the camera in the Check-in tab to take a snapshot from it.")

    def snapshot(self) -> bool:
        frame = self._camera() if self._camera is not None else None
        if frame is None:
            self.failed.emit(ImageError(
                "The Check-in camera has no picture yet.",
                "Start the camera in the Check-in tab, then take the snapshot again."))
            return False
        self.set_image(np.ascontiguousarray(frame[..., :3], dtype=np.uint8), "camera snapshot")
        return True

    # -- look --------------------------------------------------------------------------
    def set_missing(self, missing: bool) -> None:
        """Outline the card in red when the job needs this image and it has none."""
        self.setProperty("missing", missing)
        self.style().unpolish(self)
        self.style().polish(self)

    def _remove(self) -> None:
        self.remove_requested.emit()

    # -- drag and drop -----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.take_mime(event.mimeData(), "The dropped item"):
            event.acceptProposedAction()


class BlendSlot(ImageSlot):
    """A style image with its blend weight (0..100, relative to the other styles)."""

    weight_changed = Signal()

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__("style", f"Style {index}", parent, removable=True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.setToolTip(
            "How much this style counts: the Gram targets of the style images are mixed\n"
            "in proportion to these weights.")
        self.share = QLabel("")
        self.share.setMinimumWidth(36)
        self.share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.blend_row = QWidget()
        row = QHBoxLayout(self.blend_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("blend"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.share)
        self.extra.addWidget(self.blend_row)
        self.slider.valueChanged.connect(self.weight_changed)

    def set_index(self, index: int) -> None:
        self.title.setText(f"<b>Style {index}</b>")


class StyleList(QWidget):
    """The style images: one or more :class:`BlendSlot` cards and "Add a style"."""

    changed = Signal()
    notice = Signal(str)
    failed = Signal(object)

    MAX_STYLES = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slots: list[BlendSlot] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.add_button = QPushButton("+ Add a style image")
        self.add_button.setObjectName("addStyle")
        self.add_button.setToolTip("Blend several styles: their Gram targets are mixed by the "
                                   "blend sliders.")
        self.add_button.clicked.connect(lambda: self.add_slot())
        self._layout.addWidget(self.add_button)
        self.add_slot()

    def add_slot(self) -> BlendSlot:
        slot = BlendSlot(len(self.slots) + 1, self)
        slot.changed.connect(self._update)
        slot.notice.connect(self.notice)
        slot.failed.connect(self.failed)
        slot.weight_changed.connect(self._update)
        slot.remove_requested.connect(lambda s=slot: self.remove_slot(s))
        self.slots.append(slot)
        self._layout.insertWidget(len(self.slots) - 1, slot)
        self._update()
        return slot

    def remove_slot(self, slot: BlendSlot) -> None:
        if len(self.slots) == 1:
            slot.set_image(None)
            return
        self.slots.remove(slot)
        slot.setParent(None)
        slot.deleteLater()
        self._update()

    def slot_for_new_image(self) -> BlendSlot:
        """The first empty slot, or a new one."""
        for slot in self.slots:
            if slot.image is None:
                return slot
        return self.add_slot()

    def filled(self) -> list[BlendSlot]:
        return [s for s in self.slots if s.image is not None]

    def images(self) -> list[np.ndarray]:
        return [s.image for s in self.filled()]  # type: ignore[misc]

    def blend(self) -> list[float] | None:
        """The blend weights of the filled slots (None for a single style)."""
        filled = self.filled()
        if len(filled) < 2:
            return None
        return [s.slider.value() / 100.0 for s in filled]

    def set_blend(self, weights: list[float] | None) -> None:
        filled = self.filled()
        if weights and len(weights) == len(filled):
            for slot, w in zip(filled, weights, strict=True):
                slot.slider.setValue(round(max(0.0, min(1.0, w)) * 100))

    def set_missing(self, missing: bool) -> None:
        for slot in self.slots:
            slot.set_missing(missing)

    def _update(self) -> None:
        many = len(self.slots) > 1
        filled = self.filled()
        total = sum(s.slider.value() for s in filled) or 1
        for i, slot in enumerate(self.slots, start=1):
            slot.set_index(i)
            slot.remove_button.setVisible(many or slot.image is not None)
            slot.blend_row.setVisible(len(filled) > 1 and slot.image is not None)
            slot.share.setText(f"{100 * slot.slider.value() / total:.0f}%")
        self.add_button.setEnabled(len(self.slots) < self.MAX_STYLES)
        self.changed.emit()
