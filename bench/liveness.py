"""Liveness for the check-in: photo and phone attacks refused, live faces accepted, and
what it costs the live view, all measured in one run.

    PYTHONPATH=. python bench/liveness.py [--cores 2] [--quick]

* **Attacks** (generated here, never saved): every faces-dev enrolment photo, cut around
  its face, as a print (paper margin, duller, grain) and on a phone (bezel, bright
  screen, pixel grid), held in front of a still room 0.45 m (print) or 0.22 m (phone)
  from a 640x360 camera and moved by hand (:data:`desktop.face.liveness.attacks.MOTIONS`:
  still with tremor, tilt, sway, approach, wave), with motion blur, a sliding glare,
  camera noise and JPEG. Each person is enrolled one-shot from that same photo, so every
  attack is recognised and would check in without liveness. **APCER** is the share of
  attacks that checked someone in; "refused" the share judged spoof, "undecided" the
  rest (never checked in). Passive mode on every attack (``--seconds`` long); challenge
  mode on the still ones, for ``--challenge-seconds`` (long enough for the challenge to
  time out: a photo must not blink).
* **Live faces**: short_hamilton_clip.mp4; every face track of it is a real person
  (Lin-Manuel Miranda's close-up is frames 82-210; the others are small, far and mostly
  still). **BPCER** is the share of live tracks refused; frames to decision per track.
* **Speed**: ``recognize-video``'s code path on the clip with liveness off, passive and
  challenge, one after another in this run: end-to-end frames/s and the monitor's mean
  milliseconds per frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkin_video import DEFAULT_DATA, limit_cores  # noqa: E402

FPS = 30.0
PHOTOS = ("knn/train/alex_lacamoire/img1.jpg", "knn/train/biden/biden.jpg",
          "knn/train/biden/biden2.jpg", "knn/train/kit_harington/john1.jpeg",
          "knn/train/kit_harington/john2.jpeg", "knn/train/obama/obama.jpg",
          "knn/train/obama/obama2.jpg", "knn/train/rose_leslie/img1.jpg",
          "knn/train/rose_leslie/img2.jpg", "video/lin-manuel-miranda.png")


@dataclass
class Outcome:
    """One attack clip or live track through a pipeline."""

    label: str
    checked_in: bool = False
    verdict: str = "undecided"  # live / spoof / undecided (last status seen)
    reason: str = ""
    decided_frames: int | None = None
    frames: int = 0
    withheld: int = 0


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def share(self, test) -> float:
        return sum(1 for o in self.outcomes if test(o)) / max(1, len(self.outcomes))

    def decided_frames(self, verdict: str) -> list[int]:
        return [o.decided_frames for o in self.outcomes
                if o.verdict == verdict and o.decided_frames is not None]


def run_frames(pipeline, frames, start_index: int = 0) -> dict[int, Outcome]:
    """Feed frames (RGB) at 30 frames/s of scene time; the outcome per track."""
    out: dict[int, Outcome] = {}
    for i, image in enumerate(frames):
        index = start_index + i
        result = pipeline.process(image, index, index / FPS)
        for face in result.faces:
            o = out.setdefault(face.track_id, Outcome(f"track {face.track_id}"))
            o.frames += 1
            if face.liveness is not None:
                o.verdict = face.liveness.verdict
                o.reason = face.liveness.reason or face.liveness.how or ""
                o.decided_frames = face.liveness.decided_frames
        for event in result.events:
            out.setdefault(event.track_id, Outcome(f"track {event.track_id}")).checked_in = True
        for w in result.withheld:
            out.setdefault(w.track_id, Outcome(f"track {w.track_id}")).withheld += 1
    return out


def attack_clips(engine, data: Path, photos, motions, seconds: float):
    """(label, person, frames) for every photo x {print, phone} x motion."""
    from desktop.face.api import load_image
    from desktop.face.liveness import attacks

    for k, rel in enumerate(photos):
        image = load_image(data / "faces-dev" / rel)
        faces = engine.detect_boxes(image)
        if not faces:
            continue
        crop = attacks.head_crop(image, faces[0].box)
        for kind in ("print", "phone"):
            picture = (attacks.printed(crop, seed=k) if kind == "print"
                       else attacks.on_phone(crop, seed=k))
            scene = (attacks.Scene(seed=k) if kind == "print" else
                     attacks.Scene(seed=k, picture_width_m=0.07, distance_m=0.22))
            for motion in motions:
                frames = list(attacks.attack_frames(picture, motion, scene, seconds=seconds))
                yield f"{Path(rel).stem} {kind} {motion}", rel, frames


def pipeline_for(engine, gallery, mode: str, landmarks, **settings):
    """A check-in pipeline on ``gallery``'s people with liveness ``mode``; nothing recorded."""
    from desktop.face.liveness import LivenessSettings
    from desktop.face.pipeline import CheckinPipeline, GalleryCheckinLog, PipelineSettings

    return CheckinPipeline(
        engine, gallery.matcher(engine.model_id),
        checkin_log=GalleryCheckinLog(gallery, engine.model_id, record=False),
        settings=PipelineSettings(liveness=LivenessSettings.of(mode), **settings),
        landmarks=landmarks)


