"""facestyle: webcam check-in by one-shot face recognition, and neural style painting.

The package is split into a Qt-free core (``desktop.face``, ``desktop.style``,
``desktop.store`` and the small modules beside them) and a thin Qt layer
(``desktop.ui``) that drives the core off the UI thread.
"""

import os as _os

# OpenMP worker threads that spin while waiting for work take the cores that the camera,
# decoding and UI threads need. Measured on a loaded 2-core machine: the live pipeline ran
# at 2-3 frames/s with spinning threads and 15-22 frames/s with sleeping ones. Must be set
# before torch loads its OpenMP runtime; an explicit setting in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
APP_NAME = "facestyle"
APP_DISPLAY_NAME = "facestyle"
ORG_NAME = "facestyle"
