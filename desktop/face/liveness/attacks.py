"""Synthetic presentation attacks: a still face photo, printed or on a phone, held up to a
front-desk camera and moved by hand. For the tests and ``bench/liveness.py``; no video file
is ever written or committed.

The scene is a pinhole camera (``width`` x ``height`` pixels, horizontal field of view
``fov_deg``) looking at a flat picture ``distance_m`` away, in front of a still background.
The picture is the photo as printed (:func:`printed`: paper margin, softened, duller
colours, halftone-like grain) or as shown on a phone (:func:`on_phone`: a dark bezel around
a bright screen with a faint pixel grid). Its pose over time follows a :class:`Motion`:

* ``tilt``: rotations about the vertical and horizontal axes (the picture turned and
  tipped, as a person waves it), in degrees;
* ``sway``: sideways and up-down translation, in metres;
* ``approach``: the distance shrinks (or grows) by this fraction over the clip;
* hand tremor on top: smooth random jitter of about ``tremor_deg`` and ``tremor_m``.

Each frame is the picture warped by the homography of its pose, averaged over the
exposure (``shutter``, a share of the frame time: motion blur), with a glare on the
picture that slides as it turns (``glare`` grey levels: a lamp's reflection), fresh camera
noise (``noise`` grey levels, Gaussian), a light blur and JPEG compression (a webcam's
MJPEG, ``jpeg_quality``), so optical flow sees what a camera would. Everything is seeded:
the same arguments give the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class Motion:
    """How the hand moves the picture (amplitudes; see the module doc for units)."""

    tilt_deg: tuple[float, float] = (0.0, 0.0)  # about the vertical, the horizontal axis
    sway_m: tuple[float, float] = (0.0, 0.0)  # sideways, up-down
    approach: float = 0.0  # distance change over the clip, a fraction of it (-0.3: 30 % closer)
    roll_deg: float = 0.0  # in-plane rotation amplitude
    period_s: float = 2.0  # one back-and-forth of tilt and sway
    tremor_deg: float = 0.3
    tremor_m: float = 0.0007


#: The hand motions the tests and the benchmark use, by name.
MOTIONS: dict[str, Motion] = {
    "still": Motion(),
    "tilt": Motion(tilt_deg=(25.0, 15.0)),
    "sway": Motion(sway_m=(0.05, 0.03), tilt_deg=(6.0, 4.0)),
    "approach": Motion(approach=-0.35, tilt_deg=(5.0, 3.0)),
    "wave": Motion(tilt_deg=(20.0, 10.0), sway_m=(0.04, 0.02), roll_deg=8.0, period_s=1.5),
}


@dataclass(frozen=True)
class Scene:
    """Camera and picture: frame size in pixels, field of view in degrees, picture width
    and starting distance in metres, frame rate, camera noise in grey levels."""

    width: int = 640
    height: int = 360
    fov_deg: float = 60.0
    picture_width_m: float = 0.15
    distance_m: float = 0.45
    fps: float = 30.0
    noise: float = 3.0
    blur_sigma: float = 0.6
    shutter: float = 0.5  # exposure, share of the frame time (motion blur); 0: none
    glare: float = 25.0  # a reflection's brightness on the picture, grey levels
    jpeg_quality: int = 85  # 0: no compression
    seed: int = 0

    @property
    def focal_px(self) -> float:
        return self.width / 2 / math.tan(math.radians(self.fov_deg) / 2)


# -- the picture ------------------------------------------------------------------------
def printed(photo: np.ndarray, *, margin: float = 0.08, seed: int = 0) -> np.ndarray:
    """A photo (H, W, 3) RGB uint8 as a print: a white paper margin (``margin`` of the
    width), softer, duller, with a little grain and uneven light. Returns RGB uint8."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(photo, (0, 0), 0.8).astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = 0.8 * img + 0.2 * grey  # printer gamut: duller colours
    img = 18 + img * (225 / 255)  # paper white and ink black: less contrast
    img += rng.normal(0, 4.0, img.shape[:2])[..., None]  # grain
    pad = max(2, round(margin * photo.shape[1]))
    paper = np.full((photo.shape[0] + 2 * pad, photo.shape[1] + 2 * pad, 3), 242, np.float32)
    paper[pad:pad + photo.shape[0], pad:pad + photo.shape[1]] = img
    light = np.linspace(1.04, 0.9, paper.shape[1], dtype=np.float32)[None, :, None]  # uneven light
    return np.clip(paper * light, 0, 255).astype(np.uint8)


