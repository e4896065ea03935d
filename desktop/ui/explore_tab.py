"""The Explore tab: what the app's ConvNets learn.

Three pages, each driving the Qt-free core in :mod:`desktop.explore` off the UI thread:

* **Top patches** (:class:`~desktop.ui.explore.patches_page.PatchesPage`): for each unit of
  a VGG19 or face-encoder layer, the nine image patches (receptive-field crops) that
  activate it most over a folder, layers side by side, and one unit's activation map;
* **Feature visualisation** (:class:`~desktop.ui.explore.visualize_page.VisualizePage`):
  an image synthesised to make one unit fire, updated live;
* **Conv shapes** (:class:`~desktop.ui.explore.conv_page.ConvShapePage`): the output-size
  formula in 1D, 2D and 3D, checked against torch, with a drawing.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from desktop.ui.explore.conv_page import ConvShapePage
from desktop.ui.explore.look import STYLE_SHEET
from desktop.ui.explore.patches_page import PatchesPage
from desktop.ui.explore.visualize_page import VisualizePage

PAGES = ("patches", "visualize", "conv")


class ExploreTab(QWidget):
    title = "Explore"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exploreTab")
        self.setStyleSheet(STYLE_SHEET)
        self.patches = PatchesPage()
        self.visualize = VisualizePage()
        self.conv = ConvShapePage()
        self.pages = QTabWidget()
        self.pages.setObjectName("explorePages")
        self.pages.addTab(self.patches, "Top patches per unit")
        self.pages.addTab(self.visualize, "Feature visualisation")
        self.pages.addTab(self.conv, "Conv shapes: 1D, 2D, 3D")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.pages)
        self.patches.visualize_requested.connect(self.visualize_unit)
        self.patches.status.connect(lambda text: self._status("explore", text))
        self.visualize.status.connect(lambda text: self._status("explore-vis", text))

    def show_page(self, key: str) -> None:
        self.pages.setCurrentIndex(PAGES.index(key))

    def current_page(self) -> str:
        return PAGES[self.pages.currentIndex()]

    def visualize_unit(self, network: str, layer: str, unit: int) -> None:
        """Open the feature visualisation of one unit (ready to start)."""
        self.visualize.choose(network, layer, unit)
        self.show_page("visualize")

    def _status(self, key: str, text: str) -> None:
        setter = getattr(self.window(), "set_status_field", None)
        if callable(setter):
            setter(key, text)

    # -- main-window hooks ----------------------------------------------------------------
    def activated(self) -> None:
        self.patches.reopen_cached()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.activated()

    def save_state(self, settings: QSettings) -> None:
        settings.setValue("explore/page", self.current_page())
        self.patches.save_state(settings)
        self.visualize.save_state(settings)
        self.conv.save_state(settings)

    def restore_state(self, settings: QSettings) -> None:
        self.patches.restore_state(settings)
        self.visualize.restore_state(settings)
        self.conv.restore_state(settings)
        page = settings.value("explore/page", "patches")
        if page in PAGES:
            self.show_page(page)

    def shutdown(self) -> None:
        self.patches.shutdown()
        self.visualize.shutdown()
