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


def background_threads() -> int:
    """Torch intra-op threads for background work: every core but one (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


def responsive_gil() -> None:
    """Let the UI thread take the GIL back within about :data:`GIL_SWITCH_S` (never
    raises a lower setting). Cheap, and imports nothing."""
    if sys.getswitchinterval() > GIL_SWITCH_S:
        sys.setswitchinterval(GIL_SWITCH_S)


def share_cores_with_ui() -> None:
    """Leave a core and the GIL to the UI thread. Imports torch: call it in a worker."""
    import torch

    n = background_threads()
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
