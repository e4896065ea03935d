"""The live video: the newest camera frame, with the latest inference results drawn on it.

The view never waits for anything: the tab hands it the newest frame and the newest
:class:`~desktop.face.pipeline.FrameResult` (``show_frame``) at the display rate, and it
repaints. A frame is wrapped as a QImage without copying and scaled while painting.

Pointer interactions: resting on a face's label shows what d means (and tau); a right
click on a face offers "Enrol this person…" (for an Unknown face) and, anywhere, "Choose
camera or video file…".
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QFont, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolTip, QWidget

from desktop.face.pipeline import FaceResult, FrameResult
from desktop.face.types import DEFAULT_TAU
from desktop.ui.checkin.banners import SourceBanner, WelcomeBanner
from desktop.ui.checkin.images import wrap_rgb
from desktop.ui.checkin.overlay import (
    FaceHit,
    FrameGeometry,
    d_tooltip,
    draw_faces,
    is_unknown,
)

BACKGROUND = QColor("#16181b")


class VideoView(QWidget):
    """Paints the newest frame letterboxed, the faces over it, and a short notice line."""

    enrol_requested = Signal(int)  # track id of an Unknown face
    choose_source_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("videoView")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: np.ndarray | None = None
        self._frame_index = -1
        self._faces: tuple[FaceResult, ...] = ()
        self._hits: list[FaceHit] = []
        self._notice = ""
        self._placeholder = "No video yet"
        self.tau = DEFAULT_TAU
        self.margin: float | None = None
        self.can_enrol = True
        self.paints = 0  # frames painted (for the display FPS and tests)
        self.welcome = WelcomeBanner(self)
        self.source_banner = SourceBanner(self)
        self.source_banner.choose_requested.connect(self.choose_source_requested)

    # -- what to show -----------------------------------------------------------------
    @property
    def frame_index(self) -> int:
        return self._frame_index

    @property
    def faces(self) -> tuple[FaceResult, ...]:
        return self._faces

    def show_frame(self, image: np.ndarray | None, index: int,
                   result: FrameResult | None) -> None:
        """Show ``image`` ((H, W, 3) RGB uint8, kept by reference) with ``result``'s faces.

        Faces of a result computed on a frame of another size are not drawn (a camera
        switch), so boxes never land in the wrong place.
        """
        self._image = image
        self._frame_index = index
        faces: tuple[FaceResult, ...] = ()
        if result is not None and image is not None and \
                tuple(result.size) == (image.shape[1], image.shape[0]):
            faces = result.faces
        self._faces = faces
        self.update()

    def clear_frame(self, placeholder: str = "No video") -> None:
        self._image = None
        self._frame_index = -1
        self._faces = ()
        self._hits = []
        self._placeholder = placeholder
        self.update()

    def set_notice(self, text: str) -> None:
        """A short line over the top of the video (e.g. "Loading face models…")."""
        if text != self._notice:
            self._notice = text
            self.update()

    @property
    def notice(self) -> str:
        return self._notice

    # -- painting -----------------------------------------------------------------------
    def geometry_for_frame(self) -> FrameGeometry | None:
        if self._image is None:
            return None
        h, w = self._image.shape[:2]
        return FrameGeometry.fit((w, h), self.width(), self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        geom = self.geometry_for_frame()
        if geom is not None and self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(geom.target, wrap_rgb(self._image))
            self._hits = draw_faces(painter, self._faces, geom, base_font=self.font())
        else:
            self._hits = []
            if not self.source_banner.isVisible():
                painter.setPen(QColor("#9aa0a6"))
                font = QFont(self.font())
                font.setPointSizeF(font.pointSizeF() * 1.3)
                painter.setFont(font)
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._placeholder)
        if self._notice:
            self._paint_notice(painter)
        painter.end()
        self.paints += 1

    def _paint_notice(self, painter: QPainter) -> None:
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.1)
        painter.setFont(font)
        fm = painter.fontMetrics()
        w = fm.horizontalAdvance(self._notice) + 28
        h = fm.height() + 14
        rect = QRectF((self.width() - w) / 2, 14, w, h)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20, 200))
        painter.drawRoundedRect(rect, h / 2, h / 2)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._notice)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.welcome.isVisible():
            self.welcome.place(self.rect())
        if self.source_banner.isVisible():
            self.source_banner.place(self.rect())

    # -- pointer ------------------------------------------------------------------------
    def face_at(self, pos: QPoint | QPointF) -> FaceResult | None:
        point = QPointF(pos)
        for hit in reversed(self._hits):  # as last painted, labels included
            if hit.contains(point):
                return hit.face
        geom = self.geometry_for_frame()  # faces set since, not painted yet
        if geom is not None:
            for face in reversed(self._faces):
                if geom.map_box(face.box).contains(point):
                    return face
        return None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            face = self.face_at(event.pos())
            if face is not None and face.withheld is not None and face.liveness is not None:
                QToolTip.showText(event.globalPos(), f"Recognised as {face.withheld}, but "
                                  f"{face.liveness.reason}: not checked in.", self)
            elif face is not None and face.d is not None:
                QToolTip.showText(event.globalPos(), d_tooltip(self.tau, self.margin), self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def context_menu(self, pos: QPoint) -> QMenu:
        """The menu a right click at ``pos`` opens (built separately for tests)."""
        menu = QMenu(self)
        face = self.face_at(pos)
        if face is not None and is_unknown(face):
            action = menu.addAction("Enrol this person…")
            action.setEnabled(self.can_enrol)
            action.triggered.connect(lambda: self.enrol_requested.emit(face.track_id))
            menu.addSeparator()
        menu.addAction("Choose camera or video file…").triggered.connect(
            self.choose_source_requested)
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.context_menu(event.pos()).popup(event.globalPos())
