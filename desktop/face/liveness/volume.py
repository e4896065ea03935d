"""A face track as a small space-time volume: points followed over a short window of
frames, and what the planar and non-planar models make of their motion.

A :class:`FaceVolume` follows up to ``face_points`` (50) corners (Shi-Tomasi) inside the
face from frame to frame by pyramidal Lucas-Kanade optical flow (the monitor runs one flow
call for every face), finding new ones when too few are left. Every ``seed_every`` (3)
frames it takes a *seed*: the face and its surroundings resampled into a square patch
where the face box is ``face_px`` (96) pixels wide, reaching ``surround`` (0.9) face
widths beyond the box on every side, and where the followed corners were. When a seed is
``window`` (15) frames old it is judged, once, in patch pixels, so every figure is in
*face widths* whatever the face's size:

1. **Plane**: the homography G from the patch to the current frame, fitted (RANSAC) to the
   corners followed since the seed.
2. **Plane + parallax**: the current frame is warped back into the patch through G
   (stabilised: a flat picture now sits exactly where it was), and each corner is found
   again by flow between the seed's patch and the stabilised one. Those small residual
   motions are fitted by a second homography C (what G missed; least squares, trimmed);
   what C leaves is the
   *planar residual*, the median over corners. A flat picture leaves tracking noise
   (at most 0.003 face widths on the generated attacks); a real head that turns or
   talks leaves parallax (nose against cheeks, jaw against ears): 0.025 to 0.15 on the
   clip's close-up. :func:`~desktop.face.liveness.geometry.parallax_share` says how much
   of it rigid 3-D parallax explains.
3. **Deformation**: how far G∘C is from a similarity (the foreshortening of a tilted
   picture), and **motion**, the RMS displacement of the corners, both in face widths.
4. **Surround**: four regions around the face (left, right, above, below). Each is
   compared (normalised cross-correlation) with the seed's patch twice: as moved with the
   face's plane, and as if it stood still. A region of a print or a phone (the paper
   margin, the bezel, the photo's own background) matches the first; the room behind a
   real head matches the second. Regions without texture are not compared.
5. **Camera**: the shift of the frame's border (away from the face) between the seed
   and now, by phase correlation of thumbnails; a camera that moved makes the surround
   comparison meaningless, so it is then not counted.

The figures of one judged seed are a :class:`WindowEvidence`;
:mod:`desktop.face.liveness.passive` turns a series of them into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from desktop.face.liveness import geometry

#: Pyramidal Lucas-Kanade for following corners from frame to frame (frame pixels).
CHAIN_LK = dict(winSize=(11, 11), maxLevel=3,
                criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
#: Lucas-Kanade between a seed's patch and the stabilised patch: small residual motions.
RESIDUAL_LK = dict(winSize=(11, 11), maxLevel=1,
                   criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
                   flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
#: Width of the thumbnails compared for camera motion, pixels.
THUMB_W = 160
SIDES = ("left", "right", "above", "below")


@dataclass(frozen=True)
class VolumeSettings:
    """How a face's space-time volume is sampled (frames, pixels, face widths)."""

    window: int = 15  # frames from a seed to its judgement (0.5 s at 30 frames/s)
    seed_every: int = 3  # frames between seeds
    face_px: float = 96.0  # the face box's width in patch pixels
    surround: float = 0.9  # the patch reaches this far beyond the box, face widths
    face_points: int = 50  # corners followed; new ones are found below half of this
    min_points: int = 8  # fewer followed corners and a seed is dropped
    min_texture: float = 8.0  # grey-level std below which a surround region is not used
    surround_ncc: float = 0.7  # a region moves with the face: NCC with the plane >= this
    surround_gain: float = 0.2  # ... and better than standing still by this much

    def __post_init__(self) -> None:
        if self.window < 2 or self.seed_every < 1 or self.face_px < 32:
            raise ValueError("window >= 2, seed_every >= 1 and face_px >= 32 are needed")


