"""Drawing the pipeline's faces over a video frame: boxes, names and d.

Pure drawing with a QPainter, no widgets, so the view stays small and the cost is easy to
see: per face one rounded rectangle, one label plate and two short texts (well under a
millisecond for a handful of faces).

Colours say the state at a glance: green for a recognised person, amber for Unknown,
grey while a new face is still being identified. Each label shows the name and
``d = 0.21``, the squared L2 distance to the person's nearest template (lower is closer;
a name is given only when d <= tau).

With liveness on, a face being challenged shows the request as its title ("Blink,
please", blue) with the name and the seconds left under it; a face refused shows
"Unknown" on red with the reason ("photo suspected · check-in withheld"); a recognised
face not yet judged live says "checking liveness" under its name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

from desktop.face.liveness import CHALLENGE, CHECKING
from desktop.face.pipeline import FaceResult

KNOWN = QColor("#1e9e57")
UNKNOWN = QColor("#e39b00")
PENDING = QColor("#8a939c")
REFUSED = QColor("#c5221f")  # liveness refused the face
ASKING = QColor("#1a73e8")  # liveness asks the person for a blink or a turn
TEXT = QColor("#ffffff")


def d_text(d: float | None) -> str:
    """``d = 0.214`` (squared L2; dimensionless), or an empty string before the first
    identification."""
    if d is None or not math.isfinite(d):
        return ""
    return f"d = {d:.2f}"


def d_tooltip(tau: float, margin: float | None = None) -> str:
    """The explanation shown when the pointer rests on a label."""
    text = f"squared L2 distance, lower is closer; tau = {tau:.2f}"
    if margin:
        text += f" (and the next person at least {margin:.2f} further)"
    return text


def identified(face: FaceResult) -> bool:
    """True once the face's track has been through the matcher at least once (its d is
    None while no one is enrolled)."""
    return face.votes > 0 or face.d is not None


def refused(face: FaceResult) -> bool:
    """Liveness refused this face (a photo or a screen suspected, or no answer)."""
    return face.liveness is not None and face.liveness.refused


def is_unknown(face: FaceResult) -> bool:
    """Identified, no one's name was given, and not refused by liveness (a face that can
    be enrolled)."""
    return face.name is None and identified(face) and not refused(face)


def face_title(face: FaceResult) -> str:
    live = face.liveness
    if live is not None:
        if live.refused:
            return "Unknown"
        if live.state == CHALLENGE and live.prompt:
            return live.prompt
    if face.name is not None:
        return face.name
    return "Unknown" if identified(face) else "Identifying…"


def face_detail(face: FaceResult) -> str:
    """The label's second line: d (and p), or what liveness says."""
    live = face.liveness
    if live is not None and live.refused:
        return f"{live.reason or 'not live'} · check-in withheld"
    if live is not None and live.state == CHALLENGE:
        left = f"{live.seconds_left:.0f} s" if live.seconds_left is not None else ""
        return " · ".join(t for t in (face.name, left) if t)
    detail = d_text(face.d)
    if face.probability is not None:
        p = f"p = {face.probability:.2f}"
        detail = f"{detail} · {p}" if detail else p
    if live is not None and live.state == CHECKING and face.name is not None:
        detail = f"{detail} · checking liveness" if detail else "checking liveness"
    return detail


def face_colour(face: FaceResult) -> QColor:
    live = face.liveness
    if live is not None:
        if live.refused:
            return REFUSED
        if live.state == CHALLENGE:
            return ASKING
    if face.name is not None:
        return KNOWN
    return UNKNOWN if identified(face) else PENDING


@dataclass(frozen=True)
class FrameGeometry:
    """Where a frame of ``size`` (w, h) sits in a widget: uniform ``scale`` and offset."""

    scale: float
    dx: float
    dy: float
    size: tuple[int, int]

    @classmethod
    def fit(cls, frame_size: tuple[int, int], widget_w: int, widget_h: int) -> FrameGeometry:
        """Letterbox: the whole frame, as large as fits, centred."""
        fw, fh = max(1, frame_size[0]), max(1, frame_size[1])
        scale = min(widget_w / fw, widget_h / fh)
        return cls(scale, (widget_w - fw * scale) / 2, (widget_h - fh * scale) / 2,
                   (fw, fh))

    @property
    def target(self) -> QRectF:
        return QRectF(self.dx, self.dy, self.size[0] * self.scale, self.size[1] * self.scale)

    def map_box(self, box: Sequence[float]) -> QRectF:
        x, y, w, h = (float(v) for v in box)
        return QRectF(self.dx + x * self.scale, self.dy + y * self.scale,
                      w * self.scale, h * self.scale)

    def to_frame(self, point: QPointF) -> tuple[float, float]:
        return ((point.x() - self.dx) / self.scale, (point.y() - self.dy) / self.scale)


@dataclass(frozen=True)
class FaceHit:
    """A drawn face, for hit tests (tooltips, the context menu): widget coordinates."""

    face: FaceResult
    box: QRectF
    label: QRectF

    def contains(self, point: QPointF) -> bool:
        return self.box.contains(point) or self.label.contains(point)


def draw_faces(painter: QPainter, faces: Sequence[FaceResult], geom: FrameGeometry,
               *, base_font: QFont | None = None) -> list[FaceHit]:
    """Draw every face; returns where each one went."""
    hits = []
    font = QFont(base_font) if base_font is not None else QFont()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for face in faces:
        box = geom.map_box(face.box)
        colour = face_colour(face)
        painter.setPen(QPen(colour, 3 if face.name is not None or refused(face) else 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(box, 6, 6)
        label = _draw_label(painter, face, box, colour, font, geom)
        hits.append(FaceHit(face, box, label))
    return hits


def _draw_label(painter: QPainter, face: FaceResult, box: QRectF, colour: QColor,
                font: QFont, geom: FrameGeometry) -> QRectF:
    title = face_title(face)
    if face.checked_in and face.name is not None:
        title = "✓ " + title
    detail = face_detail(face)
    size = max(10.0, min(16.0, box.width() / 9))
    title_font = QFont(font)
    title_font.setPointSizeF(size)
    title_font.setBold(True)
    detail_font = QFont(font)
    detail_font.setPointSizeF(size * 0.8)
    fm_t, fm_d = QFontMetricsF(title_font), QFontMetricsF(detail_font)
    pad = 5.0
    width = max(fm_t.horizontalAdvance(title), fm_d.horizontalAdvance(detail) if detail else 0)
    width = max(width + 2 * pad, box.width())
    height = fm_t.height() + (fm_d.height() if detail else 0) + pad
    top = box.top() - height - 2
    target = geom.target
    if top < target.top():  # no room above the box: put the plate below it
        top = min(box.bottom() + 2, target.bottom() - height)
    left = min(max(box.left(), target.left()), max(target.left(), target.right() - width))
    plate = QRectF(left, top, width, height)
    painter.setPen(Qt.PenStyle.NoPen)
    fill = QColor(colour)
    fill.setAlpha(225)
    painter.setBrush(fill)
    painter.drawRoundedRect(plate, 5, 5)
    painter.setPen(TEXT)
    painter.setFont(title_font)
    painter.drawText(QPointF(plate.left() + pad, plate.top() + pad / 2 + fm_t.ascent()), title)
    if detail:
        painter.setFont(detail_font)
        painter.drawText(QPointF(plate.left() + pad,
                                 plate.top() + pad / 2 + fm_t.height() + fm_d.ascent()),
                         detail)
    return plate
