"""Plain records returned by the gallery (immutable snapshots of rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

Source = str  # "webcam" | "file"
SOURCES = ("webcam", "file")


def local_time(ts: float) -> datetime:
    """Unix seconds -> aware datetime in the local time zone."""
    return datetime.fromtimestamp(ts).astimezone()


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    employee_id: str | None
    created_at: float  # Unix seconds
    updated_at: float
    n_templates: int = 0  # all encoders
    last_checkin: float | None = None  # Unix seconds, or None


@dataclass(frozen=True)
class Template:
    """One stored face template. ``chip_jpeg`` is empty unless asked for."""

    id: int
    person_id: int
    embedding: np.ndarray = field(repr=False)  # (128,) float32, raw f(x)
    model_id: str
    model_version: str
    source: Source
    created_at: float
    chip_jpeg: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class NewTemplate:
    """A template to be saved: the aligned chip and its descriptor from ``model_id``."""

    chip: np.ndarray = field(repr=False)  # (150, 150, 3) uint8 RGB
    embedding: np.ndarray = field(repr=False)  # (128,) float32
    model_id: str
    model_version: str = ""
    source: Source = "file"


@dataclass(frozen=True)
class CheckIn:
    """One check-in. ``person_id`` is None when the person was deleted but the history kept.

    ``name`` is the person's current name while they exist, else the name at check-in.
    """

    id: int
    person_id: int | None
    name: str
    at: float  # Unix seconds (UTC)
    d: float  # squared L2 distance to the matched template
    camera: str
    rule: str  # the DecisionRule.name that accepted the match
    score: float | None
    model_id: str
    employee_id: str | None = None

    @property
    def when(self) -> datetime:
        """Check-in time in the local time zone."""
        return local_time(self.at)


@dataclass(frozen=True)
class WithheldCheckIn:
    """A check-in liveness withheld: the face was recognised as the person but judged not
    live. ``reason`` is a code (``flat_motion``, ``moving_surround``, ``no_response``;
    :data:`desktop.face.liveness.REASONS` has the words), ``detail`` JSON text with the
    liveness figures. Names follow :class:`CheckIn`."""

    id: int
    person_id: int | None
    name: str
    at: float  # Unix seconds (UTC)
    d: float  # squared L2 distance to the matched template
    camera: str
    reason: str
    detail: str
    model_id: str
    employee_id: str | None = None

    @property
    def when(self) -> datetime:
        return local_time(self.at)


@dataclass(frozen=True)
class GalleryEmbeddings:
    """All templates of one encoder, ready for :class:`desktop.face.matching.Matcher`."""

    model_id: str
    embeddings: np.ndarray = field(repr=False)  # (N, 128) float32
    person_ids: np.ndarray = field(repr=False)  # (N,) int64
    template_ids: np.ndarray = field(repr=False)  # (N,) int64
    names: dict[int, str] = field(repr=False)  # person id -> display name
    revision: int  # meta.revision when read


@dataclass(frozen=True)
class DeleteResult:
    person_id: int
    name: str
    templates_deleted: int
    checkins_deleted: int
    checkins_kept: int