@dataclass(frozen=True)
class WindowEvidence:
    """What one judged seed says (see the module doc). Lengths are in face widths."""

    start_frame: int
    end_frame: int
    points: int  # face corners judged
    planar_residual: float  # median distance left by the plane
    parallax_share: float  # 0-1, share of that residual rigid 3-D parallax explains
    deformation: float  # foreshortening beyond a similarity
    motion: float  # RMS corner displacement
    surround_sides: int  # regions around the face with texture to compare
    surround_moving: int  # ... of them that moved with the face's plane
    camera_moved: bool  # the frame's border moved: surround figures not meaningful
    sharpness_ratio: float = 1.0  # the blurrier of the two faces' sharpness over the other's
    speed: float = 0.0  # the faster of the face's speeds at the two ends, face widths/frame
    face_ncc: float = 1.0  # the face in the seed's patch against the stabilised one
    found_share: float = 1.0  # share of the seed's corners found again in the stabilised patch
    sides: dict[str, tuple[float, float]] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return {"frames": [self.start_frame, self.end_frame], "points": self.points,
                "planar_residual": round(self.planar_residual, 5),
                "parallax_share": round(self.parallax_share, 3),
                "deformation": round(self.deformation, 5), "motion": round(self.motion, 4),
                "surround_sides": self.surround_sides,
                "surround_moving": self.surround_moving, "camera_moved": self.camera_moved}


@dataclass
class _Seed:
    frame: int
    to_patch: np.ndarray  # (3, 3) frame -> patch, at the seed's frame
    patch: np.ndarray  # (side, side) uint8
    ids: np.ndarray  # (K,) ids of the followed corners at the seed's frame, ascending
    corners: np.ndarray  # (K, 2) float32, where they were, patch pixels
    thumb: np.ndarray  # (h, THUMB_W) float32, the frame (see thumbnail())
    footprint: tuple[int, int, int, int]  # the patch's area in the frame, x0, y0, x1, y1
    velocity: np.ndarray  # (2,) the face's motion into the seed's frame, patch px/frame


