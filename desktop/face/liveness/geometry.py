"""Planar and non-planar models of how points on a face move between two frames.

Points are (N, 2) float arrays of pixel positions, ``src`` in the earlier frame and
``dst`` in the later one.

* **Planar model**: one homography H (3x3) maps every ``src`` to its ``dst``. This is
  exact for anything flat (a print, a phone screen), however it is tilted, turned, moved
  or brought closer, under a perspective camera. :func:`fit_homography` fits it robustly
  (RANSAC, so a few badly tracked points do not move it) and
  :func:`transfer_errors` gives each point's distance from where H puts it.
* **Non-planar (rigid 3-D) model**: plane plus parallax. Once the dominant plane's H is
  removed, every point of a rigid 3-D object that is off that plane moves along the line
  through one common point, the epipole e, by an amount that depends on its depth
  (Irani and Anandan's plane + parallax). :func:`parallax_share` fits e by least squares
  and says how much of the planar residual that model explains: about 1 for a rigid
  3-D head that turned, about 0.5 for residuals that are only tracking noise (one free
  amount per point explains half of isotropic 2-D noise).
* :func:`non_similarity` measures how far H is from a similarity (shift, rotation in
  the image plane, scale): the foreshortening of a picture being tilted. A flat picture
  that shows this deformation with nothing left over for the planar model is what gives a
  photo away.

Everything is pure numpy plus OpenCV's homography and similarity estimators.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Fewest point pairs a homography is fitted from (4 determine it; more make it robust).
MIN_POINTS = 8
#: RANSAC samples at most: enough for 99 % confidence down to about a third of the pairs
#: on the plane; a real face where fewer fit any plane is not a picture anyway.
RANSAC_ITERS = 300


def fit_homography(src: np.ndarray, dst: np.ndarray, tolerance: float = 1.0
                   ) -> np.ndarray | None:
    """The homography H (3, 3) float64 with ``dst ~ H @ src``, fitted robustly (RANSAC:
    pairs more than ``tolerance`` pixels off do not pull it); None with fewer than
    :data:`MIN_POINTS` pairs or a degenerate set."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) < MIN_POINTS or len(src) != len(dst):
        return None
    h, _ = cv2.findHomography(src, dst, cv2.RANSAC, float(tolerance), maxIters=RANSAC_ITERS,
                              confidence=0.99)
    if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
        return None
    return h / h[2, 2]


def fit_homography_trimmed(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """A least-squares homography refitted once without the pairs more than three times
    the median error off: for small, mostly consistent motions (a correction to an
    earlier fit), far cheaper than RANSAC and as good there. None as
    :func:`fit_homography`."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) < MIN_POINTS or len(src) != len(dst):
        return None
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None:
        return None
    errors = transfer_errors(h, src, dst)
    keep = errors <= max(3.0 * float(np.median(errors)), 1e-6)
    if MIN_POINTS <= int(keep.sum()) < len(src):
        h, _ = cv2.findHomography(src[keep], dst[keep], 0)
    if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
        return None
    return h / h[2, 2]


def transfer(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) mapped by the homography ``h`` (3, 3); (N, 2) float64."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    mapped = pts @ h[:, :2].T + h[:, 2]
    w = mapped[:, 2:3]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return mapped[:, :2] / w


def transfer_errors(h: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N,) distances in pixels between ``dst`` and ``src`` mapped by ``h``."""
    return np.linalg.norm(transfer(h, src) - np.asarray(dst, np.float64).reshape(-1, 2), axis=1)


def non_similarity(h: np.ndarray, points: np.ndarray) -> float:
    """How far ``h`` deforms ``points`` beyond a similarity: the RMS distance between the
    points mapped by ``h`` and by the similarity closest to it, divided by that
    similarity's scale, so the figure is in the pixels of ``points``. 0 for a shift,
    rotation or zoom; grows with the foreshortening of a tilted picture."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    mapped = transfer(h, pts)
    sim, _ = cv2.estimateAffinePartial2D(pts, mapped, method=cv2.LMEDS)  # exact data: cheap
    if sim is None:
        return 0.0
    scale = float(np.sqrt(abs(np.linalg.det(sim[:, :2])))) or 1.0
    fitted = pts @ sim[:, :2].T + sim[:, 2]
    return float(np.sqrt(np.mean(np.sum((mapped - fitted) ** 2, axis=1)))) / scale


def parallax_share(points: np.ndarray, residuals: np.ndarray) -> float:
    """Share (0-1) of the planar residual energy that rigid 3-D parallax explains.

    Args:
        points: (N, 2) positions where the residuals were measured.
        residuals: (N, 2) displacement left after removing the plane's homography.

    The model: every residual lies on the line through its point and a common epipole
    e = (ex, ey), i.e. ``r_y (x - ex) - r_x (y - ey) = 0``, linear in e. The epipole is the
    least-squares solution; what the model leaves is each residual's component across
    that line. Returns 0 when there is no residual to explain.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    res = np.asarray(residuals, np.float64).reshape(-1, 2)
    energy = float(np.sum(res**2))
    if len(pts) < 3 or energy <= 1e-12:
        return 0.0
    # r_y * ex - r_x * ey = r_y * x - r_x * y
    a = np.stack([res[:, 1], -res[:, 0]], axis=1)
    b = res[:, 1] * pts[:, 0] - res[:, 0] * pts[:, 1]
    e, *_ = np.linalg.lstsq(a, b, rcond=None)
    ray = pts - e
    norm = np.linalg.norm(ray, axis=1, keepdims=True)
    ray = ray / np.where(norm < 1e-9, 1.0, norm)
    across = res[:, 0] * ray[:, 1] - res[:, 1] * ray[:, 0]
    return float(max(0.0, 1.0 - np.sum(across**2) / energy))


def ncc(a: np.ndarray, b: np.ndarray) -> float | None:
    """Normalised cross-correlation (-1..1) of two same-shaped grey patches; None when
    either is flat (no texture to compare)."""
    x = np.asarray(a, np.float32).ravel()
    y = np.asarray(b, np.float32).ravel()
    x = x - x.mean()
    y = y - y.mean()
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if denom < 1e-6:
        return None
    return float(np.dot(x, y) / denom)
