"""The "Top patches" page: pick a network, a layer and images; see what each unit likes.

Left: the network (VGG19, the Style tab's, or the face encoder f(x)), the layer (with its
receptive field and stride), up to two more layers to compare with, the images (a folder,
the faces in a folder, or the gallery's face chips), k and the per-image limit, and
**Index** (progress, ETA and Cancel). Right: the units of the layer, a page at a time,
each as a 3 x 3 tile of its strongest patches (click one for its patches, images and
activation map), or the layers side by side. Results are cached on disk by the folder's
content, so reopening a folder (or the tab) shows them at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.explore.index import IndexSettings, LayerIndex, images_per_second
from desktop.explore.networks import layers_of, open_network
from desktop.explore.sources import (
    FaceChipSource,
    GalleryChipSource,
    ImageFolderSource,
    ImageSource,
)
from desktop.ui.explore.compare_view import CompareView
from desktop.ui.explore.index_job import IndexJob
from desktop.ui.explore.unit_detail import UnitDetail
from desktop.ui.explore.unit_grid import UnitGrid, item_loader
from desktop.ui.explore.widgets import (
    compact,
    describe,
    fact,
    group,
    scroll_area,
    select_data,
    write_and_say,
)
from desktop.ui.qthreading import Worker
from desktop.ui.settings import read
from desktop.ui.style.message_bar import ERROR, INFO, MessageBar

NETWORK_TITLES = {"vgg19": "VGG19 (the Style tab's network)",
                  "encoder": "Face encoder f(x) (Check-in)"}
SOURCE_FOLDER, SOURCE_GALLERY = "folder", "gallery"
VIEW_UNITS, VIEW_COMPARE = "units", "compare"
DEFAULT_LAYERS = {"vgg19": ("relu3_1", "relu1_1", "relu5_1"),
                  "encoder": ("level3", "stem", "level1")}
PANEL_WIDTH = 370


def suggested_folders() -> list[Path]:
    """Folders worth offering: the development data beside the project (and its parts),
    then the user's Pictures folder; only those that exist."""
    import desktop

    shared = Path(os.environ.get("FACESTYLE_SHARED_DATA",
                                 Path(desktop.__file__).resolve().parents[2] / "shared" / "data"))
    out = [shared, shared / "nst-dev", shared / "faces-dev", Path.home() / "Pictures"]
    return [p for p in out if p.is_dir()]


def _save_sheet(index: LayerIndex, units: list[int], source: ImageSource, path: str,
                title: str) -> str:
    from desktop.explore.patches import sheet
    from desktop.imageio import save_png

    image = sheet(index, units, item_loader(source, index), title=title)
    save_png(path, image, {"facestyle-explore": json.dumps(
        {"network": index.network, "layer": index.layer, "units": units})})
    return path


