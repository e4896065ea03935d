"""Dense optical flow between video frames, warping by it, and where it can be trusted.

Conventions (as in Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos", 2016):

* A flow is an ``(H, W, 2)`` float32 array of ``(dx, dy)`` displacements in pixels.
  ``flow_between(a, b)`` is the flow *from a to b*: the content at pixel ``p`` of ``a`` is
  found at ``p + flow(p)`` in ``b``.
* For frame ``i`` and its predecessor ``i-1`` the *forward* flow is ``w = flow(i-1 -> i)``
  and the *backward* flow ``ŵ = flow(i -> i-1)``. Warping the previous stylised frame into
  frame ``i`` samples it at ``p + ŵ(p)``: :func:`warp` (bilinear, :func:`cv2.remap`).
* The reliability mask ``c`` (:func:`reliability`, ``(H, W)`` float32 of 0 and 1, on
  frame ``i``) is 0 where the flow cannot be trusted, by the paper's two tests:

  - **disocclusion** (forward-backward inconsistency): with ``w̃(p) = w(p + ŵ(p))`` the
    forward flow seen from frame i, ``|w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5``: following
    the flow back and forth again does not return to ``p`` (within 0.7 px plus 10% of
    the motion), so ``p`` was hidden in frame ``i-1``;
  - **motion boundary**: ``|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002``, where the flow changes
    sharply (forward differences, per pixel);

  and, which the paper leaves implicit, a pixel whose ``p + ŵ(p)`` falls outside frame
  ``i-1`` (content entering at the border) is unreliable too.

Two estimators from OpenCV are offered (:data:`METHODS`): DIS (Kroeger et al. 2016,
preset ``medium``) and Farneback (2003). ``bench/video_style.py`` measures both on the
clip (milliseconds per pair and photometric error over reliable pixels) and on a
synthetic shift with known flow (endpoint error); DIS is the default for the figures
there (see ``docs/benchmarks.md``).

Images are ``(H, W, 3)`` RGB uint8 (or float, for :func:`warp`); flows are estimated on
their luminance.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("dis", "farneback")
DEFAULT_METHOD = "dis"

#: Ruder et al.'s thresholds (pixels squared): disocclusion, motion boundary.
DISOCCLUSION_REL, DISOCCLUSION_ABS = 0.01, 0.5
BOUNDARY_REL, BOUNDARY_ABS = 0.01, 0.002


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.ascontiguousarray(image, dtype=np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


_DIS = threading.local()


def _dis() -> cv2.DISOpticalFlow:
    """One DIS instance per thread (it keeps work buffers; not thread-safe)."""
    dis = getattr(_DIS, "instance", None)
    if dis is None:
        dis = _DIS.instance = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis


def _flow_dis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _dis().calc(a, b, None)


def _flow_farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # OpenCV's sample parameters: pyramid scale 0.5, 3 levels, 15 px window, 3 iterations,
    # polynomial neighbourhood 5 with sigma 1.2
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


_ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "dis": _flow_dis,
    "farneback": _flow_farneback,
}


def check_method(method: str) -> str:
    if method not in _ESTIMATORS:
        raise ValueError(f"unknown optical flow method {method!r}; use {' or '.join(METHODS)}")
    return method


def flow_between(a: np.ndarray, b: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """The dense flow from image ``a`` to image ``b`` (same size): ``(H, W, 2)`` float32."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"frames differ in size: {a.shape[:2]} and {b.shape[:2]}")
    flow = _ESTIMATORS[check_method(method)](_gray(a), _gray(b))
    return np.ascontiguousarray(flow, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32),
                         np.arange(height, dtype=np.float32))
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``out(p) = image(p + flow(p))`` (bilinear; outside the image: the nearest edge).

    ``image``: ``(H, W)`` or ``(H, W, C)``, uint8 or float; ``flow``: ``(H, W, 2)``.
    The result has ``image``'s dtype (uint8 is rounded).
    """
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    xs, ys = _grid(h, w)
    src = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
    out = cv2.remap(src, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out if out.dtype == image.dtype else out.astype(image.dtype)


def outside(flow: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: where ``p + flow(p)`` lies outside the image."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    return (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)


def disoccluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool on the later frame: the forward-backward test fails there.

    ``forward`` = flow(i-1 -> i), ``backward`` = flow(i -> i-1).
    """
    seen_forward = warp(forward, backward)  # w~(p) = w(p + w^(p))
    total = seen_forward + backward
    lhs = (total**2).sum(axis=2)
    rhs = DISOCCLUSION_REL * ((seen_forward**2).sum(axis=2) + (backward**2).sum(axis=2)) \
        + DISOCCLUSION_ABS
    return lhs > rhs


def motion_boundaries(backward: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: ``|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002`` (forward differences)."""
    grad = np.zeros(backward.shape[:2], np.float32)
    for c in range(2):
        comp = backward[..., c]
        dx = np.zeros_like(comp)
        dy = np.zeros_like(comp)
        dx[:, :-1] = comp[:, 1:] - comp[:, :-1]
        dy[:-1, :] = comp[1:, :] - comp[:-1, :]
        grad += dx**2 + dy**2
    return grad > BOUNDARY_REL * (backward**2).sum(axis=2) + BOUNDARY_ABS


def reliability(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s weights ``c`` on the later frame: ``(H, W)`` float32, 1 where the
    backward flow can be trusted, 0 at disocclusions, motion boundaries and where it
    leaves the frame (see the module doc)."""
    bad = disoccluded(forward, backward) | motion_boundaries(backward) | outside(backward)
    return (~bad).astype(np.float32)


@dataclass(frozen=True)
class FramePair:
    """The flow between two frames both ways and the reliability of the backward one.

    ``backward`` maps the later frame onto the earlier one (warp the earlier frame's
    result with it); ``mask`` is :func:`reliability` on the later frame.
    """

    forward: np.ndarray  # (H, W, 2) flow(earlier -> later)
    backward: np.ndarray  # (H, W, 2) flow(later -> earlier)
    mask: np.ndarray  # (H, W) float32 0/1

    @property
    def reliable_fraction(self) -> float:
        return float(self.mask.mean())


def pair(earlier: np.ndarray, later: np.ndarray, method: str = DEFAULT_METHOD) -> FramePair:
    """Flows both ways between two frames and the mask on ``later``."""
    forward = flow_between(earlier, later, method)
    backward = flow_between(later, earlier, method)
    return FramePair(forward, backward, reliability(forward, backward))


def warping_error(earlier_out: np.ndarray, later_out: np.ndarray, flows: FramePair) -> float:
    """Lai et al. (2018)'s warping error between two consecutive *outputs*: the mean
    squared difference, over reliable pixels of the later frame, between the later output
    and the earlier output warped onto it (RGB scaled to 0..1; per pixel summed over the
    three channels, as in their code). NaN when no pixel is reliable."""
    warped = warp(earlier_out.astype(np.float32) / 255.0, flows.backward)
    diff = ((later_out.astype(np.float32) / 255.0 - warped) ** 2).sum(axis=2)
    weight = flows.mask
    total = float(weight.sum())
    return float((diff * weight).sum() / total) if total else float("nan")
