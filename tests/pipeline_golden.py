"""A fixed scenario for the check-in pipeline and its complete output, to compare with a
recording made before liveness existed (``tests/data/pipeline_before_liveness.json``).

Run as a script to (re)write that recording: ``PYTHONPATH=.:tests python
tests/pipeline_golden.py``. It was written by the pipeline of commit f3b45fe (before
liveness); the test holds every later pipeline with liveness off to the same output.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from live_fakes import Clock, FakeCheckinLog, FakeEngine, FakeMatcher, scene, walk

from desktop.face.pipeline import CheckinPipeline, PipelineSettings

RECORDING = Path(__file__).parent / "data" / "pipeline_before_liveness.json"
FPS = 30.0


def scenario() -> list[tuple[list[tuple[str, int, int]], int]]:
    """(people, background seed) per frame: ann walks in and checks in, the scene cuts,
    bob and a stranger walk together, everyone leaves, ann comes back within the cooldown."""
    frames: list[tuple[list[tuple[str, int, int]], int]] = []
    frames += [(p, 0) for p in walk("ann", 45)]
    frames += [([], 0)] * 6
    both = [[("bob", 30 + 2 * i, 40 + i // 3), ("stranger", 200 - 2 * i, 120)] for i in range(40)]
    frames += [(p, 1) for p in both]
    frames += [([], 1)] * 8
    frames += [(p, 1) for p in walk("ann", 30, start=(150, 80), step=(-2, 1))]
    return frames


def run(pipeline_kwargs: dict | None = None, *, settings: dict | None = None,
        prepare=None) -> dict:
    """Play :func:`scenario` through a pipeline with the fake engine, matcher, log and
    clock; return every output as plain JSON data. ``settings``: more
    :class:`PipelineSettings` fields; ``prepare(pipeline)`` runs before the first frame."""
    engine = FakeEngine()
    log = FakeCheckinLog()
    clock = Clock()
    pipeline = CheckinPipeline(engine, FakeMatcher(), checkin_log=log, clock=clock,
                               settings=PipelineSettings(cooldown_s=600.0, **(settings or {})),
                               **(pipeline_kwargs or {}))
    if prepare is not None:
        prepare(pipeline)
    frames = []
    for i, (people, bg) in enumerate(scenario()):
        clock.now += 1.0 / FPS
        r = pipeline.process(scene(people, bg_seed=bg), i, i / FPS)
        frames.append({
            "frame": r.frame_index, "scene_time": r.scene_time, "size": list(r.size),
            "detected": r.detected,
            "faces": [_plain(dataclasses.asdict(f)) for f in r.faces],
            "events": [_plain(dataclasses.asdict(e)) for e in r.events],
            "embedded": r.times.embedded, "scanned": r.times.scanned,
            "refreshed": r.times.refreshed, "json": r.to_json(),
            **({"withheld": [_plain(dataclasses.asdict(w)) for w in r.withheld]}
               if getattr(r, "withheld", ()) else {}),
        })
    return {"frames": frames, "detect_calls": engine.detect_calls,
            "faces_embedded": engine.faces_embedded,
            "recorded": [_plain(dataclasses.asdict(e)) for e in log.recorded]}


#: Fields FaceResult gained after the recording, with the value each has while liveness
#: is off.
ADDED_FACE_FIELDS = {"liveness": None, "withheld": None}


def split_added_fields(output: dict) -> list[dict]:
    """Remove from ``output`` (in place) the face fields added since the recording;
    returns them, one dict per face, for the caller to check."""
    added = []
    for frame in output["frames"]:
        for face in frame["faces"]:
            added.append({k: face.pop(k) for k in ADDED_FACE_FIELDS if k in face})
    return added


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


if __name__ == "__main__":
    RECORDING.write_text(json.dumps(run(), indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {RECORDING}")
