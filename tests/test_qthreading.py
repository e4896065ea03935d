import os
import sys
import threading
import time

import pytest

from desktop.errors import FacestyleError
from desktop.ui.qthreading import Worker, shutdown_workers


def test_function_result_and_progress_arrive_in_the_ui_thread(qtbot):
    main = threading.get_ident()
    seen = {}

    def work(x, progress):
        seen["thread"] = threading.get_ident()
        progress(0.5, "half")
        return x * 2

    worker = Worker(work, 21)
    progress = []
    worker.progress.connect(lambda f, m: progress.append((f, m, threading.get_ident())))
    with qtbot.waitSignal(worker.result, timeout=5000) as blocker:
        worker.start()
    assert blocker.args == [42]
    assert seen["thread"] != main
    qtbot.waitUntil(lambda: bool(progress))
    assert progress[0] == (0.5, "half", main)


def test_errors_are_delivered_not_raised(qtbot):
    def fails():
        raise FacestyleError("no face in the photo")

    worker = Worker(fails)
    with qtbot.waitSignal(worker.error, timeout=5000) as blocker:
        worker.start()
    exc = blocker.args[0]
    assert isinstance(exc, FacestyleError) and exc.message == "no face in the photo"
    assert exc.__traceback__ is not None


def test_cancel_stops_a_function_that_polls_its_token(qtbot):
    steps = []

    def loop(cancel):
        for i in range(1000):
            cancel.checkpoint()
            steps.append(i)
            time.sleep(0.01)
        return "finished"

    worker = Worker(loop)
    results = []
    worker.result.connect(results.append)
    worker.start()
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=5000)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.cancel()
    assert results == [] and len(steps) < 1000


def test_generator_yields_pauses_resumes_and_returns(qtbot):
    def gen():
        for i in range(5):
            time.sleep(0.02)
            yield i
        return "done"

    worker = Worker(gen)
    values = []
    worker.yielded.connect(values.append)
    worker.start()
    qtbot.waitUntil(lambda: len(values) >= 1, timeout=5000)
    worker.pause()
    time.sleep(0.2)
    qtbot.wait(50)
    frozen = len(values)
    time.sleep(0.2)
    qtbot.wait(50)
    assert len(values) == frozen < 5
    with qtbot.waitSignal(worker.result, timeout=5000) as blocker:
        worker.resume()
    assert values == [0, 1, 2, 3, 4] and blocker.args == ["done"]


def test_latest_only_never_queues_behind_a_fast_producer(qtbot):
    def fast():
        yield from range(2000)

    worker = Worker(fast, latest_only=True)
    values = []
    worker.yielded.connect(values.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    qtbot.wait(20)
    assert values[-1] == 1999  # the newest value is always shown
    assert values == sorted(values)  # never out of order
    assert len(values) < 2000  # stale values were skipped, not queued


def test_shutdown_cancels_running_workers(qtbot):
    def forever(cancel):
        while True:
            cancel.checkpoint()
            time.sleep(0.01)

    worker = Worker(forever).start()
    qtbot.waitUntil(lambda: worker.is_running)
    assert shutdown_workers(timeout=5)
    assert not worker.is_running


def test_a_worker_runs_once(qtbot):
    worker = Worker(lambda: 1)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    with pytest.raises(RuntimeError):
        worker.start()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread nice values: Linux")
def test_low_priority_workers_run_below_the_ui_on_every_core(qtbot):
    """A low-priority worker's thread (and the threads it starts) run at a higher nice
    value than the UI thread and take every core; a normal worker leaves one core free."""
    import torch

    from desktop.ui.torch_runtime import LOW_PRIORITY_NICE, share_cores_with_ui

    def probe():
        share_cores_with_ui()
        seen = {}

        def child():
            seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        t = threading.Thread(target=child)
        t.start()
        t.join()
        return (os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen["child"],
                torch.get_num_threads())

    ui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    results = {}
    for low in (True, False):
        worker = Worker(probe, low_priority=low)
        with qtbot.waitSignal(worker.result, timeout=60_000) as blocker:
            worker.start()
        results[low] = blocker.args[0]
    nice, child_nice, threads = results[True]
    assert nice >= max(ui_nice, LOW_PRIORITY_NICE) and child_nice == nice
    assert threads == (os.cpu_count() or 2)
    nice, _, threads = results[False]
    assert nice == ui_nice and threads == max(1, (os.cpu_count() or 2) - 1)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ui_nice
