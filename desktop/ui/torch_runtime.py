"""How torch shares a desk PC with the UI: one policy for every background job.

* Torch's intra-op pool gets every core but one, so the UI thread always has a core
  (check-in, style painting and training all run in the same process).
* Python's thread switch interval drops to 1 ms, so the UI thread gets the GIL back
  quickly from a worker running Python-heavy code.
* Creating the first torch optimizer imports ``torch._dynamo`` (some 300,000 Python
  objects). Measured on the 2-core machine, the full garbage collections that import
  triggers each held the interpreter for 0.4 to 0.6 s. So it is imported with the
  collector paused, and then the objects alive (modules, torch, the app) are frozen
  (``gc.freeze``): later full collections skip them, which keeps each one short.

* A long compute job that runs on a low-priority thread (the Style tab's painting, see
  :func:`lower_thread_priority`) gets *every* core instead: torch's thread count is a
  per-thread setting, so its OpenMP team has one thread per core, created from the
  lowered thread and so at its priority; the UI thread, at normal priority, preempts
  them whenever it has work. Measured with ``bench/checkin_ui_heartbeat.py --style``.

Call :func:`prepare_background_torch` at the start of a worker (it is idempotent and
cheap after the first call). ``OMP_WAIT_POLICY=PASSIVE`` (see ``desktop/__init__.py``)
completes the picture.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

#: Python's thread switch interval while background work runs, in seconds (default 0.005).
GIL_SWITCH_S = 0.001

_lock = threading.Lock()
_optim_ready = False


#: How much lower than normal a low-priority job thread runs (Linux nice value, 0-19).
LOW_PRIORITY_NICE = 10

_lowered = threading.local()


def background_threads(all_cores: bool = False) -> int:
    """Torch intra-op threads for background work: every core but one (at least one), or
    every core for a job on a low-priority thread."""
    cores = os.cpu_count() or 2
    return cores if all_cores else max(1, cores - 1)


def lower_thread_priority() -> bool:
    """Lower the calling thread's OS priority (once; threads it creates inherit it).

    Linux: nice +:data:`LOW_PRIORITY_NICE` for this thread only (``setpriority`` on its
    thread id). Elsewhere: Qt's ``LowPriority`` for the current thread. Returns whether
    the priority is now lowered."""
    if getattr(_lowered, "done", False):
        return True
    done = False
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, max(now, LOW_PRIORITY_NICE))
            done = True
        except OSError:
            done = False
    else:
        try:
            from PySide6.QtCore import QThread

            QThread.currentThread().setPriority(QThread.Priority.LowPriority)
            done = True
        except Exception:  # no Qt thread here: leave the priority as it is
            done = False
    _lowered.done = done
    return done


def thread_is_lowered() -> bool:
    """Whether :func:`lower_thread_priority` lowered the calling thread."""
    return bool(getattr(_lowered, "done", False))


def responsive_gil() -> None:
    """Let the UI thread take the GIL back within about :data:`GIL_SWITCH_S` (never
    raises a lower setting). Cheap, and imports nothing."""
    if sys.getswitchinterval() > GIL_SWITCH_S:
        sys.setswitchinterval(GIL_SWITCH_S)


def share_cores_with_ui() -> None:
    """Leave a core (unless this thread's priority is lowered: then every core) and the
    GIL to the UI thread. Imports torch: call it in a worker."""
    import torch

    n = background_threads(all_cores=thread_is_lowered())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    responsive_gil()


def preload_torch_optim() -> None:
    """Import ``torch._dynamo`` with the collector paused, then freeze the heap (once)."""
    global _optim_ready
    with _lock:
        if _optim_ready:
            return
        if "torch._dynamo" not in sys.modules:
            enabled = gc.isenabled()
            gc.disable()
            try:
                import torch._dynamo  # noqa: F401 - imported for its side effect
            finally:
                if enabled:
                    gc.enable()
        gc.freeze()
        _optim_ready = True


def prepare_background_torch(optimizers: bool = False) -> None:
    """:func:`share_cores_with_ui`, plus :func:`preload_torch_optim` for jobs that
    create torch optimizers (training, style painting)."""
    share_cores_with_ui()
    if optimizers:
        preload_torch_optim()