class FaceVolume:
    """The space-time volume of one face track (see the module doc)."""

    def __init__(self, settings: VolumeSettings | None = None) -> None:
        self.settings = settings or VolumeSettings()
        self.seeds: list[_Seed] = []
        self.frames = 0  # frames observed
        self._ids = np.zeros(0, np.int64)  # followed corners: ids (ascending) ...
        self._pos = np.zeros((0, 2), np.float32)  # ... and where they are now, frame px
        self._next_id = 0
        self._velocity = np.zeros(2)  # the corners' median step into this frame, frame px
        s = self.settings
        self.side = round((1 + 2 * s.surround) * s.face_px)
        self._regions = _regions(self.side, s.face_px)
        c, q = self.side / 2, s.face_px
        self._face_region = (slice(round(c - 0.45 * q), round(c + 0.45 * q)),
                             slice(round(c - 0.4 * q), round(c + 0.4 * q)))
        self._face_area = (slice(round(c - 0.65 * q), round(c + 0.65 * q)),
                           slice(round(c - 0.6 * q), round(c + 0.6 * q)))

    # -- following corners (driven by the monitor's single flow call) --------------------
    def followed_points(self) -> np.ndarray:
        """(M, 2) float32 frame pixels of the followed corners."""
        return self._pos

    def follow(self, moved: np.ndarray, found: np.ndarray) -> None:
        """Take the flow's answer for :meth:`followed_points`: new positions (M, 2) and
        whether each was found (M,). Lost corners are dropped."""
        keep = np.asarray(found, bool)
        moved = np.asarray(moved, np.float32).reshape(-1, 2)
        self._velocity = (np.median(moved[keep] - self._pos[keep], axis=0) if keep.any()
                          else np.zeros(2))
        self._ids = self._ids[keep]
        self._pos = moved[keep]

    def interrupt(self) -> None:
        """The track was not seen on a frame (lost, or the flow had no previous frame): the
        corners and seeds lose their thread."""
        self.seeds.clear()
        self._velocity = np.zeros(2)
        self._ids = np.zeros(0, np.int64)
        self._pos = np.zeros((0, 2), np.float32)

    # -- one frame -----------------------------------------------------------------------
    def step(self, grey: np.ndarray, box: tuple[float, float, float, float], frame: int,
             thumb: np.ndarray) -> list[WindowEvidence]:
        """After :meth:`follow` for this frame: judge the seeds that are ``window`` frames
        old, find new corners when too few are left, and take a seed when one is due.
        ``grey`` (H, W) uint8 is the frame, ``box`` the face (x, y, w, h) pixels,
        ``thumb`` the frame's thumbnail (:func:`thumbnail`). Returns the evidence of the
        seeds judged (usually 0 or 1)."""
        s = self.settings
        self.frames += 1
        out = []
        keep = []
        for sd in self.seeds:
            if frame - sd.frame >= s.window:
                evidence = self._judge(sd, grey, frame, thumb)
                if evidence is not None:
                    out.append(evidence)
            elif int(np.isin(sd.ids, self._ids).sum()) >= s.min_points:
                keep.append(sd)
        self.seeds = keep
        if not self.seeds or frame - self.seeds[-1].frame >= s.seed_every:
            seed = self._seed(grey, box, frame, thumb)
            if seed is not None:
                self.seeds.append(seed)
        return out

    # -- seeds ---------------------------------------------------------------------------
    def _seed(self, grey: np.ndarray, box, frame: int, thumb: np.ndarray) -> _Seed | None:
        s = self.settings
        x, y, w, h = (float(v) for v in box)
        if w < 8 or h < 8:
            return None
        scale = s.face_px / w
        c = self.side / 2
        to_patch = np.array([[scale, 0, c - scale * (x + w / 2)],
                             [0, scale, c - scale * (y + h / 2)], [0, 0, 1.0]])
        patch = sample(grey, np.linalg.inv(to_patch), self.side)
        if len(self._ids) < s.face_points // 2:
            self._find_corners(patch, to_patch)
        corners = geometry.transfer(to_patch, self._pos).astype(np.float32)
        inside = ((np.abs(corners[:, 0] - c) <= 0.5 * s.face_px)
                  & (np.abs(corners[:, 1] - c) <= 0.55 * s.face_px))
        if int(inside.sum()) < s.min_points:
            return None
        return _Seed(frame, to_patch, patch, self._ids[inside].copy(), corners[inside],
                     thumb, _footprint(np.linalg.inv(to_patch), self.side, grey.shape),
                     self._velocity * scale)

    def _find_corners(self, patch: np.ndarray, to_patch: np.ndarray) -> None:
        """Replace the followed corners by fresh ones inside the face (patch pixels)."""
        s = self.settings
        c, q = self.side / 2, s.face_px
        mask = np.zeros_like(patch)
        cv2.rectangle(mask, (round(c - 0.4 * q), round(c - 0.45 * q)),
                      (round(c + 0.4 * q), round(c + 0.45 * q)), 255, -1)
        found = cv2.goodFeaturesToTrack(patch, s.face_points, 0.01, 4.0, mask=mask)
        if found is None:
            return
        corners = found.reshape(-1, 2).astype(np.float64)
        self._pos = geometry.transfer(np.linalg.inv(to_patch), corners).astype(np.float32)
        self._ids = np.arange(self._next_id, self._next_id + len(corners), dtype=np.int64)
        self._next_id += len(corners)

    def _judge(self, sd: _Seed, grey: np.ndarray, frame: int,
               thumb: np.ndarray) -> WindowEvidence | None:
        s = self.settings
        alive = np.isin(sd.ids, self._ids)
        if int(alive.sum()) < s.min_points:
            return None
        now = self._pos[np.searchsorted(self._ids, sd.ids[alive])]
        # Patch -> frame, roughly (flow drifts a little over a window; step 2 refines it).
        g = geometry.fit_homography(sd.corners[alive], now, tolerance=0.03 * s.face_px
                                    / _scale(sd.to_patch))
        if g is None:
            return None
        stabilised = sample(grey, g, self.side)
        # Motion blur: each patch gets the other's, so both carry the same (a fast-moving
        # picture otherwise looks different at the two ends, which reads as 3-D motion).
        velocity_now = np.linalg.inv(g[:2, :2] / g[2, 2]) @ self._velocity  # patch px
        rows, cols = self._face_area  # the face and a flow window around it
        ref, now_b = sd.patch.copy(), stabilised.copy()
        ref[rows, cols] = _motion_blur(sd.patch[rows, cols], velocity_now)
        now_b[rows, cols] = _motion_blur(stabilised[rows, cols], sd.velocity)
        q0 = sd.corners.reshape(-1, 1, 2)
        q1, found, _ = cv2.calcOpticalFlowPyrLK(ref, now_b, q0, q0.copy(), **RESIDUAL_LK)
        q1 = q1.reshape(-1, 2)
        ok = alive & (found.ravel() == 1)
        if int(ok.sum()) < s.min_points:
            return None
        c = geometry.fit_homography_trimmed(sd.corners[ok], q1[ok])
        if c is None:
            return None
        src = sd.corners[ok].astype(np.float64)
        residual = q1[ok] - geometry.transfer(c, src)
        errors = np.linalg.norm(residual, axis=1)
        total = g @ c
        frame_scale = _scale(total)
        start = geometry.transfer(np.linalg.inv(sd.to_patch), src)
        moved = geometry.transfer(total, src)
        motion = float(np.sqrt(np.mean(np.sum((moved - start) ** 2, axis=1))))
        plane_sides = self._surround(sd, stabilised, sample(grey, np.linalg.inv(sd.to_patch),
                                                             self.side))
        textured = {k: v for k, v in plane_sides.items() if v is not None}
        moving = sum(1 for p, st in textured.values()
                     if p >= s.surround_ncc and p - st >= s.surround_gain)
        away = (sd.footprint, _footprint(g, self.side, grey.shape))
        camera = _camera_shift(sd.thumb, thumb, away, grey.shape)
        camera_moved = camera > max(1.5, 0.3 * motion)  # both in frame pixels
        q = s.face_px
        inner = self._face_region
        sharp = (_sharpness(ref[inner]), _sharpness(now_b[inner]))
        return WindowEvidence(
            start_frame=sd.frame, end_frame=frame, points=int(ok.sum()),
            planar_residual=float(np.median(errors)) / q,
            parallax_share=geometry.parallax_share(src, residual),
            deformation=geometry.non_similarity(total, src) / q,
            motion=motion / frame_scale / q,
            surround_sides=len(textured), surround_moving=moving, camera_moved=camera_moved,
            sharpness_ratio=min(sharp) / max(max(sharp), 1e-6),
            speed=max(float(np.hypot(*sd.velocity)), float(np.hypot(*velocity_now))) / q,
            face_ncc=geometry.ncc(ref[inner], now_b[inner]) or 0.0,
            found_share=float(ok.sum()) / max(1, int(alive.sum())),
            sides={k: v for k, v in textured.items()})

    def _surround(self, sd: _Seed, plane: np.ndarray, still: np.ndarray
                  ) -> dict[str, tuple[float, float] | None]:
        out: dict[str, tuple[float, float] | None] = {}
        for name, (rows, cols) in self._regions.items():
            ref = sd.patch[rows, cols]
            if float(ref.std()) < self.settings.min_texture:
                out[name] = None
                continue
            a = geometry.ncc(ref, plane[rows, cols])
            b = geometry.ncc(ref, still[rows, cols])
            out[name] = None if a is None or b is None else (a, b)
        return out


