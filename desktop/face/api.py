"""The face engine's small public surface (in the spirit of face_recognition's ``api.py``).

    from desktop.face import api

    image = api.load_image("photo.jpg")          # (H, W, 3) RGB uint8, EXIF-upright
    faces = api.detect(image)                    # [Face(box, score, landmarks, chip)]
    codes = api.embed(faces)                     # (N, 128) float32 descriptors f(x)
    d = api.distance(codes[0], codes[1])         # squared L2; same person when d < 0.36

:class:`FaceEngine` does the work: dlib's CNN detector (torch), dlib's 5-point landmarks
(numpy), dlib's aligned 150x150 chip (OpenCV) and dlib's ResNet encoder (torch), each
loaded on first use. The module-level functions share one default engine.

Units: boxes and landmarks are pixels of the image passed in; ``distance`` is the squared
Euclidean distance d = ||a - b||^2 between descriptors (dimensionless), compared with
tau = 0.36 (dlib's 0.6 in plain L2).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from desktop.errors import ImageError, ModelFileError
from desktop.face.types import (
    CHIP_SIZE,
    DEFAULT_TAU,
    EMBEDDING_DIM,
    Face,
    squared_distance,
)

#: The model id of dlib's own encoder weights; fine-tuned versions bring their own.
DEFAULT_MODEL_ID = "dlib-resnet-v1"
#: Images with a longer side than this are shrunk for detection only (chips are cut from
#: the full-resolution image). Faces smaller than 80 px at this size are not found.
DETECT_MAX_SIDE = 1280
#: Test-time augmentation: shifts (x, y) in chip pixels, each also mirrored. The set is
#: symmetric in x, so a chip and its mirror image get the same averaged descriptor.
TTA_SHIFTS = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))


def load_image(path: str | os.PathLike[str] | bytes) -> np.ndarray:
    """A file (or its bytes) as an upright (H, W, 3) RGB uint8 array.

    Raises:
        ImageError: unreadable, not an image, corrupt, or too large to decode safely.
    """
    from desktop.imageio import load_rgb

    return load_rgb(path)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An image array as contiguous (H, W, 3) uint8 RGB: grey is repeated, alpha dropped.

    Raises:
        ImageError: not an 8-bit grey, RGB or RGBA array.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ImageError(f"Faces need an 8-bit image (uint8 array), not {arr.dtype}.")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"Faces need a grey, RGB or RGBA image, not an array of shape "
                         f"{arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError("The image is empty (0 pixels).")
    return np.ascontiguousarray(arr)


def _flip_and_shift(chips: np.ndarray) -> np.ndarray:
    """(N, 150, 150, 3) -> (N * 2 * len(TTA_SHIFTS), ...) mirrored and shifted copies
    (edges replicated), grouped per chip."""
    import cv2

    out = []
    for chip in chips:
        for flip in (False, True):
            base = chip[:, ::-1] if flip else chip
            for dx, dy in TTA_SHIFTS:
                m = np.float32([[1, 0, dx], [0, 1, dy]])
                out.append(cv2.warpAffine(np.ascontiguousarray(base), m, (CHIP_SIZE, CHIP_SIZE),
                                          borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out)


class FaceEngine:
    """Detect, align and embed faces. Implements ``desktop.face.types.FaceEngineLike``.

    Args:
        encoder: the Siamese branch f(x): None for dlib's pretrained weights, a
            :class:`~desktop.face.encoder.FaceEncoder` (e.g. fine-tuned), or a path to
            dlib's ``.dat`` or to a torch state dict of a FaceEncoder (``.pt``).
        model_id: names the encoder weights; descriptors from different ids never mix.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        detector: ``"cnn"`` (dlib's MMOD CNN, default), ``"haar"`` (OpenCV's cascade,
            fast and rough; needs OpenCV 4), or any object with ``detect(image) -> [Face]``.
        min_face_size: smallest face looked for, in pixels of the image as detected (after
            the ``detect_max_side`` shrink); 80 is dlib's window, larger is faster.
        score_threshold: detector score threshold (dlib: 0).
        upsample: double the image this many times before detecting (dlib's
            ``upsample_num_times``: finds faces down to 40, 20... px, slowly).
        detect_max_side: longer images are shrunk to this for detection.
        detector_precision / encoder_precision: ``"fp32"``, ``"bf16"`` or (detector only)
            ``"auto"``. The encoder defaults to fp32 (dlib's descriptors to 1e-6); its bf16
            mode is about 0.01 L2 away and kept every same/different decision on faces-dev.
        tta: average descriptors over mirrored and slightly shifted chips by default.

    Models load lazily on first use (or in :meth:`warm_up`). One engine may be used from a
    worker thread while other threads read the Faces it returned; calls are serialised
    per model.
    """

    def __init__(
        self,
        encoder: Any = None,
        model_id: str = DEFAULT_MODEL_ID,
        *,
        device: str = "auto",
        detector: Any = "cnn",
        min_face_size: int | None = None,
        score_threshold: float = 0.0,
        upsample: int = 0,
        detect_max_side: int = DETECT_MAX_SIDE,
        detector_precision: str = "auto",
        encoder_precision: str = "fp32",
        tta: bool = False,
    ) -> None:
        from desktop.face.detector import DEFAULT_MIN_FACE_SIZE

        if not model_id or not isinstance(model_id, str):
            raise ValueError("model_id must be a non-empty string")
        self._model_id = model_id
        self._encoder_source = encoder
        self._device_pref = device
        self._detector_choice = detector
        self.min_face_size = int(min_face_size or DEFAULT_MIN_FACE_SIZE)
        self.score_threshold = float(score_threshold)
        self.upsample = max(0, int(upsample))
        self.detect_max_side = int(detect_max_side)
        self.detector_precision = detector_precision
        self.encoder_precision = encoder_precision
        self.tta = bool(tta)
        self._load_lock = threading.RLock()
        self._detector: Any = None
        self._landmarks: Any = None
        self._embedder: Any = None

    # -- identity -------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """Which encoder weights make this engine's descriptors."""
        return self._model_id

    def __repr__(self) -> str:
        return f"FaceEngine(model_id={self._model_id!r}, min_face_size={self.min_face_size})"

    # -- lazy models ----------------------------------------------------------------------
    def _device(self):
        from desktop.device import pick_device

        return pick_device(self._device_pref)

    def _lazy(self, attr: str, make: Any) -> Any:
        """The model in ``attr``, made by ``make()`` on first use (once, under a lock)."""
        value = getattr(self, attr)
        if value is None:
            with self._load_lock:
                value = getattr(self, attr)
                if value is None:
                    value = make()
                    setattr(self, attr, value)
        return value

    @property
    def detector(self) -> Any:
        """The face detector (made on first use)."""
        return self._lazy("_detector", self._make_detector)

    def _make_detector(self) -> Any:
        from desktop.face.detector import FaceDetector, HaarFaceDetector

        choice = self._detector_choice
        if choice == "cnn":
            return FaceDetector(device=self._device(), precision=self.detector_precision,
                                min_face_size=self.min_face_size,
                                score_threshold=self.score_threshold)
        if choice == "haar":
            return HaarFaceDetector(min_face_size=self.min_face_size,
                                    score_threshold=self.score_threshold)
        if hasattr(choice, "detect"):
            return choice
        raise ValueError(f"detector must be 'cnn', 'haar' or have detect(); got {choice!r}")

    @property
    def landmarks(self) -> Any:
        """The 5-point shape predictor (loaded on first use)."""
        from desktop.face.landmarks import ShapePredictor

        return self._lazy("_landmarks", ShapePredictor.load)

    @property
    def embedder(self) -> Any:
        """The encoder, wrapped for batched inference on chips (loaded on first use)."""
        return self._lazy("_embedder", self._make_embedder)

    def _make_embedder(self) -> Any:
        from desktop.face.encoder import ChipEmbedder

        encoder = load_encoder(self._encoder_source, self._device())
        return ChipEmbedder(encoder, precision=self.encoder_precision)

    def warm_up(self) -> FaceEngine:
        """Load every model now (e.g. in a worker thread at start-up) and run each once."""
        blank = np.full((120, 160, 3), 127, np.uint8)
        self.detector.detect(blank)
        self.landmarks.predict(blank, np.array([[40, 20, 80, 80]]))
        self.embedder(np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), np.uint8))
        return self

    # -- the pipeline ---------------------------------------------------------------------
    def detect_boxes(self, image: np.ndarray) -> list[Face]:
        """Only the detector: Faces with box and score (original image pixels), best first.
        Images longer than ``detect_max_side`` are shrunk for this step."""
        from desktop.imageio import downscale_to

        image = as_rgb(image)
        small, scale = downscale_to(image, self.detect_max_side)
        kwargs = {"upsample": self.upsample} if self.upsample else {}
        found = self.detector.detect(small, **kwargs)
        if scale == 1.0:
            return list(found)
        return [Face(box=tuple(round(v / scale) for v in f.box), score=f.score) for f in found]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best first, each with box, score, 5 landmarks
        (full-resolution pixels) and the aligned 150x150 chip cut from the full image."""
        from desktop.face.align import extract_chips

        image = as_rgb(image)
        faces = self.detect_boxes(image)
        if not faces:
            return []
        marks = self.landmarks.predict(image, np.array([f.box for f in faces], np.float64))
        chips = extract_chips(image, marks)
        for face, lm, chip in zip(faces, marks, chips, strict=True):
            face.landmarks = lm
            face.chip = chip
        return faces

    def embed(self, faces_or_chips: Sequence[Face] | np.ndarray, tta: bool | None = None
              ) -> np.ndarray:
        """Descriptors f(x), (N, 128) float32, of Faces (their chips; ``face.descriptor``
        is filled in) or of (N, 150, 150, 3) / (150, 150, 3) uint8 RGB chips.

        With ``tta`` (default: the engine's), each descriptor is the mean over the chip,
        its mirror image and small shifts of both.
        """
        faces: list[Face] = []
        if isinstance(faces_or_chips, np.ndarray):
            chips = faces_or_chips[None] if faces_or_chips.ndim == 3 else faces_or_chips
        else:
            faces = list(faces_or_chips)
            if any(f.chip is None for f in faces):
                raise ValueError("every Face needs a chip; get Faces from detect()")
            chips = (np.stack([f.chip for f in faces]) if faces
                     else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8))
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        use_tta = self.tta if tta is None else tta
        if use_tta:
            views = 2 * len(TTA_SHIFTS)
            codes = self.embedder(_flip_and_shift(chips))
            codes = codes.reshape(len(chips), views, EMBEDDING_DIM).mean(axis=1)
        else:
            codes = self.embedder(chips)
        for face, code in zip(faces, codes, strict=False):
            face.descriptor = code
        return codes

    def analyze(self, image: np.ndarray, tta: bool | None = None) -> list[Face]:
        """:meth:`detect` then :meth:`embed`: Faces with descriptors filled in."""
        faces = self.detect(image)
        if faces:
            self.embed(faces, tta=tta)
        return faces


def load_encoder(source: Any, device: Any) -> Any:
    """A FaceEncoder on ``device`` from None (dlib's weights), a FaceEncoder, a dlib
    ``.dat`` path, or a path to a torch state dict (optionally under ``"state_dict"``).

    Raises:
        ModelFileError: the weights file is missing or does not fit a FaceEncoder.
    """
    import torch

    from desktop.face.encoder import FaceEncoder

    if source is None:
        return FaceEncoder.from_dlib(device=device)
    if isinstance(source, FaceEncoder):
        return source.to(device).eval()
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.suffix == ".dat":
            return FaceEncoder.from_dlib(path, device=device)
        if not path.is_file():
            raise ModelFileError(f"Encoder weights {path} were not found.",
                                 "Pick another encoder version, or retrain this one.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model = FaceEncoder()
            model.load_state_dict(state)
        except Exception as exc:
            raise ModelFileError(f"Encoder weights {path} cannot be used: {exc}",
                                 "Pick another encoder version, or retrain this one.") from exc
        return model.to(device).eval()
    raise TypeError(f"encoder must be None, a FaceEncoder or a path; got {type(source)}")


# -- module-level conveniences, sharing one engine ------------------------------------------
_default: FaceEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> FaceEngine:
    """The engine behind the module-level functions (dlib's weights, made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceEngine()
        return _default


def detect(image: np.ndarray) -> list[Face]:
    """Faces in an RGB uint8 image, with box, score, landmarks and chip (best first)."""
    return default_engine().detect(image)


def embed(faces_or_chips: Sequence[Face] | np.ndarray, tta: bool = False) -> np.ndarray:
    """(N, 128) float32 descriptors of Faces or 150x150 RGB chips."""
    return default_engine().embed(faces_or_chips, tta=tta)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """d = ||a - b||^2, the squared L2 distance between descriptors (broadcasts over
    leading axes). Same person when d < tau; dlib's tau is 0.36 (0.6 in plain L2)."""
    return squared_distance(a, b)


def same_person(a: np.ndarray, b: np.ndarray, tau: float = DEFAULT_TAU) -> bool:
    """Whether two descriptors are closer than ``tau`` in squared L2 distance."""
    return float(squared_distance(a, b)) < tau
