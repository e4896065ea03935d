"""facestyle: webcam check-in by one-shot face recognition, and neural style painting.

The package is split into a Qt-free core (``desktop.face``, ``desktop.style``,
``desktop.store`` and the small modules beside them) and a thin Qt layer
(``desktop.ui``) that drives the core off the UI thread.
"""

import os as _os
import sys as _sys

# OpenMP worker threads that spin while waiting for work take the cores that the camera,
# decoding and UI threads need. Measured on a loaded 2-core machine: the live pipeline ran
# at 2-3 frames/s with spinning threads and 15-22 frames/s with sleeping ones. Must be set
# before torch loads its OpenMP runtime; an explicit setting in the environment wins.
OMP_POLICY_FROM_ENVIRONMENT = "OMP_WAIT_POLICY" in _os.environ
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def use_openmp_default_wait() -> bool:
    """Give OpenMP back its own wait policy, for a headless, compute-bound process (no UI,
    camera or decoding threads to starve), such as ``facestyle stylize``.

    The OpenMP runtime's default spins briefly between parallel regions before sleeping
    (and spins less when the machine is oversubscribed). A style iteration is a few hundred
    short back-to-back regions; at 256 px it took 66 ms with the default against 75 ms
    with the app's PASSIVE policy (2 cores). Works only before torch is imported, and never
    overrides a policy set in the environment; returns whether it changed anything.
    """
    if OMP_POLICY_FROM_ENVIRONMENT or "torch" in _sys.modules:
        return False
    _os.environ.pop("OMP_WAIT_POLICY", None)
    return True


__version__ = "0.1.0"
APP_NAME = "facestyle"
APP_DISPLAY_NAME = "facestyle"
ORG_NAME = "facestyle"
