"""Face tracks across frames: IoU association, ageing out, and a vote over recent matches.

Pure numpy. Boxes are ``(x, y, w, h)`` in pixels, as everywhere in ``desktop.face``.

* :func:`iou_matrix` and :func:`greedy_match` associate detections with tracks: pairs
  are taken in decreasing IoU, each track and detection at most once, and only when
  IoU >= a threshold (0.3 by default).
* :class:`IoUTracker` keeps the tracks. Unmatched detections start new tracks; a track
  that no detection matched for more than ``max_missed`` consecutive *detection rounds*
  is dropped (rounds, not frames: the pipeline runs the detector only on some frames,
  over the whole frame (:meth:`IoUTracker.update`) or around one track
  (:meth:`IoUTracker.confirm` / :meth:`IoUTracker.miss`), and moves boxes by optical flow
  in between, :meth:`IoUTracker.move`).
* Each :class:`Track` keeps its last ``vote_window`` identifications (:class:`Vote`). Its
  label is the most frequent name among them (``None`` = Unknown counts as a name), ties
  going to the most recent; so one odd match does not make the label flicker. The d shown
  with the label is the d of the *latest* vote that agrees with the label.
* :meth:`IoUTracker.due_for_embedding` says which tracks to embed on a frame: new tracks,
  tracks still short of a decided label every ``embed_every_pending`` frames, and every
  track every ``embed_every`` frames.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b``
    (M, 4), both ``(x, y, w, h)``; returns (N, M) float64 in [0, 1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0:1], a[:, 1:2]
    ax2, ay2 = ax1 + a[:, 2:3], ay1 + a[:, 3:4]
    bx1, by1 = b[:, 0], b[:, 1]
    bx2, by2 = bx1 + b[:, 2], by1 + b[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    area_a = np.clip(a[:, 2:3], 0, None) * np.clip(a[:, 3:4], 0, None)
    area_b = np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) taken in decreasing IoU, each row and column at most once,
    only where IoU >= ``threshold``. Ties go to the lower row, then the lower column."""
    iou = np.asarray(iou, dtype=np.float64)
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= threshold)
    order = np.lexsort((cols, rows, -iou[rows, cols]))
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass(frozen=True)
class Vote:
    """One identification of a track: the matched name (None = Unknown), its d (squared
    L2 to that person's best template, or to the nearest person when Unknown), the frame
    and the scene time in seconds."""

    name: str | None
    d: float
    frame: int
    time: float
    person_id: int | None = None
    probability: float | None = None  # a verifier's P(same), when one is used
    score: float | None = None  # the decision rule's confidence
    rule: str = ""  # the decision rule's name


@dataclass
class Label:
    """A track's current label from its votes: ``name`` (None = Unknown), the d of the
    latest vote for that name, how many votes in the window agree (``support``), and the
    scene time of the earliest vote for that name still in the window (``since``)."""

    name: str | None
    d: float | None
    support: int
    since: float | None
    person_id: int | None = None
    probability: float | None = None
    score: float | None = None
    rule: str = ""


NO_LABEL = Label(None, None, 0, None)


@dataclass
class Track:
    """One face followed across frames."""

    id: int
    box: np.ndarray  # (4,) float64 (x, y, w, h), pixels
    first_frame: int
    first_time: float
    last_frame: int  # the last frame a detection matched this track
    last_time: float
    vote_window: int = 5
    hits: int = 1  # detections matched, the first included
    missed: int = 0  # consecutive detection rounds without a match
    lost: bool = False  # the box could not be followed since the last detection
    last_embedded: int | None = None  # frame of the last embedding
    checked_in: set[object] = field(default_factory=set)  # people this visit checked in
    withheld: set[object] = field(default_factory=set)  # people liveness refused (recorded)
    votes: collections.deque[Vote] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        self.votes = collections.deque(self.votes, maxlen=self.vote_window)

    def add_vote(self, vote: Vote) -> None:
        self.votes.append(vote)

    def clear_votes(self) -> None:
        self.votes.clear()
        self.last_embedded = None

    @property
    def label(self) -> Label:
        """The vote over the recent identifications (see the module doc)."""
        if not self.votes:
            return NO_LABEL
        counts: dict[str | None, int] = collections.Counter(v.name for v in self.votes)
        last_seen = {v.name: i for i, v in enumerate(self.votes)}
        name = max(counts, key=lambda n: (counts[n], last_seen[n]))
        latest = self.votes[last_seen[name]]
        since = next(v.time for v in self.votes if v.name == name)
        return Label(name, latest.d, counts[name], since, latest.person_id,
                     latest.probability, latest.score, latest.rule)

    @property
    def box_int(self) -> tuple[int, int, int, int]:
        x, y, w, h = (round(float(v)) for v in self.box)
        return int(x), int(y), int(w), int(h)


