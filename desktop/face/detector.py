"""Face detection: dlib's MMOD CNN face detector in torch, and an optional Haar fast mode.

The CNN is ``net_type`` of dlib's ``examples/dnn_mmod_face_detection_ex.cpp``
(``mmod_human_face_detector.dat``, trained by Davis King with the max-margin object
detection loss)::

    downsampler: 3 x (conv 5x5/2 + affine + relu), 16, 32, 32 filters   (8x smaller)
    rcon5:       3 x (conv 5x5/1 + affine + relu), 45 filters
    score:       conv 9x9/1, 1 filter -> one detection score per position

It slides one 80x80 window over an image pyramid whose levels shrink by 5/6
(``pyramid_down<6>``). As dlib does, the levels are tiled into one image (10 px of the
mean colour between tiles, 11 around), the network runs once over the tiled image, every
position scoring above the threshold becomes a window centred on the input pixel the
position maps to, the window is mapped back to the original image through its level,
and windows are suppressed greedily, best first, when they overlap a kept one by more than
the file's NMS test (intersection over the *bounding* union > 0.338).

Parity and speed:

* ``FaceDetector.detect(image, min_face_size=80, upsample=0)`` runs dlib's own computation
  (the whole pyramid, tiled, fp32): boxes match ``dlib.cnn_face_detection_model_v1`` (IoU
  >= 0.9, the tests check it).
* Faces smaller than the 80 px window need an upsampled image (``upsample=n`` doubles it n
  times exactly as dlib's ``pyramid_up`` does, or ``min_face_size`` < 80 scales it up).
* A larger ``min_face_size`` shrinks the image by 80 / min_face_size first, which skips the
  biggest (most expensive) pyramid levels: the check-in default
  (:data:`DEFAULT_MIN_FACE_SIZE`) is chosen for a front-desk camera, see
  docs/benchmarks.md.

Boxes come back as :class:`~desktop.face.types.Face` with ``box`` = (x, y, w, h) in the
original image's pixels (dlib's inclusive rectangle: w = right - left + 1), best first.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.device import onednn_fused_conv_available
from desktop.face.dlib_nets import DETECTOR_DEFINITION, Network, load_network
from desktop.face.encoder import Affine, copy_dlib_weights, fold_affine_pairs
from desktop.face.onednn import PackedConv
from desktop.face.types import DEFAULT_MIN_FACE_SIZE, Face

#: dlib's detection window (the file says 80x80) and pyramid rate (pyramid_down<6>: 5/6).
PYRAMID_DOWN = 6
#: Smallest pyramid level dlib builds (rows).
MIN_LEVEL_HEIGHT = 5


# ------------------------------------------------------------------------------------------
# The network
# ------------------------------------------------------------------------------------------
def _conv_affine_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    padding = 0 if stride != 1 else 2  # dlib: padding nr/2 only at stride 1
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride, padding), Affine(cout), nn.ReLU())


class MMODNet(nn.Module):
    """(N, 3, H, W) normalised RGB ((x - mean) / 256) -> (N, 1, H', W') detection scores,
    one score per 8 input pixels (three 5x5/2 convolutions without padding)."""

    def __init__(self) -> None:
        super().__init__()
        self.downsampler = nn.Sequential(
            _conv_affine_relu(3, 16, 2), _conv_affine_relu(16, 32, 2), _conv_affine_relu(32, 32, 2)
        )
        self.rcon5 = nn.Sequential(
            _conv_affine_relu(32, 45, 1), _conv_affine_relu(45, 45, 1), _conv_affine_relu(45, 45, 1)
        )
        self.score = nn.Conv2d(45, 1, 9, 1, 4)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the last rcon5: (N, 45, H', W') features."""
        return self.rcon5[1](self.rcon5[0](self.downsampler(x)))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """The last rcon5 and the 9x9 score convolution: each score sees features within
        :data:`HEAD_REACH` cells of it."""
        return self.score(self.rcon5[2](features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def dlib_layers(self) -> Iterator[nn.Module]:
        """Weighted layers in dlib's file order (input side first)."""
        for stage in (*self.downsampler, *self.rcon5):
            yield stage[0]
            yield stage[1]
        yield self.score

    def fold_affines(self) -> MMODNet:
        """Fold each affine into its convolution, in place (inference only)."""
        fold_affine_pairs((stage, "0", "1") for stage in (*self.downsampler, *self.rcon5))
        return self


class FusedMMOD:
    """A folded :class:`MMODNet`'s ``trunk`` and ``head`` on oneDNN kernels: each
    conv + ReLU as one pre-packed, fused convolution (see :class:`PackedConv`). Same
    results; 640x360 frames took 14.5 ms instead of 19.6 (bf16, 2 threads)."""

    def __init__(self, folded: MMODNet) -> None:
        self.trunk_convs = [PackedConv(stage[0], relu=True)
                            for stage in (*folded.downsampler, *folded.rcon5[:2])]
        self.head_conv = PackedConv(folded.rcon5[2][0], relu=True)
        self.score = PackedConv(folded.score)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.trunk_convs:
            x = conv(x)
        return x

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.score(self.head_conv(features))


#: Score-map cells a score depends on, each way, in the head (rcon5: 2, score conv: 4).
HEAD_REACH = 6
#: In bf16 mode, cells scoring above threshold - REFINE_MARGIN are re-scored in fp32
#: (bf16's score error on faces-dev is under 0.01; the margin leaves ten times that).
REFINE_MARGIN = 0.1


def load_detector_network(path: str | os.PathLike[str], use_cache: bool = True) -> Network:
    """Parse (or load from the cache) and check dlib's MMOD face detector file."""
    return load_network(path, DETECTOR_DEFINITION, "loss_mmod", "input_rgb_image_pyramid",
                        use_cache=use_cache)


def output_to_input_map(network: Network) -> tuple[int, int]:
    """(scale, offset) with input = scale * output + offset, for rows and columns alike:
    dlib's ``map_output_to_input`` through every layer (p * stride - padding + nr / 2)."""
    scale, offset = 1, 0
    for layer in reversed(network.layers):
        if layer.kind in ("con", "max_pool", "avg_pool"):
            stride, padding = layer.fields["stride"][0], layer.fields["padding"][0]
            # p_in = p * stride - padding + nr // 2, composed from the output side
            offset = offset * stride - padding + layer.fields["nr"] // 2
            scale *= stride
    return scale, offset


# ------------------------------------------------------------------------------------------
# dlib's tiled image pyramid (image_pyramid.h: compute_tiled_image_pyramid_details)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rect:
    """dlib's rectangle: inclusive integer corners."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)

    def intersects(self, other: Rect) -> bool:
        return (max(self.left, other.left) <= min(self.right, other.right)
                and max(self.top, other.top) <= min(self.bottom, other.bottom))


def pyramid_level_sizes(rows: int, cols: int, down: int = PYRAMID_DOWN) -> list[tuple[int, int]]:
    """(rows, cols) of each pyramid level: floor(rate * size) until rows < 5."""
    rate = (down - 1.0) / down
    sizes = [(rows, cols)]
    while True:
        rows, cols = math.floor(rate * rows), math.floor(rate * cols)
        if rows * cols == 0 or rows < MIN_LEVEL_HEIGHT:
            return sizes
        sizes.append((rows, cols))


def tiled_pyramid_layout(
    rows: int, cols: int, padding: int = 10, outer_padding: int = 11, down: int = PYRAMID_DOWN
) -> tuple[list[Rect], int, int]:
    """Where each pyramid level sits in dlib's tiled image, and that image's (rows, cols).

    Levels go down a first column until the rest fit, in a second column from the bottom
    right upwards, beside the first; levels that would overlap level 0 are dropped.
    """
    rects = [Rect(0, 0, c - 1, r - 1) for r, c in pyramid_level_sizes(rows, cols, down)]
    total_height = sum(r.height + padding for r in rects) - 2 * padding
    first = rects[0]
    height, prev_width = 0, 0
    for r in rects:
        if (r.width <= first.width - prev_width - padding
                and (height - first.height) * 2 >= total_height - first.height):
            break
        height += r.height + padding
        prev_width = r.width
    height -= padding
    width = first.width
    out_rows, out_cols = height + 2 * outer_padding, width + 2 * outer_padding

    y, i = outer_padding, 0
    while y < height + outer_padding and i < len(rects):
        rects[i] = rects[i].translate(outer_padding, y)
        y += rects[i].height + padding
        i += 1
    y -= padding
    while i < len(rects):
        x1, y1 = outer_padding + width - 1, y - 1
        x2, y2 = x1 - rects[i].right, y1 - rects[i].bottom
        rect = Rect(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        if rects[0].intersects(rect):
            break
        rects[i] = rect
        y -= rect.height + padding
        i += 1
    return rects[:i], out_rows, out_cols


def build_tiled_pyramid(image: torch.Tensor, rects: list[Rect], rows: int, cols: int,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """(1, 3, h, w) normalised image -> (1, 3, rows, cols) tiled pyramid, zeros between
    tiles; each level is the previous one resized bilinearly with aligned corners
    (dlib's ``resize_image``, as its input layer builds it). Levels are computed in the
    image's dtype and written into ``out`` (reused between frames: only the tiles are
    rewritten, the zero padding stays) or a new zero tensor."""
    if out is None:
        out = image.new_zeros((image.shape[0], image.shape[1], rows, cols))
    level = image
    for i, r in enumerate(rects):
        if i:
            level = F.interpolate(level, size=(r.height, r.width), mode="bilinear",
                                  align_corners=True)
        out[:, :, r.top:r.bottom + 1, r.left:r.right + 1] = level
    return out


def nearest_rect(rects: list[Rect], x: float, y: float) -> int:
    """dlib's nearest_rect: the first rect holding the point, else the closest one."""
    px, py = math.floor(x + 0.5), math.floor(y + 0.5)
    best, best_dist = 0, math.inf
    for i, r in enumerate(rects):
        if r.left <= px <= r.right and r.top <= py <= r.bottom:
            return i
        nx, ny = min(max(px, r.left), r.right), min(max(py, r.top), r.bottom)
        dist = math.hypot(nx - px, ny - py)
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def _point_up(v: float, levels: int, down: int = PYRAMID_DOWN) -> float:
    ratio = down / (down - 1.0)
    for _ in range(levels):
        v = v * ratio + 0.3
    return v


def _lround(v: float) -> int:
    """C's lround: halves away from zero."""
    return math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)


def dlib_box_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int],
                     iou_threshold: float, covered_threshold: float) -> bool:
    """dlib's test_box_overlap on inclusive (l, t, r, b) rectangles: intersection over the
    *bounding box* of both > iou_threshold, or over either area > covered_threshold."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return False
    inner = iw * ih
    outer = (max(a[2], b[2]) - min(a[0], b[0]) + 1) * (max(a[3], b[3]) - min(a[1], b[1]) + 1)
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return (inner / outer > iou_threshold or inner / area_a > covered_threshold
            or inner / area_b > covered_threshold)


# ------------------------------------------------------------------------------------------
# The detector
# ------------------------------------------------------------------------------------------
class FaceDetector:
    """dlib's CNN face detector in torch. Thread-safe: calls are serialised by a lock.

    Args:
        path: the detector file (default: from face_recognition_models).
        device: torch device (default: CUDA when present, else CPU).
        precision: ``"fp32"``; ``"bf16"`` (on CPUs with native bf16, and CUDA): the trunk
            runs in bf16, and every region scoring near the threshold is re-scored by the
            head in fp32, so boxes and scores stay dlib's (the score map is flat near a
            face, and bf16's rounding alone moves boxes by a cell or a pyramid level);
            ``"auto"``: bf16 where the hardware has it, else fp32.
        min_face_size: default smallest face, in pixels of the image given to ``detect``.
        score_threshold: default threshold on dlib's detection score (dlib uses 0).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        score_threshold: float = 0.0,
        use_cache: bool = True,
    ) -> None:
        from desktop.device import pick_device
        from desktop.model_files import FACE_DETECTOR, require

        file = Path(path) if path is not None else require(FACE_DETECTOR)
        network = load_detector_network(file, use_cache=use_cache)
        self.network_info = network
        self.device = pick_device("auto") if device is None else torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        net = MMODNet()
        copy_dlib_weights(net.dlib_layers(), network)
        net = net.fold_affines().eval()
        # fp32 copy of the head, to confirm what the bf16 network proposes
        self.head32 = copy.deepcopy(net).to(self.device) if self.dtype != torch.float32 else None
        self.net = net.to(self.device, self.dtype, memory_format=torch.channels_last)
        on_onednn = self.device.type == "cpu" and onednn_fused_conv_available()
        self._runner: MMODNet | FusedMMOD = FusedMMOD(self.net) if on_onednn else self.net
        self.mean = torch.tensor(network.input["mean"], dtype=torch.float32,
                                 device=self.device).view(1, 3, 1, 1)
        self.padding = int(network.input["pyramid_padding"])
        self.outer_padding = int(network.input["pyramid_outer_padding"])
        opts = network.loss
        (self.window_w, self.window_h, _), = opts["detector_windows"][:1]
        self.nms_iou = float(opts["nms_iou_threshold"])
        self.nms_covered = float(opts["nms_percent_covered_threshold"])
        self.out_scale, self.out_offset = output_to_input_map(network)
        self.min_face_size = int(min_face_size)
        self.score_threshold = float(score_threshold)
        self._layout: tuple[tuple[int, int], list[Rect], torch.Tensor] | None = None
        self._lock = threading.Lock()

    @property
    def window_size(self) -> int:
        """The detection window's side in pixels (80): dlib's smallest face at scale 1."""
        return int(self.window_w)

    # -- the steps ------------------------------------------------------------------------
    def _normalised(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, H, W) float32 (x - mean) / 256, channels_last memory."""
        arr = np.ascontiguousarray(image)
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        x = x.to(self.device).permute(2, 0, 1).unsqueeze(0).float()
        return (x - self.mean) / 256.0

    def _tiled(self, x: torch.Tensor) -> tuple[torch.Tensor, list[Rect]]:
        rows, cols = x.shape[2:]
        if self._layout is None or self._layout[0] != (rows, cols):
            rects, nr, nc = tiled_pyramid_layout(rows, cols, self.padding, self.outer_padding)
            buffer = torch.zeros((1, 3, nr, nc), dtype=self.dtype, device=self.device)
            buffer = buffer.contiguous(memory_format=torch.channels_last)
            self._layout = ((rows, cols), rects, buffer)
        _, rects, buffer = self._layout
        return build_tiled_pyramid(x, rects, *buffer.shape[2:], out=buffer), rects

    @torch.inference_mode()
    def score_map(self, image: np.ndarray, threshold: float | None = None
                  ) -> tuple[np.ndarray, list[Rect]]:
        """Run the network over dlib's tiled pyramid of an RGB uint8 image.

        Returns the (H', W') score map and the pyramid levels' rects in the tiled image.
        In bf16 mode, cells near or above ``threshold`` carry fp32 scores.
        """
        tiled, rects = self._tiled(self._normalised(image))
        features = self._runner.trunk(tiled)
        scores = self._runner.head(features)[0, 0].float().cpu().numpy()
        if self.head32 is not None:
            limit = self.score_threshold if threshold is None else threshold
            scores = self._rescore_fp32(features, scores, limit - REFINE_MARGIN)
        return scores, rects

    @torch.inference_mode()
    def _rescore_fp32(self, features: torch.Tensor, scores: np.ndarray, floor: float
                      ) -> np.ndarray:
        """Recompute the head in fp32 over each connected region of cells above ``floor``,
        from features cropped HEAD_REACH cells wider (zero-padded only at the map's real
        border, so the recomputed cells are exactly what a full fp32 head would give)."""
        import cv2

        mask = (scores > floor).astype(np.uint8)
        if not mask.any():
            return scores
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        rows, cols = scores.shape
        out = scores.copy()
        for x, y, w, h, _ in stats[1:count]:
            y0, y1 = max(0, y - HEAD_REACH), min(rows, y + h + HEAD_REACH)
            x0, x1 = max(0, x - HEAD_REACH), min(cols, x + w + HEAD_REACH)
            crop = features[:, :, y0:y1, x0:x1].float().contiguous()
            exact = self.head32.head(crop)[0, 0].cpu().numpy()
            out[y:y + h, x:x + w] = exact[y - y0:y - y0 + h, x - x0:x - x0 + w]
        return out

    def _decode(self, scores: np.ndarray, rects: list[Rect], threshold: float
                ) -> list[tuple[float, tuple[float, float, float, float]]]:
        """Positions scoring above ``threshold`` -> (score, window in image coordinates),
        best first (dlib's tensor_to_dets + tensor_space_to_image_space)."""
        rs, cs = np.nonzero(scores > threshold)
        order = np.argsort(-scores[rs, cs], kind="stable")
        # dlib's centered_drect(p, w, h) spans p -/+ (w - 1) / 2: w pixels inclusive
        half_w, half_h = (self.window_w - 1) / 2, (self.window_h - 1) / 2
        dets = []
        for r, c in zip(rs[order], cs[order], strict=True):
            px = self.out_scale * float(c) + self.out_offset
            py = self.out_scale * float(r) + self.out_offset
            level = nearest_rect(rects, px, py)
            ox, oy = rects[level].left, rects[level].top
            box = (_point_up(px - half_w - ox, level), _point_up(py - half_h - oy, level),
                   _point_up(px + half_w - ox, level), _point_up(py + half_h - oy, level))
            dets.append((float(scores[r, c]), box))
        return dets

    def _nms(self, dets: list[tuple[float, tuple[float, float, float, float]]]
             ) -> list[tuple[float, tuple[int, int, int, int]]]:
        kept: list[tuple[float, tuple[int, int, int, int]]] = []
        for score, box in dets:
            rect = tuple(_lround(v) for v in box)
            if any(dlib_box_overlap(k, rect, self.nms_iou, self.nms_covered) for _, k in kept):
                continue
            kept.append((score, rect))  # type: ignore[arg-type]
        return kept

    # -- public ---------------------------------------------------------------------------
    def detect(
        self,
        image: np.ndarray,
        min_face_size: int | None = None,
        score_threshold: float | None = None,
        upsample: int = 0,
    ) -> list[Face]:
        """Faces in an RGB uint8 (H, W, 3) image, best score first.

        Args:
            min_face_size: smallest face to look for, in pixels (default: the detector's).
                The image is scaled by window / min_face_size before the pyramid: above 80
                this skips the largest levels, below 80 it upsamples.
            score_threshold: keep windows scoring above this (dlib: 0).
            upsample: dlib's ``upsample_num_times``: double the image this many times with
                dlib's ``pyramid_up`` first (then ``min_face_size`` must be 80 for parity).
        """
        import cv2

        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, not {image.shape} "
                             f"{image.dtype}")
        threshold = self.score_threshold if score_threshold is None else float(score_threshold)
        min_face = self.min_face_size if min_face_size is None else int(min_face_size)
        scale = self.window_size / max(1, min_face)
        work = image
        if abs(scale - 1.0) > 1e-6:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            work = cv2.resize(image, size, interpolation=interp)
            sx, sy = image.shape[1] / size[0], image.shape[0] / size[1]
        else:
            sx = sy = 1.0
        for _ in range(max(0, int(upsample))):
            work = dlib_pyramid_up(work)
        if work.shape[0] < MIN_LEVEL_HEIGHT or work.shape[1] < MIN_LEVEL_HEIGHT:
            return []
        with self._lock:
            scores, rects = self.score_map(work, threshold)
        kept = self._nms(self._decode(scores, rects, threshold))
        faces = []
        for score, (left, top, right, bottom) in kept:
            if upsample:
                left, top, right, bottom = dlib_rect_down(left, top, right, bottom, upsample)
            x0, y0 = left * sx, top * sy
            x1, y1 = (right + 1) * sx, (bottom + 1) * sy
            box = (round(x0), round(y0), round(x1 - x0), round(y1 - y0))
            faces.append(Face(box=box, score=score))
        return faces

    __call__ = detect


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CUDA and on CPUs with native bf16, else ``fp32``; ``bf16`` on a
    CPU without bf16 kernels falls back to ``fp32`` (said once, see
    :func:`desktop.device.cpu_precision`)."""
    from desktop.device import cpu_precision

    return cpu_precision(precision, device, what="Face detector")


def dlib_pyramid_up(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up`` with ``pyramid_down<2>``: the image grows to rect_up of its
    own rectangle ((2W + 2) x (2H + 1)) by bilinear resizing with aligned corners."""
    rows, cols = image.shape[:2]
    out_rows, out_cols = _lround((rows - 1 + 0.75) * 2) + 1, _lround((cols - 1 + 1.25) * 2) + 1
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()
    y = F.interpolate(x, size=(out_rows, out_cols), mode="bilinear", align_corners=True)
    # dlib assigns a double to an rgb_pixel by truncation towards zero after clamping
    return y[0].permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy()


