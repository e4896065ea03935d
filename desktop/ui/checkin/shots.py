"""Is this frame a good enrolment shot? The face engine's checks, shaped for the dialog.

The checks themselves (one face, size, in frame, sharpness, pose, exposure) and their
wording live in :mod:`desktop.face.quality`; this module picks the face the verdict is
about and keeps the first reason as the one line the dialog shows in large type
("Two faces in view…", "Too blurry. Hold still.", "Turn towards the camera.").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from desktop.face.quality import QualityThresholds, QualityVerdict, assess
from desktop.face.types import Face

#: The least face size for an enrolment shot, pixels of the frame (the face box's side).
#: 80 px is the detector's own window and what a 640x360 webcam gives at about 1 m; on
#: faces-dev's clip (faces 80-96 px, median 96) a 100 px limit accepted 1 of 91 sampled
#: frames ("too small" on 43), 80 px accepts 32, the rest refused for other reasons.
MIN_FACE_PX = 80


@dataclass(frozen=True)
class ShotCheck:
    """A verdict on one frame: ``ok``, or ``reason`` (for the person) and all ``reasons``.

    ``face`` is the face the verdict measured (the largest one), ``metrics`` the figures
    behind it (see :class:`desktop.face.quality.QualityVerdict`).
    """

    ok: bool
    reason: str
    face: Face | None = None
    reasons: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def n_faces(self) -> int:
        return int(self.metrics.get("faces", 0))


def check_shot(image: np.ndarray, faces: Sequence[Face], *, min_face_px: int = MIN_FACE_PX,
               source: str = "camera") -> ShotCheck:
    """The verdict on one RGB frame (``source="camera"``) or photo (``"photo"``) and the
    faces the engine found in it (with landmarks and chips)."""
    verdict: QualityVerdict = assess(image, list(faces),
                                     QualityThresholds(min_face_px=float(min_face_px)),
                                     source="photo" if source == "photo" else "camera")
    face = faces[verdict.face_index] if verdict.face_index is not None else None
    if verdict.ok and (face is None or face.chip is None):
        return ShotCheck(False, "The face could not be aligned.", face, (), ("no_chip",),
                         dict(verdict.metrics))
    reason = "Good shot." if verdict.ok else verdict.reasons[0]
    return ShotCheck(verdict.ok, reason, face, tuple(verdict.reasons), tuple(verdict.codes),
                     dict(verdict.metrics))