def attacks_through(engine, gallery, clips, modes, landmarks) -> dict[str, Tally]:
    """Each clip through a fresh pipeline per mode; whether it checked anyone in."""
    tallies = {mode: Tally() for mode in modes}
    for label, _person, frames in clips:
        for mode in modes:
            pipeline = pipeline_for(engine, gallery, mode, landmarks)
            tracks = run_frames(pipeline, frames)
            o = Outcome(label)
            o.checked_in = any(t.checked_in for t in tracks.values())
            o.withheld = sum(t.withheld for t in tracks.values())
            o.frames = len(frames)
            main = max(tracks.values(), key=lambda t: t.frames, default=None)
            if main is not None:
                o.verdict, o.reason, o.decided_frames = (main.verdict, main.reason,
                                                         main.decided_frames)
            tallies[mode].outcomes.append(o)
    return tallies


def live_tracks(engine, gallery, clip: Path, modes, landmarks) -> dict[str, Tally]:
    import cv2

    capture = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    tallies = {}
    for mode in modes:
        pipeline = pipeline_for(engine, gallery, mode, landmarks, scan_min_face=40)
        tracks = run_frames(pipeline, frames)
        tallies[mode] = Tally([t for t in tracks.values() if t.frames >= 15])
    return tallies


def speed(clip: Path, engine, gallery, modes, landmarks) -> dict[str, tuple[float, float]]:
    """End-to-end frames/s of recognize-video's code path and the monitor's ms/frame."""
    from desktop.commands.recognize_video import recognize

    out = {}
    for mode in modes:
        pipeline = pipeline_for(engine, gallery, mode, landmarks, scan_min_face=40)
        pipeline.warm_up()
        run = recognize(str(clip), pipeline)
        out[mode] = (run.summary["fps"], pipeline.stats().liveness_ms)
    return out


