"""The passive verdict on one face track, from its judged windows (no one is asked
anything).

Each :class:`~desktop.face.liveness.volume.WindowEvidence` casts at most one vote:

* **live** (``moves_in_3d``): once the face's plane is removed, the face neither moves
  nor looks as it did: corners are left at least ``live_residual`` face widths (0.012)
  from where the plane puts them, and the plane-stabilised face matches the earlier one
  with a normalised cross-correlation of at most ``live_ncc`` (0.75; a flat picture keeps
  0.87 or more, blur and glare included). Parts of the face moved against each other as
  only a 3-D, or a changing, face can: a head turning, a jaw talking, a blink. Windows
  where the face moves faster than ``max_speed`` (0.1 face widths per frame) cast no
  live vote: motion blur and tracking errors there make a waved picture look 3-D too.
  Catches: every real face that turns or talks a little. Misses: a person who holds
  perfectly still (then nothing is decided, and the challenge asks for a blink); cannot
  tell a replayed video of a moving head, or a 3-D mask, from a person.
* **flat** (``flat_motion``): the face was visibly foreshortened (deformation at least
  ``flat_deformation``, 0.008 face widths) yet the plane explains its motion to within
  ``flat_residual`` (0.005) and to less than ``flat_ratio`` (a quarter) of that
  deformation. A real head cannot turn that much without parallax. Catches: a print or a
  phone that is tilted, turned or waved. Misses: a picture only slid sideways, brought
  closer or rotated in its own plane (no foreshortening: the plane explains a real face
  moved that way too).
* **surround** (``moving_surround``): at least ``surround_sides`` (3) of the four regions
  around the face moved with the face's plane rather than standing still, while the
  camera did not move. Catches: the paper margin or the phone's bezel and the photo's own
  background moving with the face, even for small hand tremor. Misses: a photo cut out
  along the face, or held so close that nothing of it shows around the face; and it is
  not counted while the camera itself moves.

A track is **live** once live votes outnumber the others by ``live_votes`` (2), a
**spoof** once flat and surround votes outnumber live ones by ``spoof_votes`` (3); until
then it is undecided. A verdict is final for the track.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from desktop.face.liveness.volume import WindowEvidence

LIVE, SPOOF, UNDECIDED = "live", "spoof", "undecided"

#: Why a track was refused, as words for the label and the log, by reason code.
REASONS = {
    "flat_motion": "photo suspected",
    "moving_surround": "photo or screen suspected",
}


@dataclass(frozen=True)
class PassiveThresholds:
    """Limits of the passive votes (face widths unless said otherwise; module doc)."""

    live_residual: float = 0.012
    live_ncc: float = 0.75
    max_speed: float = 0.1  # face widths per frame
    flat_residual: float = 0.005
    flat_deformation: float = 0.008
    flat_ratio: float = 0.25
    surround_sides: int = 3
    live_votes: int = 2  # margin of live over other votes to decide live
    spoof_votes: int = 3  # margin of flat + surround over live votes to decide spoof


def vote(evidence: WindowEvidence, t: PassiveThresholds) -> str | None:
    """The vote of one window: ``"moves_in_3d"``, ``"flat_motion"``, ``"moving_surround"``
    or None (no evidence either way)."""
    if (evidence.planar_residual >= t.live_residual and evidence.face_ncc <= t.live_ncc
            and evidence.speed <= t.max_speed):
        return "moves_in_3d"
    if (evidence.deformation >= t.flat_deformation
            and evidence.planar_residual <= t.flat_residual
            and evidence.planar_residual < t.flat_ratio * evidence.deformation):
        return "flat_motion"
    if evidence.surround_moving >= t.surround_sides and not evidence.camera_moved:
        return "moving_surround"
    return None


@dataclass
class PassiveJudge:
    """Collects one track's votes and gives its verdict (see the module doc)."""

    thresholds: PassiveThresholds = field(default_factory=PassiveThresholds)
    votes: Counter = field(default_factory=Counter)
    windows: int = 0  # windows judged
    verdict: str = UNDECIDED
    reason: str | None = None  # the deciding vote's code
    decided_window: int | None = None  # how many windows it took
    last: WindowEvidence | None = None
    peak_residual: float = 0.0  # the largest planar residual seen, face widths

    def add(self, evidence: WindowEvidence) -> str:
        """Count one window; returns the verdict so far."""
        self.windows += 1
        self.last = evidence
        self.peak_residual = max(self.peak_residual, evidence.planar_residual)
        v = vote(evidence, self.thresholds)
        if v is not None:
            self.votes[v] += 1
        if self.verdict != UNDECIDED:
            return self.verdict
        live = self.votes["moves_in_3d"]
        flat, surround = self.votes["flat_motion"], self.votes["moving_surround"]
        if live - flat - surround >= self.thresholds.live_votes:
            self.verdict, self.reason = LIVE, "moves_in_3d"
        elif flat + surround - live >= self.thresholds.spoof_votes:
            self.verdict = SPOOF
            self.reason = "flat_motion" if flat >= surround else "moving_surround"
        if self.verdict != UNDECIDED:
            self.decided_window = self.windows
        return self.verdict

    def scores(self) -> dict:
        """Plain figures for the CLI and the log: vote counts and the last window's."""
        out: dict = {"windows": self.windows, "votes": dict(self.votes),
                     "peak_residual": round(self.peak_residual, 5)}
        if self.last is not None:
            out["last"] = self.last.as_dict()
        return out
