"""facestyle: webcam check-in by one-shot face recognition, and neural style painting.

The package is split into a Qt-free core (``desktop.face``, ``desktop.style``,
``desktop.store`` and the small modules beside them) and a thin Qt layer
(``desktop.ui``) that drives the core off the UI thread.
"""

import os

# torch's OpenMP threads spin-wait between parallel regions by default. On a 2-core desk
# PC that starves the UI thread and the camera thread (a 2-thread detection took 0.7-1.7 s
# instead of ~0.1 s with other work running). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
APP_NAME = "facestyle"
APP_DISPLAY_NAME = "facestyle"
ORG_NAME = "facestyle"
