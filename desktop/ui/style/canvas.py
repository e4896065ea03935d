"""The big preview: an image view with zoom, pan and a before/after split.

:class:`ImageCanvas` shows one image fitted to the widget. The mouse wheel zooms about the
cursor, dragging pans, a double-click fits again. With a ``before`` image set and
``compare`` on, the part left of the divider shows *before* (the content C) and the part
right of it *after* (the generated G); drag the divider or set :meth:`set_split`.

Canvases can be linked so that zooming one zooms the others (the side-by-side view).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor("#26282b")
MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
GRAB_PX = 8  # how close to the divider a press grabs it


class ImageCanvas(QWidget):
    """``set_image(QImage)``; ``zoom()`` is None while fitted, else screen px per image px."""

    view_changed = Signal(object, object)  # zoom (float | None), centre (QPointF, 0..1)
    split_changed = Signal(float)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(100, 80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.placeholder = placeholder
        self.caption = ""
        self._after: QPixmap | None = None
        self._before: QPixmap | None = None
        self._compare = False
        self._split = 0.5
        self._zoom: float | None = None
        self._center = QPointF(0.5, 0.5)
        self._drag_from: QPointF | None = None
        self._drag_center = QPointF(0.5, 0.5)
        self._dragging_split = False
        self.updates = 0  # how many images were shown (tests, diagnostics)

    # -- content -----------------------------------------------------------------------
    def set_image(self, image: QImage | None) -> None:
        self._after = QPixmap.fromImage(image) if image is not None else None
        self.updates += 1
        self.update()

    def set_before(self, image: QImage | None) -> None:
        self._before = QPixmap.fromImage(image) if image is not None else None
        self.update()

    def set_compare(self, on: bool) -> None:
        self._compare = on
        self.update()

    def set_split(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction != self._split:
            self._split = fraction
            self.split_changed.emit(fraction)
            self.update()

    def split(self) -> float:
        return self._split

    def pixmap(self) -> QPixmap | None:
        return self._after

    def has_image(self) -> bool:
        return self._after is not None

    # -- view --------------------------------------------------------------------------
    def zoom(self) -> float | None:
        return self._zoom

    def fit(self) -> None:
        self.set_view(None, QPointF(0.5, 0.5))

    def actual_size(self) -> None:
        self.set_view(1.0, self._center)

    def set_view(self, zoom: float | None, center: QPointF, emit: bool = True) -> None:
        if zoom is not None:
            zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        self._zoom, self._center = zoom, QPointF(center)
        self.update()
        if emit:
            self.view_changed.emit(zoom, QPointF(center))

    def link(self, other: ImageCanvas) -> None:
        """Zoom and pan ``other`` with this one (and back)."""
        self.view_changed.connect(lambda z, c: other.set_view(z, c, emit=False))
        other.view_changed.connect(lambda z, c: self.set_view(z, c, emit=False))

    def _scale(self) -> float:
        if self._after is None:
            return 1.0
        if self._zoom is not None:
            return self._zoom
        w, h = self._after.width(), self._after.height()
        return min((self.width() - 8) / w, (self.height() - 8) / h)

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates."""
        if self._after is None:
            return QRectF()
        s = self._scale()
        w, h = self._after.width() * s, self._after.height() * s
        center = QPointF(0.5, 0.5) if self._zoom is None else self._center
        return QRectF(self.width() / 2 - center.x() * w, self.height() / 2 - center.y() * h,
                      w, h)

    # -- painting ----------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._after is None:
            painter.setPen(QColor("#9aa0a6"))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
            self._draw_caption(painter)
            return
        rect = self.image_rect()
        smooth = self._scale() < 2.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawPixmap(rect, self._after, QRectF(self._after.rect()))
        if self._compare and self._before is not None:
            x = rect.left() + rect.width() * self._split
            painter.save()
            painter.setClipRect(QRectF(rect.left(), rect.top(), x - rect.left(), rect.height()))
            painter.drawPixmap(rect, self._before, QRectF(self._before.rect()))
            painter.restore()
            painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
            top, bottom = max(rect.top(), 0), min(rect.bottom(), self.height())
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
            handle = QRectF(x - 7, (top + bottom) / 2 - 14, 14, 28)
            painter.setBrush(QColor(255, 255, 255, 230))
            painter.drawRoundedRect(handle, 4, 4)
            self._tag(painter, "before · C", QPointF(max(rect.left(), 0) + 8, max(top, 0) + 8),
                      left=True)
            self._tag(painter, "after · G",
                      QPointF(min(rect.right(), self.width()) - 8, max(top, 0) + 8), left=False)
        self._draw_caption(painter)

    def _draw_caption(self, painter: QPainter) -> None:
        if self.caption:
            self._tag(painter, self.caption, QPointF(8, 8), left=True)

    def _tag(self, painter: QPainter, text: str, at: QPointF, left: bool) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF() - 0.5))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        box = QRectF(at.x() if left else at.x() - w, at.y(), w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- mouse -------------------------------------------------------------------------
    def _near_divider(self, pos: QPointF) -> bool:
        if not (self._compare and self._before is not None and self._after is not None):
            return False
        rect = self.image_rect()
        x = rect.left() + rect.width() * self._split
        return abs(pos.x() - x) <= GRAB_PX and rect.top() <= pos.y() <= rect.bottom()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._after is None:
            return
        pos = event.position()
        if self._near_divider(pos):
            self._dragging_split = True
            return
        self._drag_from = pos
        self._drag_center = QPointF(0.5, 0.5) if self._zoom is None else QPointF(self._center)
        if self._zoom is None:
            self._zoom = self._scale()  # start panning from the fitted view
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._dragging_split:
            rect = self.image_rect()
            if rect.width() > 0:
                self.set_split((pos.x() - rect.left()) / rect.width())
            return
        if self._drag_from is not None and self._after is not None:
            rect = self.image_rect()
            delta = pos - self._drag_from
            center = QPointF(self._drag_center.x() - delta.x() / rect.width(),
                             self._drag_center.y() - delta.y() / rect.height())
            self.set_view(self._zoom, center)
            return
        self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos)
                       else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_from = None
        self._dragging_split = False
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._after is None:
            return
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        self.zoom_by(1.25**steps, event.position())

    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under ``about`` (widget px) still."""
        if self._after is None:
            return
        rect = self.image_rect()
        about = about if about is not None else QPointF(self.width() / 2, self.height() / 2)
        # The image point (0..1) under the cursor, before zooming.
        u = (about.x() - rect.left()) / rect.width()
        v = (about.y() - rect.top()) / rect.height()
        zoom = min(max(self._scale() * factor, MIN_ZOOM), MAX_ZOOM)
        w, h = self._after.width() * zoom, self._after.height() * zoom
        center = QPointF(u - (about.x() - self.width() / 2) / w,
                         v - (about.y() - self.height() / 2) / h)
        self.set_view(zoom, center)
