"""The 68-point landmark model for liveness challenges, loaded in the background.

The model file is 100 MB; parsing it takes about 10 s the first time (then the parsed
arrays load from the user cache in well under a second). The live pipeline must never
wait for that, so :class:`LandmarkModel` loads it in a daemon thread on the first
:meth:`~LandmarkModel.request` and answers None from :meth:`~LandmarkModel.get` until it
is ready; the CLI can :meth:`~LandmarkModel.wait` for it instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


_shared_lock = threading.Lock()
_shared: Any = None


def _load_default() -> Any:
    """The 68-point model, parsed at most once per process and shared by every
    :class:`LandmarkModel` (each live pipeline and liveness monitor makes one): a second
    loader waits for the first instead of parsing the file beside it (about 10 s of
    numpy-heavy work, sharing the GIL with the UI thread: seen in the test suite, two
    parses left running by earlier pipelines, beside a fine-tune starting, stalled the
    UI thread's 10 ms heartbeat for 130-300 ms)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            from desktop.face.landmarks import ShapePredictor

            _shared = ShapePredictor.load_68()
        return _shared


class LandmarkModel:
    """A shape predictor loaded once, off the caller's thread.

    Args:
        loader: makes the predictor (default: the 68-point model from
            ``face_recognition_models``); tests pass a ready one or a fake.
    """

    def __init__(self, loader: Callable[[], Any] | None = None) -> None:
        self._loader = loader or _load_default
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._model: Any = None
        self.error: BaseException | None = None

    @classmethod
    def ready(cls, model: Any) -> LandmarkModel:
        """A LandmarkModel that already holds ``model``."""
        made = cls(lambda: model)
        made._model = model
        made._done.set()
        return made

    def request(self) -> None:
        """Start loading in a daemon thread unless loading started already."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return
            self._thread = threading.Thread(target=self._load, name="landmarks-68",
                                            daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            self._model = self._loader()
        except Exception as exc:  # reported once; challenges then cannot run
            log.error("the 68-point landmark model could not be loaded: %s", exc)
            self.error = exc
        finally:
            self._done.set()

    @property
    def loading(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def get(self) -> Any:
        """The model when loaded, else None (never blocks)."""
        return self._model if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> Any:
        """Load (if not yet asked) and wait for the model; raises the loading error."""
        self.request()
        if not self._done.wait(timeout):
            raise TimeoutError("the 68-point landmark model is still loading")
        if self.error is not None:
            raise self.error
        return self._model