class PatchesPage(QWidget):
    """The page; ``visualize_requested(network, layer, unit)`` asks the tab to switch to
    the feature visualisation of a unit."""

    visualize_requested = Signal(str, str, int)
    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = IndexJob(self)
        self.results: dict[str, LayerIndex] = {}
        self.source: ImageSource | None = None
        self.result_network = ""
        self._details: list[UnitDetail] = []
        self._save_worker: Worker | None = None
        self._build_controls()
        self._build_view()

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.panel)
        splitter.addWidget(self.view)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([PANEL_WIDTH, 900])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.job.progress.connect(self._on_progress)
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.stopped.connect(self._on_stopped)
        self.job.running_changed.connect(self._on_running)
        self._network_changed()

    # -- building ----------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.network = QComboBox()
        for key, title in NETWORK_TITLES.items():
            self.network.addItem(title, key)
        self.layer = QComboBox()
        self.layer.setToolTip("The layer whose units to look at. RF: the receptive field, how "
                              "many input pixels one unit sees; stride: how far apart "
                              "neighbouring units look.")
        self.layer_facts = fact("")
        self.compare = [QComboBox(), QComboBox()]
        for combo in self.compare:
            combo.setToolTip("Index this layer too and show it beside the first "
                             "(Compare layers view)")

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("A folder of images (searched recursively)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.suggest = QToolButton()
        self.suggest.setText("▾")
        self.suggest.setToolTip("Suggested folders")
        self.suggest.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.suggest)
        for path in suggested_folders():
            menu.addAction(str(path), lambda p=path: self.folder.setText(str(p)))
        self.suggest.setMenu(menu)
        self.suggest.setEnabled(bool(menu.actions()))
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.suggest)
        folder_row.addWidget(browse)
        self.from_folder = QRadioButton("Faces found in the folder")
        self.from_gallery = QRadioButton("The gallery's face chips")
        self.from_folder.setChecked(True)
        self.source_kind = QButtonGroup(self)
        self.source_kind.addButton(self.from_folder)
        self.source_kind.addButton(self.from_gallery)
        self.max_side = QSpinBox()
        self.max_side.setRange(64, 2048)
        self.max_side.setSingleStep(64)
        self.max_side.setValue(512)
        self.max_side.setSuffix(" px")
        self.max_side.setToolTip("Images are shrunk to this longest side before the network "
                                 "sees them (never enlarged)")
        self.chip_note = fact("The encoder sees aligned 150 x 150 face chips: faces are "
                              "found and aligned as at check-in (cached).")

        images_box = QWidget()
        images_layout = QVBoxLayout(images_box)
        images_layout.setContentsMargins(0, 0, 0, 0)
        images_layout.addLayout(folder_row)
        images_layout.addWidget(self.from_folder)
        images_layout.addWidget(self.from_gallery)
        images_layout.addWidget(self.chip_note)
        side_row = QHBoxLayout()
        self.max_side_label = QLabel("Longest side")
        side_row.addWidget(self.max_side_label)
        side_row.addWidget(self.max_side)
        side_row.addStretch(1)
        images_layout.addLayout(side_row)

        self.top_k = QSpinBox()
        self.top_k.setRange(1, 64)
        self.top_k.setValue(9)
        self.top_k.setToolTip("Patches kept per unit (a tile shows the first nine)")
        self.per_image = QSpinBox()
        self.per_image.setRange(1, 16)
        self.per_image.setValue(1)
        self.per_image.setToolTip("At most this many of a unit's patches from one image")
        form = QFormLayout()
        form.addRow("Patches per unit (k)", self.top_k)
        form.addRow("At most per image", self.per_image)

        self.index_button = QPushButton("Index")
        self.index_button.setProperty("primary", True)
        self.index_button.setToolTip("Run the network over the images and keep each unit's "
                                     "strongest patches (cached: instant the second time)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.index_button)
        run_row.addWidget(self.cancel_button)
        run_row.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_text = fact("")
        self.summary = fact("")
        self.skipped = fact("")

        net_box = QWidget()
        net_layout = QFormLayout(net_box)
        net_layout.setContentsMargins(0, 0, 0, 0)
        net_layout.addRow("Network", self.network)
        net_layout.addRow("Layer", self.layer)
        net_layout.addRow("", self.layer_facts)
        net_layout.addRow("Compare with", self.compare[0])
        net_layout.addRow("", self.compare[1])

        index_box = QWidget()
        index_layout = QVBoxLayout(index_box)
        index_layout.setContentsMargins(0, 0, 0, 0)
        index_layout.addLayout(form)
        index_layout.addLayout(run_row)
        index_layout.addWidget(self.progress)
        index_layout.addWidget(self.progress_text)
        index_layout.addWidget(self.summary)
        index_layout.addWidget(self.skipped)

        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(8, 8, 10, 8)
        column.setSpacing(10)
        column.addWidget(group("Network and layer", net_box))
        column.addWidget(group("Images", images_box))
        column.addWidget(group("Index", index_box))
        column.addStretch(1)
        body.setMinimumWidth(PANEL_WIDTH - 24)
        self.panel = scroll_area(body)
        self.panel.setMinimumWidth(260)
        self.panel.setMaximumWidth(PANEL_WIDTH + 120)
        for combo in (self.network, self.layer, *self.compare):
            compact(combo, 18)

        self.network.currentIndexChanged.connect(lambda _: self._network_changed())
        self.layer.currentIndexChanged.connect(lambda _: self._layer_changed())
        self.from_gallery.toggled.connect(lambda _: self._source_changed())
        self.index_button.clicked.connect(self.start_index)
        self.cancel_button.clicked.connect(self.job.cancel)

    def _build_view(self) -> None:
        self.message = MessageBar()
        self.units_button = QToolButton()
        self.units_button.setText("Units")
        self.units_button.setToolTip("One layer's units, a page at a time")
        self.compare_button = QToolButton()
        self.compare_button.setText("Compare layers")
        self.compare_button.setToolTip("The layers side by side")
        self.views = QButtonGroup(self)
        for button in (self.units_button, self.compare_button):
            button.setCheckable(True)
            button.setProperty("segment", True)
            self.views.addButton(button)
        self.units_button.setChecked(True)
        self.save_sheet = QPushButton("Save sheet…")
        self.save_sheet.setToolTip("This page's tiles as one PNG (as facestyle explore "
                                   "top-patches --sheet)")
        self.save_json = QPushButton("Save JSON…")
        self.save_json.setToolTip("This page's units and their patches (image, position, "
                                  "receptive-field box, activation) as JSON")
        bar = QHBoxLayout()
        bar.addWidget(self.units_button)
        bar.addWidget(self.compare_button)
        bar.addStretch(1)
        bar.addWidget(self.save_sheet)
        bar.addWidget(self.save_json)

        self.grid = UnitGrid()
        self.compare_view = CompareView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.compare_view)
        self.empty = fact("Pick a folder of images on the left and press Index. Each unit "
                          "then shows the nine image patches that excite it most: small "
                          "colour and edge patches in relu1_1, textures and parts deeper, "
                          "whole objects and faces in relu5_1.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setContentsMargins(80, 0, 80, 0)
        self.stack.addWidget(self.empty)
        self.stack.setCurrentWidget(self.empty)

        self.view = QWidget()
        layout = QVBoxLayout(self.view)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.message)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

        self.views.buttonClicked.connect(lambda _: self._show_results())
        self.grid.unit_clicked.connect(self.open_unit)
        self.compare_view.unit_clicked.connect(self.open_unit)
        self.save_sheet.clicked.connect(self.ask_save_sheet)
        self.save_json.clicked.connect(self.ask_save_json)
        self._update_buttons()

    # -- choices -----------------------------------------------------------------------
    def network_key(self) -> str:
        return self.network.currentData()

    def _network_changed(self) -> None:
        key = self.network_key()
        layers = layers_of(key)
        for combo in (self.layer, *self.compare):
            combo.blockSignals(True)
            combo.clear()
            if combo is not self.layer:
                combo.addItem("—", "")
            for info in layers:
                g = info.geometry
                combo.addItem(f"{info.name}  (RF {g.size} px, stride {g.jump})", info.name)
            combo.blockSignals(False)
        first, *others = DEFAULT_LAYERS[key]
        select_data(self.layer, first)
        for combo, name in zip(self.compare, others, strict=True):
            select_data(combo, name)
        encoder = key == "encoder"
        for widget in (self.from_folder, self.from_gallery, self.chip_note):
            widget.setVisible(encoder)
        self.max_side.setVisible(not encoder)
        self.max_side_label.setVisible(not encoder)
        self._layer_changed()
        self._source_changed()

    def _layer_changed(self) -> None:
        name = self.layer.currentData()
        if not name:
            return
        info = next(i for i in layers_of(self.network_key()) if i.name == name)
        g = info.geometry
        note = f" ({info.note})" if info.note else ""
        self.layer_facts.setText(f"{info.channels} units{note}; each sees {g.size} x {g.size} "
                                 f"input pixels, neighbours {g.jump} px apart.")

    def _source_changed(self) -> None:
        gallery = self.network_key() == "encoder" and self.from_gallery.isChecked()
        self.folder.setEnabled(not gallery)
        self.suggest.setEnabled(not gallery and bool(self.suggest.menu().actions()))

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images", self.folder.text())
        if path:
            self.folder.setText(path)

    def chosen_layers(self) -> list[str]:
        names = [self.layer.currentData()] + [c.currentData() for c in self.compare]
        return list(dict.fromkeys(n for n in names if n))

    def settings(self) -> IndexSettings:
        return IndexSettings(top_k=self.top_k.value(), per_image=self.per_image.value())

    def make_source(self) -> ImageSource | None:
        """The source the controls describe, or None (with a message saying what is
        missing)."""
        if self.network_key() == "encoder" and self.from_gallery.isChecked():
            return GalleryChipSource()
        text = self.folder.text().strip()
        if not text:
            self.message.show_message("Choose a folder of images first (Browse…, or ▾ for "
                                      "suggestions).", ERROR)
            return None
        folder = Path(text).expanduser()
        if not folder.is_dir():
            self.message.show_message(f"{folder} is not a folder.", ERROR)
            return None
        if self.network_key() == "encoder":
            return FaceChipSource(folder)
        return ImageFolderSource(folder, self.max_side.value())

    # -- indexing ----------------------------------------------------------------------
    def start_index(self, cache_only: bool = False) -> bool:
        if self.job.running:
            return False
        source = self.make_source()
        if source is None:
            return False
        self.message.clear()
        self.progress.setValue(0)
        self.progress_text.setText("Starting…")
        self._pending_network = self.network_key()
        self.job.start(source, self._pending_network, self.chosen_layers(), self.settings(),
                       cache_only=cache_only)
        return True

    def _on_running(self, running: bool) -> None:
        self.index_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.network, self.layer, *self.compare, self.folder, self.top_k,
                       self.per_image, self.max_side, self.from_folder, self.from_gallery):
            widget.setEnabled(not running)
        if not running:
            self._source_changed()
            self.status.emit("")

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress_text.setText(text)
        self.status.emit(f"Explore: {int(fraction * 100)}%")

    def _on_done(self, results: dict[str, LayerIndex]) -> None:
        self.progress.setValue(1000)
        self.source = self.job.source
        self.result_network = self._pending_network
        if not results:  # cache_only and nothing cached
            self.progress_text.setText("")
            return
        self.results = results
        first = next(iter(results.values()))
        used = int((first.sizes[:, 0] >= 0).sum())
        cached = all(r.from_cache for r in results.values())
        how = ("from the cache" if cached else
               f"in {first.seconds:.1f} s ({images_per_second(first):.1f} images/s, "
               f"{first.precision})")
        self.progress_text.setText("")
        what = "faces" if self.source is not None and self.source.chip_faces() else "images"
        self.summary.setText(f"{used} {what} from {first.source}; {', '.join(results)} "
                             f"indexed {how}.")
        skipped = first.skipped
        if skipped:
            names = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:4])
            more = f" and {len(skipped) - 4} more" if len(skipped) > 4 else ""
            self.skipped.setText(f"Skipped {len(skipped)}: {names}{more}.")
        else:
            self.skipped.setText("")
        self._show_results()

    def _on_failed(self, exc: BaseException) -> None:
        self.progress.setValue(0)
        self.progress_text.setText("")
        self.message.show_message(describe(exc), ERROR)

    def _on_stopped(self) -> None:
        self.progress.setValue(0)
        self.progress_text.setText("Cancelled; nothing was kept.")
        self.message.show_message("Indexing was cancelled. Press Index to start again.", INFO)

    # -- showing -----------------------------------------------------------------------
    def main_index(self) -> LayerIndex | None:
        if not self.results:
            return None
        name = self.layer.currentData()
        return self.results.get(name) or next(iter(self.results.values()))

    def _show_results(self) -> None:
        index = self.main_index()
        if index is None or self.source is None:
            self.stack.setCurrentWidget(self.empty)
            self._update_buttons()
            return
        if self.compare_button.isChecked():
            image_px = 150 if self.result_network == "encoder" else self.max_side.value()
            depth = [i.name for i in layers_of(self.result_network)]
            ordered = sorted(self.results.values(), key=lambda i: depth.index(i.layer))
            layers = [(i, item_loader(self.source, i)) for i in ordered]
            self.compare_view.set_layers(layers if len(layers) > 1 else [], image_px)
            if len(layers) < 2:
                self.message.show_message("Choose one or two layers under “Compare with” and "
                                          "press Index to see them side by side.", INFO)
            self.stack.setCurrentWidget(self.compare_view)
        else:
            if self.grid.index is not index:
                self.grid.set_index(index, item_loader(self.source, index))
            self.stack.setCurrentWidget(self.grid)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.main_index() is not None
        self.save_sheet.setEnabled(has)
        self.save_json.setEnabled(has)

    def open_unit(self, layer: str, unit: int) -> UnitDetail | None:
        index = self.results.get(layer)
        if index is None or self.source is None:
            return None
        source = self.source
        network_key = self.result_network
        prepare = None
        if network_key == "vgg19" and isinstance(source, ImageFolderSource):
            from desktop.imageio import downscale_to

            side = source.max_side

            def prepare(image):
                return downscale_to(image, side)[0]

        dialog = UnitDetail(index, unit, item_loader(source, index),
                            lambda: open_network(network_key),
                            NETWORK_TITLES[network_key].split(" (")[0], prepare, self)
        dialog.visualize_requested.connect(self.visualize_requested)
        dialog.finished.connect(lambda _=0, d=dialog: self._details.remove(d)
                                if d in self._details else None)
        self._details.append(dialog)
        dialog.open()
        return dialog

    # -- saving ------------------------------------------------------------------------
    def _ask_path(self, title: str, suffix: str, kind: str) -> str:
        """A path from a save dialog ('' when cancelled or nothing is indexed)."""
        index = self.main_index()
        if index is None:
            return ""
        name = time.strftime(f"{index.network}-{index.layer}-%Y%m%d-%H%M%S{suffix}")
        return QFileDialog.getSaveFileName(self, title, name, kind)[0]

    def ask_save_sheet(self) -> None:
        path = self._ask_path("Save the sheet as PNG", ".png", "PNG images (*.png)")
        if path:
            self.save_sheet_to(path)

    def save_sheet_to(self, path: str) -> Worker | None:
        index, source = self.main_index(), self.source
        if index is None or source is None:
            return None
        units = self.grid.units_on_page() or list(range(min(16, index.channels)))
        title = f"{NETWORK_TITLES[index.network].split(' (')[0]} {index.layer} · {index.source}"
        worker = Worker(_save_sheet, index, units, source, path, title)
        worker.result.connect(lambda p: self.message.show_message(f"Saved {Path(p).name}.",
                                                                  INFO))
        worker.error.connect(lambda exc: self.message.show_message(describe(exc), ERROR))
        self._save_worker = worker
        worker.start()
        return worker

    def ask_save_json(self) -> None:
        path = self._ask_path("Save the units as JSON", ".json", "JSON (*.json)")
        if path:
            self.save_json_to(path)

    def save_json_to(self, path: str) -> bool:
        index = self.main_index()
        if index is None:
            return False
        units = self.grid.units_on_page() or list(range(index.channels))
        text = json.dumps(index.to_json(units), indent=1) + "\n"
        return write_and_say(self.message, path,
                             lambda: Path(path).write_text(text, encoding="utf-8"))

    # -- persistence -------------------------------------------------------------------
    def save_state(self, s: QSettings) -> None:
        s.setValue("explore/network", self.network_key())
        s.setValue("explore/layer", self.layer.currentData() or "")
        s.setValue("explore/compare", json.dumps([c.currentData() for c in self.compare]))
        s.setValue("explore/folder", self.folder.text())
        s.setValue("explore/gallery", self.from_gallery.isChecked())
        s.setValue("explore/max_side", self.max_side.value())
        s.setValue("explore/top_k", self.top_k.value())
        s.setValue("explore/per_image", self.per_image.value())
        s.setValue("explore/view", VIEW_COMPARE if self.compare_button.isChecked()
                   else VIEW_UNITS)

    def restore_state(self, s: QSettings) -> None:
        select_data(self.network, read(s, "explore/network", "vgg19", str))
        select_data(self.layer, read(s, "explore/layer", "", str))
        try:
            compare = json.loads(read(s, "explore/compare", "[]", str))
        except ValueError:
            compare = []
        for combo, name in zip(self.compare, compare, strict=False):
            select_data(combo, name)
        folder = read(s, "explore/folder", "", str)
        if not folder:
            suggestions = suggested_folders()
            folder = str(suggestions[0]) if suggestions else ""
        self.folder.setText(folder)
        self.from_gallery.setChecked(read(s, "explore/gallery", False, bool))
        self.from_folder.setChecked(not self.from_gallery.isChecked())
        self.max_side.setValue(read(s, "explore/max_side", 512, int))
        self.top_k.setValue(read(s, "explore/top_k", 9, int))
        self.per_image.setValue(read(s, "explore/per_image", 1, int))
        if read(s, "explore/view", VIEW_UNITS, str) == VIEW_COMPARE:
            self.compare_button.setChecked(True)
        self._had_results = bool(read(s, "explore/folder", "", str))

    def reopen_cached(self) -> bool:
        """Show last time's results if they are in the cache (nothing is computed)."""
        if self.results or self.job.running or not getattr(self, "_had_results", False):
            return False
        self._had_results = False
        return self.start_index(cache_only=True)

    def shutdown(self) -> None:
        self.job.shutdown()
        self.grid.renderer.cancel()
        self.compare_view.clear()
        for dialog in list(self._details):
            dialog.done(0)

