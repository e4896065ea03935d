"""facestyle: webcam check-in by one-shot face recognition, and neural style painting.

The package is split into a Qt-free core (``desktop.face``, ``desktop.style``,
``desktop.store`` and the small modules beside them) and a thin Qt layer
(``desktop.ui``) that drives the core off the UI thread.
"""

__version__ = "0.1.0"
APP_NAME = "facestyle"
APP_DISPLAY_NAME = "facestyle"
ORG_NAME = "facestyle"
