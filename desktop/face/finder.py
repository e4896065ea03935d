"""Finding faces for the live pipeline: whole-frame scans, re-detection in a region around
a known face, and landmarks + chips only for the faces about to be embedded.

:class:`FaceFinder` wraps a face engine. With :class:`desktop.face.api.FaceEngine` it uses
the engine's finer API:

* the detector alone (``engine.detector.detect(image, min_face_size=...)`` or
  ``engine.detect_boxes``), so boxes cost no landmarks or alignment;
* ``engine.landmarks.predict(image, boxes)`` and :func:`desktop.face.align.extract_chips`
  on the *full-resolution* frame, only for the faces whose tracks are due for embedding.

A region re-detection (:meth:`FaceFinder.around`) crops ``grow`` face widths around the
last box and scales the crop so the face is about ``face_px`` wide (80 px is the CNN's
window): small faces are enlarged, large ones reduced, so it costs a small fraction of a
whole-frame scan. The box found is mapped back to frame pixels; landmarks and chip are
then taken from the full-resolution frame, not from the scaled crop.

Any other engine (tests' fakes) needs only ``detect(image) -> [Face]``: its faces, with
the landmarks and chips it made on the crop, are mapped back instead.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import cv2
import numpy as np

from desktop.face.tracking import iou_matrix
from desktop.face.types import Face

#: Least IoU between a re-detected face and the box it was looked for around.
MIN_REDETECT_IOU = 0.2


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class FaceFinder:
    """Detection for the live pipeline (see the module doc)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.fine = hasattr(engine, "detect_boxes") and hasattr(engine, "landmarks")

    # -- whole frame -------------------------------------------------------------------
    def scan(self, image: np.ndarray, min_face: int | None = None) -> list[Face]:
        """Faces in the whole frame, boxes in frame pixels. ``min_face``: the smallest face
        to look for, in pixels (None: the engine's default). With the fine API the faces
        have no landmarks or chips yet (see :meth:`complete`)."""
        if self.fine:
            detector = getattr(self.engine, "detector", None) if min_face is not None else None
            if detector is not None and _accepts(detector.detect, "min_face_size"):
                return list(detector.detect(image, min_face_size=int(min_face)))
            return list(self.engine.detect_boxes(image))
        if min_face is not None and _accepts(self.engine.detect, "min_face_size"):
            return list(self.engine.detect(image, min_face_size=int(min_face)))
        return list(self.engine.detect(image))

    # -- around one face ---------------------------------------------------------------
    def around(self, image: np.ndarray, box: np.ndarray, face_px: float = 90.0,
               grow: float = 1.8) -> Face | None:
        """Re-detect the face last seen at ``box`` (x, y, w, h): the face found in the
        region that overlaps ``box`` best (IoU >= 0.2), in frame pixels, or None."""
        x, y, w, h = (float(v) for v in np.asarray(box).reshape(4))
        size = max(w, h, 1.0)
        side = grow * size
        cx, cy = x + w / 2, y + h / 2
        rows, cols = image.shape[:2]
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        x1, y1 = min(cols, math.ceil(cx + side / 2)), min(rows, math.ceil(cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = min(4.0, max(0.25, face_px / size))
        out_size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        region = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), out_size,
                            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        sx, sy = (x1 - x0) / out_size[0], (y1 - y0) / out_size[1]
        found = (self.engine.detect_boxes(region) if self.fine
                 else self.engine.detect(region))
        best, best_iou = None, MIN_REDETECT_IOU
        target = np.array([[x, y, w, h]])
        for face in found:
            bx, by, bw, bh = face.box
            mapped = (bx * sx + x0, by * sy + y0, bw * sx, bh * sy)
            iou = float(iou_matrix(np.array([mapped]), target)[0, 0])
            if iou < best_iou:
                continue
            best_iou = iou
            landmarks, chip = None, None
            if not self.fine:  # the engine's own landmarks and chip, from the crop
                chip = face.chip
                if face.landmarks is not None:
                    landmarks = (np.asarray(face.landmarks, np.float32)
                                 * np.float32([sx, sy]) + np.float32([x0, y0]))
            best = Face(tuple(round(v) for v in mapped), face.score, landmarks, chip)
        return best

    # -- landmarks and chips -----------------------------------------------------------
    def complete(self, image: np.ndarray, faces: list[Face]) -> None:
        """Fill in landmarks and the aligned chip of ``faces`` that lack a chip, from the
        full-resolution ``image`` (in place; needs the fine API, else a no-op)."""
        todo = [f for f in faces if f.chip is None]
        if not todo or not self.fine:
            return
        from desktop.face.align import extract_chips

        boxes = np.array([f.box for f in todo], np.float64)
        marks = self.engine.landmarks.predict(image, boxes)
        chips = extract_chips(image, marks)
        for face, lm, chip in zip(todo, marks, chips, strict=True):
            face.landmarks = lm
            face.chip = chip