def fmt_frames(values: list[int]) -> str:
    if not values:
        return "-"
    return (f"median {statistics.median(values):.0f} ({statistics.median(values) / FPS:.2f} s),"
            f" max {max(values)} ({max(values) / FPS:.2f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2, help="CPUs to use (default 2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--seconds", type=float, default=2.5, help="length of each attack")
    parser.add_argument("--challenge-seconds", type=float, default=7.5,
                        help="length of the still attacks in challenge mode")
    parser.add_argument("--quick", action="store_true",
                        help="three photos instead of ten (a smoke run)")
    args = parser.parse_args(argv)
    clip = args.data / "faces-dev" / "video" / "short_hamilton_clip.mp4"
    if not clip.is_file():
        print(f"skipped: {clip} not found (set FACESTYLE_SHARED_DATA)")
        return 0
    pinned = limit_cores(args.cores)
    from desktop.commands.gallery import load_engine
    from desktop.device import machine_line
    from desktop.face.liveness import LandmarkModel, attacks
    from desktop.store import Gallery
    from desktop.store.enrol import enrol_from_images

    print(f"{machine_line()} ({pinned})")
    photos = PHOTOS[::4] if args.quick else PHOTOS
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FACESTYLE_HOME", tmp)
        engine = load_engine().warm_up()
        gallery = Gallery(Path(tmp) / "gallery.sqlite3")
        video = args.data / "faces-dev" / "video"
        for name, rel in (("Lin-Manuel Miranda", "lin-manuel-miranda.png"),
                          ("Alex Lacamoire", "alex-lacamoire.png")):
            enrol_from_images(gallery, engine, name, [video / rel])
        for rel in photos:
            if "video/" in rel:
                continue
            # Two photos of one person: two people here (each attack then matches itself).
            enrol_from_images(gallery, engine, f"{Path(rel).parent.name} {Path(rel).stem}",
                              [args.data / "faces-dev" / rel], force=True)

        landmarks = LandmarkModel()
        landmarks.wait()  # the 68-point model: parsed once (about 10 s), then cached
        motions = tuple(attacks.MOTIONS)
        passive = attacks_through(engine, gallery, attack_clips(
            engine, args.data, photos, motions, args.seconds), ("off", "passive"), landmarks)
        still = attacks_through(engine, gallery, attack_clips(
            engine, args.data, photos, ("still",), args.challenge_seconds), ("challenge",),
            landmarks)
        live = live_tracks(engine, gallery, clip, ("passive", "challenge"), landmarks)
        fps = speed(clip, engine, gallery, ("off", "passive", "challenge"), landmarks)
        gallery.close()

    print(f"\nattacks: {len(passive['off'].outcomes)} clips of {args.seconds:g} s "
          f"({len(photos)} photos x print/phone x {len(motions)} motions: "
          f"{', '.join(motions)}); every one recognised as an enrolled person")
    print(f"{'mode':<30} {'APCER':>7} {'refused':>8} {'undecided':>10}  frames to refuse")
    rows = [("off (today)", passive["off"]), ("passive", passive["passive"]),
            (f"challenge, still, {args.challenge_seconds:g} s", still["challenge"])]
    for label, t in rows:
        apcer = t.share(lambda o: o.checked_in)
        refused = t.share(lambda o: o.verdict == "spoof")
        undecided = t.share(lambda o: o.verdict == "undecided" and not o.checked_in)
        print(f"{label:<30} {apcer:>7.1%} {refused:>8.1%} {undecided:>10.1%}  "
              f"{fmt_frames(t.decided_frames('spoof'))}")
    accepted = [o.label for _, t in rows[1:] for o in t.outcomes if o.checked_in]
    undecided = [o.label for o in passive["passive"].outcomes if o.verdict == "undecided"]
    print(f"accepted with liveness on: {', '.join(accepted) or 'none'}")
    print(f"passive, undecided: {', '.join(undecided) or 'none'}")
    reasons: dict[str, int] = {}
    for o in passive["passive"].outcomes:
        if o.verdict == "spoof":
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
    print("passive, refused because: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))

    print(f"\nlive: {clip.name}, face tracks of 15 frames or more")
    print(f"{'mode':<12} {'tracks':>6} {'BPCER':>7} {'live':>6} {'undecided':>10}  "
          "frames to live")
    for mode, t in live.items():
        print(f"{mode:<12} {len(t.outcomes):>6} {t.share(lambda o: o.verdict == 'spoof'):>7.1%}"
              f" {t.share(lambda o: o.verdict == 'live'):>6.1%}"
              f" {t.share(lambda o: o.verdict == 'undecided'):>10.1%}  "
              f"{fmt_frames(t.decided_frames('live'))}")
        for o in t.outcomes:
            print(f"    {o.label:<9} {o.frames:>4} frames: {o.verdict:<9} {o.reason:<14} "
                  f"after {o.decided_frames if o.decided_frames is not None else '-'} frames;"
                  f" checked in: {o.checked_in}")

    print(f"\nspeed on {clip.name} (recognize-video's code path, same run)")
    print(f"{'liveness':<10} {'frames/s':>9} {'liveness ms/frame':>18}")
    for mode, (f, ms) in fps.items():
        print(f"{mode:<10} {f:>9.1f} {ms:>18.2f}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