# -- helpers ---------------------------------------------------------------------------
def thumbnail(grey: np.ndarray) -> np.ndarray:
    """The frame reduced to :data:`THUMB_W` pixels wide, float32 (for camera motion)."""
    h, w = grey.shape[:2]
    size = (THUMB_W, max(8, round(h * THUMB_W / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def sample(grey: np.ndarray, patch_to_frame: np.ndarray, side: int) -> np.ndarray:
    """The (side, side) patch whose pixel (u, v) shows frame point ``patch_to_frame @ (u,
    v, 1)``. When the patch shrinks the frame by more than 1.5x, the frame region is blurred
    first so the patch does not alias."""
    scale = _scale(patch_to_frame)  # frame pixels per patch pixel
    if scale <= 1.5:
        return cv2.warpPerspective(grey, patch_to_frame, (side, side),
                                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
    corners = geometry.transfer(patch_to_frame, np.array(
        [[0, 0], [side, 0], [0, side], [side, side]], np.float64))
    h, w = grey.shape[:2]
    pad = 3 * scale
    x0 = int(max(0, np.floor(corners[:, 0].min() - pad)))
    y0 = int(max(0, np.floor(corners[:, 1].min() - pad)))
    x1 = int(min(w, np.ceil(corners[:, 0].max() + pad)))
    y1 = int(min(h, np.ceil(corners[:, 1].max() + pad)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((side, side), np.uint8)
    region = cv2.GaussianBlur(grey[y0:y1, x0:x1], (0, 0), 0.5 * scale)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]])
    return cv2.warpPerspective(region, shift @ patch_to_frame, (side, side),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


#: Share of a frame's time the shutter is taken to be open (webcams indoors: about half).
EXPOSURE = 0.5


def _motion_blur(patch: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """``patch`` blurred along ``velocity`` (patch pixels per frame) over :data:`EXPOSURE`
    of a frame: a line kernel, as a moving camera image is."""
    length = float(np.hypot(*velocity)) * EXPOSURE
    if length < 1.0:
        return patch
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    d = np.asarray(velocity, np.float64) / max(np.hypot(*velocity), 1e-9) * length / 2
    cv2.line(kernel, (round(c - d[0]), round(c - d[1])), (round(c + d[0]), round(c + d[1])),
             1.0, 1, cv2.LINE_AA)
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def _sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian (grey levels squared): lower when blurred."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def _scale(h: np.ndarray) -> float:
    """Mean linear scale of a homography near the patch centre (its affine part)."""
    return float(np.sqrt(abs(np.linalg.det(h[:2, :2] / h[2, 2])))) or 1.0


def _regions(side: int, q: float) -> dict[str, tuple[slice, slice]]:
    """The four surround regions of a patch (rows, columns), outside the face box with a
    small gap: the face box spans c +- q/2."""
    c = side / 2
    inner_x0, inner_x1 = round(c - 0.65 * q), round(c + 0.65 * q)
    top, bottom = round(c - 0.7 * q), round(c + 0.8 * q)
    return {"left": (slice(top, bottom), slice(0, inner_x0)),
            "right": (slice(top, bottom), slice(inner_x1, side)),
            "above": (slice(0, top), slice(inner_x0, inner_x1)),
            "below": (slice(bottom, side), slice(inner_x0, inner_x1))}


def _footprint(patch_to_frame: np.ndarray, side: int, shape) -> tuple[int, int, int, int]:
    """The patch's area in the frame (x0, y0, x1, y1) frame pixels, clipped."""
    corners = geometry.transfer(patch_to_frame, np.array(
        [[0, 0], [side, 0], [0, side], [side, side]], np.float64))
    h, w = shape[:2]
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return (int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1)))


def _camera_shift(before: np.ndarray, now: np.ndarray,
                  away: tuple[tuple[int, int, int, int], ...], shape) -> float:
    """How far the frame's border moved between two thumbnails, in frame pixels: phase
    correlation with the face's neighbourhood (``away``: rectangles in frame pixels, the
    seed's and the current one) flattened out of both. 0 when the border has no
    texture to tell (no clear correlation peak)."""
    if before.shape != now.shape:
        return float("inf")
    mask = np.zeros(before.shape, bool)
    s = before.shape[1] / shape[1]
    for x0, y0, x1, y1 in away:
        rows = slice(max(0, int(y0 * s)), int(np.ceil(y1 * s)))
        mask[rows, max(0, int(x0 * s)):int(np.ceil(x1 * s))] = True
    if mask.mean() > 0.85:
        return 0.0
    a, b = before.copy(), now.copy()
    a[mask] = float(a[~mask].mean())
    b[mask] = float(b[~mask].mean())
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    if response < 0.1:
        return 0.0
    return float(np.hypot(dx, dy)) / s