class IoUTracker:
    """Associates each detection round's boxes with tracks (see the module doc).

    Args:
        iou_threshold: least IoU for a detection to continue a track.
        max_missed: detection rounds a track survives without a matching detection.
        vote_window: M, the number of recent identifications a track votes over.
        embed_every: N, frames between identifications of a track with a decided label.
        embed_every_pending: frames between identifications while a track's label has
            fewer than ``decided_votes`` agreeing votes (so a newcomer is named quickly).
        decided_votes: votes for one name that make a label "decided".
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        max_missed: int = 2,
        vote_window: int = 5,
        embed_every: int = 10,
        embed_every_pending: int = 1,
        decided_votes: int = 3,
    ) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.vote_window = int(vote_window)
        self.embed_every = max(1, int(embed_every))
        self.embed_every_pending = max(1, int(embed_every_pending))
        self.decided_votes = int(decided_votes)
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks = []

    def update(self, boxes: np.ndarray, frame: int, time: float) -> list[Track]:
        """One detection round: ``boxes`` (N, 4) found on ``frame`` at scene ``time`` s.

        Returns the track for each detection, in the order of ``boxes``. Tracks matched
        take the detection's box; unmatched tracks count a miss and are dropped after
        ``max_missed`` misses; unmatched detections start new tracks.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        current = np.array([t.box for t in self.tracks]).reshape(-1, 4)
        pairs = greedy_match(iou_matrix(current, boxes), self.iou_threshold)
        result: list[Track | None] = [None] * len(boxes)
        matched_tracks = set()
        for ti, di in pairs:
            track = self.tracks[ti]
            self._detected(track, boxes[di], frame, time)
            matched_tracks.add(ti)
            result[di] = track
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for di, box in enumerate(boxes):
            if result[di] is None:
                track = Track(self._next_id, box.copy(), frame, time, frame, time,
                              vote_window=self.vote_window)
                self._next_id += 1
                self.tracks.append(track)
                result[di] = track
        return [t for t in result if t is not None]

    def confirm(self, track: Track, box: np.ndarray, frame: int, time: float) -> None:
        """A detection of this one track (e.g. in a region around it): take its box."""
        self._detected(track, np.asarray(box, dtype=np.float64).reshape(4), frame, time)

    def miss(self, track: Track) -> bool:
        """A detection round looked for this one track and did not find it. Returns False
        when the track is dropped (more than ``max_missed`` misses in a row)."""
        track.missed += 1
        if track.missed > self.max_missed:
            self.tracks = [t for t in self.tracks if t is not track]
            return False
        return True

    @staticmethod
    def _detected(track: Track, box: np.ndarray, frame: int, time: float) -> None:
        track.box = box.copy()
        track.last_frame, track.last_time = frame, time
        track.hits += 1
        track.missed = 0
        track.lost = False

    def move(self, track_id: int, box: np.ndarray | None) -> None:
        """Between detection rounds: set a track's box as followed by motion, or mark it
        ``lost`` (``box=None``) until a detection picks it up again."""
        for track in self.tracks:
            if track.id == track_id:
                if box is None:
                    track.lost = True
                else:
                    track.box = np.asarray(box, dtype=np.float64).reshape(4).copy()
                return

    def get(self, track_id: int) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def visible(self) -> list[Track]:
        """Tracks to show on the current frame: those not lost."""
        return [t for t in self.tracks if not t.lost]

    def due_for_embedding(self, tracks: list[Track], frame: int) -> list[Track]:
        """Which of ``tracks`` to identify on ``frame`` (see the class doc)."""
        due = []
        for track in tracks:
            if track.last_embedded is None:
                due.append(track)
                continue
            since = frame - track.last_embedded
            every = (self.embed_every if track.label.support >= self.decided_votes
                     else self.embed_every_pending)
            if since >= every:
                due.append(track)
        return due
