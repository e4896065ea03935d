import threading
import time

import pytest

from desktop.errors import Cancelled
from desktop.tasks import CancelToken, scaled


def test_checkpoint_blocks_while_paused_and_raises_when_cancelled():
    token = CancelToken()
    token.pause()
    passed = threading.Event()

    def loop():
        try:
            token.checkpoint()
            passed.set()
        except Cancelled:
            pass

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.05)
    assert not passed.is_set()
    token.resume()
    t.join(2)
    assert passed.is_set()
    token.cancel()
    with pytest.raises(Cancelled):
        token.checkpoint()


def test_scaled_progress_maps_into_its_range():
    seen = []
    report = scaled(lambda f, m="": seen.append((f, m)), 0.5, 1.0)
    report(0.0, "a")
    report(0.5)
    report(2.0)
    assert seen == [(0.5, "a"), (0.75, ""), (1.0, "")]
