"""Style from the camera: a painting that follows a live scene.

:func:`paint_live` takes camera frames as they come (the newest each time: a slow painter
skips frames rather than fall behind) and keeps one G going. For each new frame it warps G
by the optical flow from the previous frame (so the painting moves with the scene), then
takes a few optimiser iterations on that frame's J with the temporal term holding G to the
warped painting where the flow is reliable (:mod:`desktop.style.temporal`); disoccluded
parts are painted afresh from the camera picture. A scene cut (the flow follows less than
:data:`~desktop.style.video.SCENE_CUT_RELIABLE` of the pixels) restarts from the picture.

The frames per second it reports are painted frames per second over the last few seconds,
whatever the camera delivers.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from desktop.style import flow as flows
from desktop.style import images as imgs
from desktop.style.settings import StyleSettings
from desktop.style.temporal import TemporalTerm
from desktop.style.video import SCENE_CUT_RELIABLE
from desktop.tasks import CancelToken

#: Iterations per camera frame: enough to keep the painting alive, few enough to follow.
DEFAULT_ITERATIONS = 4
#: Longest side of the live painting, pixels.
DEFAULT_SIZE = 192


@dataclass
class LiveFrame:
    """One painted camera frame: the picture, the painting, and the measured pace."""

    input: np.ndarray = field(repr=False)  # (H, W, 3) RGB uint8 at the painting size
    image: np.ndarray = field(repr=False)  # (H, W, 3) RGB uint8
    frame_index: int  # the camera's frame counter (gaps: frames skipped)
    fps: float  # painted frames per second, over the last few seconds
    total: float  # J of the painting
    reliable: float | None  # fraction of pixels the flow followed (None: restarted)


def paint_live(next_frame: Callable[[], tuple[int, np.ndarray] | None],
               styles: list[np.ndarray], settings: StyleSettings,
               iterations: int = DEFAULT_ITERATIONS, temporal_weight: float | None = None,
               cancel: CancelToken | None = None, flow: str = flows.DEFAULT_METHOD,
               ) -> Iterator[LiveFrame]:
    """Paint the frames ``next_frame()`` returns (``(index, RGB uint8)``, or None while no
    new one has come; it should wait a little itself) until ``cancel`` is cancelled.

    ``settings.size`` is the painting's longest side; the first frame starts from the
    picture and gets ``settings.iterations``, later ones ``iterations`` each.
    """
    from desktop.style.optimize import stylize
    from desktop.style.video import DEFAULT_TEMPORAL_WEIGHT

    gamma = DEFAULT_TEMPORAL_WEIGHT if temporal_weight is None else float(temporal_weight)
    painted: collections.deque[float] = collections.deque(maxlen=30)
    previous: np.ndarray | None = None
    painting: np.ndarray | None = None
    while True:
        if cancel is not None:
            cancel.checkpoint()
        got = next_frame()
        if got is None:
            continue
        index, picture = got
        frame = imgs.resize_longest(np.ascontiguousarray(picture[..., :3]), int(settings.size))
        start = term = None
        reliable = None
        job = settings
        if previous is not None and painting is not None and previous.shape == frame.shape:
            pair = flows.pair(previous, frame, flow)
            if pair.reliable_fraction >= SCENE_CUT_RELIABLE:
                reliable = pair.reliable_fraction
                start = flows.warp(painting, pair.backward)
                term = TemporalTerm(gamma, [start], [pair.mask]) if gamma else None
                job = dataclasses.replace(settings, iterations=int(iterations),
                                          multiscale=False)
        last = None
        for report in stylize(frame, styles, job, cancel, init_image=start, temporal=term):
            last = report
        assert last is not None
        previous, painting = frame, last.image
        now = time.monotonic()
        painted.append(now)
        recent = [t for t in painted if now - t <= 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and \
            recent[-1] > recent[0] else 0.0
        yield LiveFrame(frame, last.image, index, fps, last.total, reliable)
