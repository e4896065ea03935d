"""Cheap motion between detector runs: sparse optical flow for face boxes, and scene cuts.

The check-in pipeline runs the face detector only on some frames. On the frames between,
:class:`MotionFollower` moves each face box with pyramidal Lucas-Kanade optical flow
(OpenCV), at a reduced working width (320 px by default):

1. corners (Shi-Tomasi) are picked inside the central part of the box on the previous
   frame;
2. they are tracked to the current frame and back again; points whose forward-backward
   error exceeds ``max_fb_error`` pixels (working scale) are dropped;
3. the box moves by the median displacement and scales by the median ratio of distances
   between point pairs; with fewer than ``min_points`` good points the box is *lost*
   (None), and the pipeline runs the detector at once.

:meth:`MotionFollower.next_frame` also returns a scene-change score: the mean absolute
difference, in grey levels (0..255), between 32x18 thumbnails of consecutive frames. A cut
between shots scores above ~25; motion within a shot stays below ~13 on the faces-dev
clip. The pipeline runs the detector when it exceeds ``cut_threshold`` (20).
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIZE = (32, 18)


class MotionFollower:
    """Follows boxes from the previous frame to the current one (see the module doc).

    Args:
        work_width: width in pixels the frames are reduced to for flow (never enlarged).
        max_points: corners tracked per box.
        min_points: fewer surviving points than this and the box is lost.
        max_fb_error: forward-backward error in working-scale pixels above which a point
            is dropped.
    """

    def __init__(self, work_width: int = 320, max_points: int = 30, min_points: int = 5,
                 max_fb_error: float = 1.0) -> None:
        self.work_width = int(work_width)
        self.max_points = int(max_points)
        self.min_points = int(min_points)
        self.max_fb_error = float(max_fb_error)
        self._prev: np.ndarray | None = None
        self._cur: np.ndarray | None = None
        self.grey: np.ndarray | None = None  # the latest frame in grey, full resolution
        self._prev_thumb: np.ndarray | None = None
        self._scale = 1.0  # working pixels per image pixel
        self._lk = dict(winSize=(15, 15), maxLevel=2,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))

    def reset(self) -> None:
        self._prev = self._cur = self._prev_thumb = None

    def next_frame(self, image: np.ndarray) -> float:
        """Take the next RGB (H, W, 3) frame. Returns the scene-change score in grey levels
        (0 for the first frame)."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        self.grey = gray  # full resolution, for others who need it (liveness)
        h, w = gray.shape[:2]
        self._scale = min(1.0, self.work_width / max(1, w))
        if self._scale < 1.0:
            size = (max(1, round(w * self._scale)), max(1, round(h * self._scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        self._prev, self._cur = self._cur, gray
        thumb = cv2.resize(gray, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        score = 0.0
        if self._prev_thumb is not None:
            score = float(np.abs(thumb - self._prev_thumb).mean())
        self._prev_thumb = thumb
        return score

    def follow(self, boxes: np.ndarray) -> list[np.ndarray | None]:
        """Move ``boxes`` (N, 4) ``(x, y, w, h)`` image pixels from the previous frame to the
        current one; None for a box that could not be followed."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self._prev is None or self._cur is None or self._prev.shape != self._cur.shape:
            return [None] * len(boxes)
        s = self._scale
        points, owners = [], []
        for i, (x, y, w, h) in enumerate(boxes * s):
            pts = self._corners(x, y, w, h)
            if pts is not None:
                points.append(pts)
                owners.append(np.full(len(pts), i))
        if not points:
            return [None] * len(boxes)
        p0 = np.concatenate(points).astype(np.float32).reshape(-1, 1, 2)
        owner = np.concatenate(owners)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(self._prev, self._cur, p0, None, **self._lk)
        p0r, st2, _ = cv2.calcOpticalFlowPyrLK(self._cur, self._prev, p1, None, **self._lk)
        fb = np.linalg.norm((p0 - p0r).reshape(-1, 2), axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= self.max_fb_error)
        a, b = p0.reshape(-1, 2), p1.reshape(-1, 2)
        out: list[np.ndarray | None] = []
        for i, box in enumerate(boxes):
            sel = good & (owner == i)
            if int(sel.sum()) < self.min_points:
                out.append(None)
                continue
            out.append(_moved_box(box, a[sel] / s, b[sel] / s))
        return out

    def _corners(self, x: float, y: float, w: float, h: float) -> np.ndarray | None:
        """Corners inside the central 60 % x 70 % of a box (working pixels), or None."""
        assert self._prev is not None
        H, W = self._prev.shape[:2]
        x0, x1 = int(max(0, x + 0.2 * w)), int(min(W, x + 0.8 * w))
        y0, y1 = int(max(0, y + 0.15 * h)), int(min(H, y + 0.85 * h))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        roi = self._prev[y0:y1, x0:x1]
        pts = cv2.goodFeaturesToTrack(roi, self.max_points, 0.01, 2.0)
        if pts is None or len(pts) < self.min_points:
            return None
        return pts.reshape(-1, 2) + np.array([x0, y0], dtype=np.float32)


def _moved_box(box: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A box moved by the median point displacement and scaled by the median ratio of
    pairwise point distances (clipped to 0.8..1.25 per frame)."""
    shift = np.median(after - before, axis=0)
    n = len(before)
    i, j = np.triu_indices(n, 1)
    d0 = np.linalg.norm(before[i] - before[j], axis=1)
    d1 = np.linalg.norm(after[i] - after[j], axis=1)
    ok = d0 > 1.0
    scale = float(np.median(d1[ok] / d0[ok])) if ok.any() else 1.0
    scale = min(1.25, max(0.8, scale))
    x, y, w, h = box
    cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
    w2, h2 = w * scale, h * scale
    return np.array([cx - w2 / 2, cy - h2 / 2, w2, h2], dtype=np.float64)
