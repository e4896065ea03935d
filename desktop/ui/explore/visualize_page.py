"""The "Feature visualisation" page: synthesise an image that one unit responds to.

The image is optimised off the UI thread (:func:`desktop.explore.visualize.visualize`) and
redrawn after every step, like the Style tab's G (when drawing is slower than the loop
the newest image is shown, never a backlog). Start, Stop, and Save… (PNG with the
settings in its text).
"""

from __future__ import annotations

import json
import time

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.explore.networks import layers_of
from desktop.explore.visualize import VisReport, VisSettings
from desktop.ui.explore.patches_page import NETWORK_TITLES
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
from desktop.ui.style.canvas import ImageCanvas
from desktop.ui.style.live_view import format_duration
from desktop.ui.style.message_bar import ERROR, MessageBar
from desktop.ui.style.qimage import to_qimage
from desktop.ui.style.spin import CompactDoubleSpinBox

PANEL_WIDTH = 370


def _run(settings: VisSettings):
    """The worker's side: share the cores with the UI, then optimise."""
    from desktop.explore.visualize import visualize
    from desktop.ui.torch_runtime import prepare_background_torch

    prepare_background_torch(optimizers=True)
    yield from visualize(settings)


class VisualizePage(QWidget):
    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker: Worker | None = None
        self.last: VisReport | None = None
        self.last_settings: VisSettings | None = None
        self._started = 0.0

        self.network = QComboBox()
        for key, title in NETWORK_TITLES.items():
            self.network.addItem(title, key)
        self.layer = QComboBox()
        self.unit = QSpinBox()
        self.unit.setToolTip("Which unit (channel) of the layer")
        self.objective = QComboBox()
        self.objective.addItem("the channel's mean", "channel")
        self.objective.addItem("one unit at the centre", "unit")
        self.objective.setToolTip("Maximise the channel's mean activation over the whole "
                                  "map, or only the neuron at the map's centre (its image "
                                  "then fills that neuron's receptive field)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setValue(256)
        self.size = QSpinBox()
        self.size.setRange(64, 1024)
        self.size.setSingleStep(32)
        self.size.setValue(224)
        self.size.setSuffix(" px")
        self.lr = CompactDoubleSpinBox()
        self.lr.setDecimals(3)
        self.lr.setRange(0.001, 1.0)
        self.lr.setSingleStep(0.01)
        self.lr.setValue(0.05)
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.param = QComboBox()
        self.param.addItem("Fourier (1/f spectrum)", "fourier")
        self.param.addItem("pixels", "pixels")
        self.param.setToolTip("Optimise the image's spectrum, scaled like natural images' "
                              "(readable), or its pixels directly (noisy)")
        self.decorrelate = QCheckBox("Decorrelated colour")
        self.decorrelate.setChecked(True)
        self.decorrelate.setToolTip("Optimise uncorrelated colour components, mixed into RGB "
                                    "by ImageNet's colour statistics")
        self.transforms = QCheckBox("Jitter, scale and rotation")
        self.transforms.setChecked(True)
        self.transforms.setToolTip("Each step sees the image shifted by up to 12 px, scaled "
                                   "by 0.9-1.1 and rotated by up to 10 degrees, so only "
                                   "robust features survive")
        form = QFormLayout()
        form.addRow("Network", self.network)
        form.addRow("Layer", self.layer)
        form.addRow("Unit", self.unit)
        form.addRow("Maximise", self.objective)
        form.addRow("Steps", self.steps)
        form.addRow("Size", self.size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Seed", self.seed)
        form.addRow("Image as", self.param)
        form.addRow("", self.decorrelate)
        form.addRow("", self.transforms)
        settings_box = QWidget()
        settings_box.setLayout(form)
        explain = fact("Gradient ascent on an image to make one unit fire. The regularisers "
                       "(Fourier parameterisation, decorrelated colour, transformation "
                       "robustness) are what make the result readable; untick them to see "
                       "why.")

        self.start_button = QPushButton("▶  Start")
        self.start_button.setProperty("primary", True)
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save…")
        self.stop_button.setEnabled(False)
        self.save_button.setEnabled(False)
        run_row = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.save_button):
            run_row.addWidget(button)
        run_row.addStretch(1)

        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(8, 8, 10, 8)
        column.addWidget(group("What to visualise", settings_box))
        column.addWidget(explain)
        column.addStretch(1)
        body.setMinimumWidth(PANEL_WIDTH - 24)
        for combo in (self.network, self.layer, self.objective, self.param):
            compact(combo, 16)
        panel = scroll_area(body)
        panel.setMinimumWidth(260)
        panel.setMaximumWidth(PANEL_WIDTH + 120)

        self.message = MessageBar()
        self.canvas = ImageCanvas("Pick a layer and a unit, then press Start to watch the "
                                  "image that excites it emerge.")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.stats = fact("")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 6, 6, 6)
        right_layout.addLayout(run_row)
        right_layout.addWidget(self.message)
        right_layout.addWidget(self.canvas, 1)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.stats)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(panel)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([PANEL_WIDTH, 900])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self.network.currentIndexChanged.connect(lambda _: self._network_changed())
        self.layer.currentIndexChanged.connect(lambda _: self._layer_changed())
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self.ask_save)
        self._network_changed()

    # -- choices -----------------------------------------------------------------------
    def _network_changed(self) -> None:
        key = self.network.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        for info in layers_of(key):
            g = info.geometry
            self.layer.addItem(f"{info.name}  (RF {g.size} px)", info.name)
        self.layer.blockSignals(False)
        select_data(self.layer, "relu4_1" if key == "vgg19" else "level3")
        self.size.setEnabled(key == "vgg19")
        if key == "encoder":
            self.size.setValue(150)
        self._layer_changed()

    def _layer_changed(self) -> None:
        name = self.layer.currentData()
        info = next((i for i in layers_of(self.network.currentData()) if i.name == name), None)
        if info is not None:
            self.unit.setRange(0, info.channels - 1)
            self.unit.setSuffix(f"  of 0–{info.channels - 1}")

    def choose(self, network: str, layer: str, unit: int) -> None:
        """Set network, layer and unit (from a unit's detail view)."""
        select_data(self.network, network)
        select_data(self.layer, layer)
        self.unit.setValue(unit)

    def settings(self) -> VisSettings:
        return VisSettings(
            network=self.network.currentData(), layer=self.layer.currentData(),
            unit=self.unit.value(), objective=self.objective.currentData(),
            steps=self.steps.value(), size=self.size.value(), lr=self.lr.value(),
            seed=self.seed.value(), parameterisation=self.param.currentData(),
            decorrelate=self.decorrelate.isChecked(), transforms=self.transforms.isChecked())

    # -- running -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> bool:
        if self.worker is not None:
            return False
        settings = self.settings()
        try:
            settings.check()
        except Exception as exc:
            self.message.show_message(describe(exc), ERROR)
            return False
        self.message.clear()
        self.last = None
        self.last_settings = settings
        self.progress.setRange(0, settings.steps)
        self.progress.setValue(0)
        self.stats.setText("Preparing: loading the network…")
        self._started = time.monotonic()
        worker = Worker(_run, settings, latest_only=True, low_priority=True)
        worker.yielded.connect(self._on_report)
        worker.error.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        worker.start()
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _on_report(self, report: VisReport) -> None:
        self.last = report
        self.canvas.set_image(to_qimage(report.image))
        s = self.last_settings
        self.canvas.caption = f"{s.layer} unit {s.unit} · step {report.step}" if s else ""
        self.progress.setValue(report.step)
        rate = report.step / report.seconds if report.seconds > 0 else 0.0
        eta = (report.steps - report.step) / rate if rate > 0 else None
        parts = [f"Step {report.step} / {report.steps}", f"{rate:.2f} steps/s"]
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        parts += [f"objective {report.objective:.4g}", report.device]
        self.stats.setText("  ·  ".join(parts))
        self.save_button.setEnabled(True)
        self.status.emit(f"Visualise: {report.step}/{report.steps}")

    def _on_error(self, exc: BaseException) -> None:
        self.message.show_message(describe(exc), ERROR)

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
        self.status.emit("")
        last = self.last
        if last is not None:
            done = "Finished" if last.step == last.steps else "Stopped"
            self.stats.setText(f"{done} after {last.step} steps in "
                               f"{format_duration(time.monotonic() - self._started)}; "
                               f"objective {last.objective:.4g}.")

    def wait(self, timeout: float = 30.0) -> bool:
        worker = self.worker
        return worker.wait(timeout) if worker is not None else True

    # -- saving ------------------------------------------------------------------------
    def ask_save(self) -> None:
        if self.last is None or self.last_settings is None:
            return
        s = self.last_settings
        name = time.strftime(f"{s.network}-{s.layer}-unit{s.unit}-%Y%m%d-%H%M%S.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save the image as PNG", name,
                                              "PNG images (*.png)")
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> bool:
        from desktop.imageio import save_png

        if self.last is None or self.last_settings is None:
            return False
        if not path.lower().endswith(".png"):
            path += ".png"
        text = {"facestyle-explore": json.dumps({**self.last_settings.to_dict(),
                                                 "step": self.last.step,
                                                 "objective_value": self.last.objective})}
        image = self.last.image
        return write_and_say(self.message, path, lambda: save_png(path, image, text), "save")

    # -- persistence -------------------------------------------------------------------
    def save_state(self, s: QSettings) -> None:
        s.setValue("explore/vis", json.dumps(self.settings().to_dict()))

    def restore_state(self, s: QSettings) -> None:
        try:
            saved = json.loads(read(s, "explore/vis", "{}", str))
        except ValueError:
            return
        if not isinstance(saved, dict) or not saved:
            return
        select_data(self.network, saved.get("network", "vgg19"))
        select_data(self.layer, saved.get("layer", ""))
        select_data(self.objective, saved.get("objective", "channel"))
        select_data(self.param, saved.get("parameterisation", "fourier"))
        for spin, key in ((self.unit, "unit"), (self.steps, "steps"), (self.size, "size"),
                          (self.seed, "seed")):
            if isinstance(saved.get(key), int):
                spin.setValue(saved[key])
        if isinstance(saved.get("lr"), int | float):
            self.lr.setValue(float(saved["lr"]))
        self.decorrelate.setChecked(bool(saved.get("decorrelate", True)))
        self.transforms.setChecked(bool(saved.get("transforms", True)))

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(5.0)