def on_phone(photo: np.ndarray, *, bezel: float = 0.07, seed: int = 0) -> np.ndarray:
    """A photo (H, W, 3) RGB uint8 shown on a phone: bright screen, faint pixel grid,
    a dark bezel (``bezel`` of the width at the sides, more above and below) with rounded
    corners, and a soft glare. Returns RGB uint8."""
    rng = np.random.default_rng(seed)
    h, w = photo.shape[:2]
    screen = photo.astype(np.float32) * 1.05 + 8
    grid = 1 - 0.06 * (np.arange(w) % 3 == 2).astype(np.float32)  # sub-pixel stripes
    screen *= grid[None, :, None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    glare = 30 * np.exp(-(((xx - 0.75 * w) / (0.3 * w)) ** 2 + ((yy - 0.2 * h) / (0.3 * h)) ** 2))
    screen += glare[..., None] + rng.normal(0, 1.5, (h, w))[..., None]
    side, cap = max(2, round(bezel * w)), max(3, round(2.2 * bezel * w))
    body = np.zeros((h + 2 * cap, w + 2 * side, 3), np.float32)
    body[:] = (28, 29, 32)
    body[cap:cap + h, side:side + w] = screen
    radius = max(2, round(1.6 * side))
    mask = np.zeros(body.shape[:2], np.uint8)
    bh, bw = mask.shape
    cv2.rectangle(mask, (radius, 0), (bw - 1 - radius, bh - 1), 255, -1)
    cv2.rectangle(mask, (0, radius), (bw - 1, bh - 1 - radius), 255, -1)
    for cx, cy in ((radius, radius), (bw - 1 - radius, radius), (radius, bh - 1 - radius),
                   (bw - 1 - radius, bh - 1 - radius)):
        cv2.circle(mask, (cx, cy), radius, 255, -1)
    body[mask == 0] = -1  # outside the phone: shows the background
    return np.clip(body, -1, 255).astype(np.int16)


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A still, textured room-like background (H, W, 3) RGB uint8 with no face in it."""
    rng = np.random.default_rng(seed + 7919)
    grey = rng.normal(0, 1, (height // 16 + 2, width // 16 + 2, 1)).astype(np.float32)
    tint = rng.normal(0, 0.25, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    base = cv2.resize(grey + tint, (width, height), interpolation=cv2.INTER_CUBIC)
    img = 140 + 22 * base
    for _ in range(12):  # shelves, door frames, posters
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(20, width // 3)), y0 + int(rng.integers(10, height // 3))
        colour = rng.uniform(60, 220, 3)
        cv2.rectangle(img, (x0, y0), (x1, y1), colour.tolist(), -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 1.2), 0, 255).astype(np.uint8)


# -- the motion -------------------------------------------------------------------------
def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw), angles in radians."""
    cy, sy, cx, sx, cz, sz = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx @ ry


def _tremor(n: int, rng: np.random.Generator, fps: float) -> np.ndarray:
    """(n,) smooth random jitter of unit size (a hand's 3-8 Hz shake, low-passed noise)."""
    raw = rng.normal(0, 1, n + 16)
    kernel = np.hanning(max(3, round(fps / 6)))
    smooth = np.convolve(raw, kernel / kernel.sum(), mode="same")[8:8 + n]
    return smooth / (smooth.std() + 1e-9)


def poses(motion: Motion, scene: Scene, frames: int, *, offset: float = 0.0
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(R (3, 3), t (3,) metres) of the picture's centre for each frame, at ``offset``
    frames after each frame's start (for the exposure's sub-samples)."""
    rng = np.random.default_rng(scene.seed + 1)
    tremor = [_tremor(frames + 2, rng, scene.fps) for _ in range(5)]
    out = []
    for i in range(frames):
        f = i + offset
        t = f / scene.fps
        k, a = int(np.floor(f)), f - np.floor(f)  # tremor, linearly between frames

        def jitter(j: int, k: int = k, a: float = a) -> float:
            return float((1 - a) * tremor[j][k] + a * tremor[j][k + 1])

        phase = 2 * math.pi * t / motion.period_s
        yaw = math.radians(motion.tilt_deg[0] * math.sin(phase) + motion.tremor_deg * jitter(0))
        pitch = math.radians(motion.tilt_deg[1] * math.sin(1.3 * phase + 0.7)
                             + motion.tremor_deg * jitter(1))
        roll = math.radians(motion.roll_deg * math.sin(0.8 * phase + 1.1))
        x = motion.sway_m[0] * math.sin(0.9 * phase + 0.3) + motion.tremor_m * jitter(2)
        y = motion.sway_m[1] * math.sin(1.1 * phase + 1.9) + motion.tremor_m * jitter(3)
        z = (scene.distance_m * (1 + motion.approach * f / max(1, frames - 1))
             + motion.tremor_m * jitter(4))
        out.append((_rotation(yaw, pitch, roll), np.array([x, y, z])))
    return out


def picture_homography(picture_size: tuple[int, int], scene: Scene, rotation: np.ndarray,
                       translation: np.ndarray) -> np.ndarray:
    """The 3x3 homography from picture pixels (u, v) to frame pixels for one pose.

    The picture is ``scene.picture_width_m`` wide, centred at ``translation`` (camera
    coordinates, metres; z away from the camera) and turned by ``rotation``.
    """
    w, h = picture_size
    s = scene.picture_width_m / w  # metres per picture pixel
    f = scene.focal_px
    k = np.array([[f, 0, scene.width / 2], [0, f, scene.height / 2], [0, 0, 1]])
    r1, r2 = rotation[:, 0], rotation[:, 1]
    origin = translation - s * (w / 2 * r1 + h / 2 * r2)
    return k @ np.column_stack([s * r1, s * r2, origin])


# -- the clip -------------------------------------------------------------------------
def attack_frames(picture: np.ndarray, motion: Motion | str = "wave", scene: Scene | None = None,
                  *, seconds: float = 3.0, backdrop: np.ndarray | None = None
                  ) -> Iterator[np.ndarray]:
    """The frames (H, W, 3) RGB uint8 of a picture held up and moved by ``motion``.

    ``picture`` comes from :func:`printed` or :func:`on_phone` (int16 with -1 where the
    phone's rounded corners let the background through, or uint8).
    """
    scene = scene or Scene()
    if isinstance(motion, str):
        motion = MOTIONS[motion]
    frames = max(1, round(seconds * scene.fps))
    rng = np.random.default_rng(scene.seed + 2)
    back = (backdrop if backdrop is not None
            else background(scene.width, scene.height, scene.seed)).astype(np.float32)
    pic = picture.astype(np.float32)
    # No more detail than the camera can see: about twice the picture's width on screen
    # at its closest (warping a large photo three times a frame is slow for nothing).
    closest = scene.distance_m * (1 + min(0.0, motion.approach)) * 0.8
    wanted = 2 * scene.focal_px * scene.picture_width_m / closest
    if pic.shape[1] > wanted:
        k = wanted / pic.shape[1]
        pic = cv2.resize(pic, (max(8, round(pic.shape[1] * k)), max(8, round(pic.shape[0] * k))),
                         interpolation=cv2.INTER_AREA)
        pic[pic < 0] = -1  # keep the phone's transparent corners transparent
    alpha = (pic[..., 0] >= 0).astype(np.float32)
    pic = np.maximum(pic, 0) * alpha[..., None]  # premultiplied: 0 where transparent
    ph, pw = pic.shape[:2]
    size = (scene.width, scene.height)
    offsets = (-scene.shutter / 2, 0.0, scene.shutter / 2) if scene.shutter > 0 else (0.0,)
    tracks = [poses(motion, scene, frames, offset=o) for o in offsets]
    middle = tracks[len(tracks) // 2]
    for i in range(frames):
        lit = pic + (_glare(middle[i][0], (pw, ph), scene.glare) * alpha)[..., None]
        colour = np.zeros((scene.height, scene.width, 3), np.float32)
        cover = np.zeros((scene.height, scene.width), np.float32)
        for track in tracks:  # the exposure: average of poses within it (motion blur)
            hom = picture_homography((pw, ph), scene, *track[i])
            colour += cv2.warpPerspective(lit, hom, size, flags=cv2.INTER_LINEAR)
            cover += cv2.warpPerspective(alpha, hom, size, flags=cv2.INTER_LINEAR)
        n = float(len(tracks))
        frame = back * (1 - cover / n)[..., None] + colour / n
        if scene.blur_sigma > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), scene.blur_sigma)
        frame += rng.normal(0, scene.noise, frame.shape[:2])[..., None]
        out = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        if scene.jpeg_quality:
            ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
            if ok:
                out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        yield out


def picture_boxes(picture_size: tuple[int, int], region: tuple[float, float, float, float],
                  motion: Motion | str = "wave", scene: Scene | None = None, *,
                  seconds: float = 3.0) -> list[tuple[float, float, float, float]]:
    """Where ``region`` (x, y, w, h in picture pixels, e.g. the face of the photo) is on
    each frame of :func:`attack_frames` with the same arguments: the bounding box (x, y, w,
    h) of the region's four corners, frame pixels (the ground truth a detector would
    approximate). ``picture_size`` (w, h) must be the size the frames were made from (a
    picture narrower than about 400 pixels is used as it is)."""
    scene = scene or Scene()
    if isinstance(motion, str):
        motion = MOTIONS[motion]
    frames = max(1, round(seconds * scene.fps))
    x, y, w, h = (float(v) for v in region)
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])
    out = []
    for rotation, translation in poses(motion, scene, frames):
        hom = picture_homography(picture_size, scene, rotation, translation)
        mapped = np.c_[corners, np.ones(4)] @ hom.T
        pts = mapped[:, :2] / mapped[:, 2:3]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        out.append((float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
    return out


def _glare(rotation: np.ndarray, size: tuple[int, int], strength: float) -> np.ndarray:
    """A lamp's reflection on a picture of ``size`` (w, h) pixels, in grey levels: a soft
    spot that slides across it as the picture turns."""
    w, h = size
    if strength <= 0:
        return np.zeros((h, w), np.float32)
    normal = rotation[:, 2]  # the picture's normal in camera coordinates
    cx, cy = 0.7 + 2.0 * normal[0], 0.25 + 2.0 * normal[1]
    gx = np.exp(-(((np.arange(w) + 0.5) / w - cx) / 0.25) ** 2).astype(np.float32)
    gy = np.exp(-(((np.arange(h) + 0.5) / h - cy) / 0.25) ** 2).astype(np.float32)
    return strength * gy[:, None] * gx[None, :]


def with_seed(scene: Scene, seed: int) -> Scene:
    return replace(scene, seed=seed)


def head_crop_box(shape: tuple[int, ...], box: tuple[float, float, float, float], *,
                  widths: float = 2.2, aspect: float = 4 / 3) -> tuple[int, int, int, int]:
    """The portrait crop :func:`head_crop` cuts, as (x0, y0, x1, y1) pixels of an image of
    ``shape`` (H, W, ...)."""
    x, y, w, h = (float(v) for v in box)
    cw = widths * w
    ch = aspect * cw
    cx, cy = x + w / 2, y + h / 2 + 0.1 * h
    x0, y0 = max(0, round(cx - cw / 2)), max(0, round(cy - ch / 2))
    return x0, y0, min(shape[1], round(cx + cw / 2)), min(shape[0], round(cy + ch / 2))


def head_crop(photo: np.ndarray, box: tuple[float, float, float, float], *, widths: float = 2.2,
              aspect: float = 4 / 3) -> np.ndarray:
    """A portrait crop (height = ``aspect`` x width) of ``photo`` around a face ``box``
    (x, y, w, h pixels), ``widths`` face widths wide, clipped to the photo."""
    x0, y0, x1, y1 = head_crop_box(photo.shape, box, widths=widths, aspect=aspect)
    return np.ascontiguousarray(photo[y0:y1, x0:x1])