def dlib_rect_down(left: int, top: int, right: int, bottom: int, levels: int
                   ) -> tuple[int, int, int, int]:
    """``pyramid_down<2>::rect_down(rect, levels)``, rounded back to a dlib rectangle."""
    def down(v: float, shift: float) -> float:
        for _ in range(levels):
            v = v / 2.0 - shift
        return v

    return (_lround(down(left, 1.25)), _lround(down(top, 0.75)),
            _lround(down(right, 1.25)), _lround(down(bottom, 0.75)))


# ------------------------------------------------------------------------------------------
# Fast mode: OpenCV's bundled Haar cascade (never the default)
# ------------------------------------------------------------------------------------------
class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (``cv2.data.haarcascades``): fast, less accurate,
    more false alarms on textures; an option for slow machines, never the default.
    Scores are the cascade's level weights (not comparable with MMOD scores)."""

    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, min_face_size: int = DEFAULT_MIN_FACE_SIZE, score_threshold: float = 0.0):
        import cv2

        from desktop.errors import FacestyleError, ModelFileError

        if not hasattr(cv2, "CascadeClassifier"):
            raise FacestyleError(
                f"The fast (Haar) face detector needs OpenCV 4; this is OpenCV "
                f"{cv2.__version__}, which no longer ships Haar cascades.",
                "Use the default CNN detector, or install 'opencv-python-headless<5'.")
        path = Path(cv2.data.haarcascades) / self.CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ModelFileError(f"OpenCV's Haar cascade {path} could not be loaded.",
                                 "Reinstall opencv-python-headless.")
        self.min_face_size = int(min_face_size)
        self.score_threshold = float(score_threshold)
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        """Whether this OpenCV build still has Haar cascades (OpenCV 4 does, 5 does not)."""
        import cv2

        return hasattr(cv2, "CascadeClassifier")

    def detect(self, image: np.ndarray, min_face_size: int | None = None,
               score_threshold: float | None = None, upsample: int = 0) -> list[Face]:
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
        size = self.min_face_size if min_face_size is None else int(min_face_size)
        threshold = self.score_threshold if score_threshold is None else float(score_threshold)
        with self._lock:
            boxes, _, weights = self.cascade.detectMultiScale3(
                gray, scaleFactor=1.1, minNeighbors=5, minSize=(size, size),
                outputRejectLevels=True)
        faces = [Face(box=tuple(int(v) for v in b), score=float(w))
                 for b, w in zip(boxes, np.ravel(weights), strict=True) if w > threshold]
        return sorted(faces, key=lambda f: -f.score)

    __call__ = detect
