"""The right-hand side of the Style tab: run buttons, the preview, the numbers, the plot
and the history.

View modes: **G** (the generated image), **C · S · G** (content, style and G side by
side, zoomed together) and **Before / after** (C and G in one view with a divider).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.style.canvas import ImageCanvas
from desktop.ui.style.history import HistoryStrip
from desktop.ui.style.loss_plot import LossPlot
from desktop.ui.style.message_bar import MessageBar
from desktop.ui.style.run_bar import button_row, run_buttons, set_run_state, status_widgets

VIEW_G, VIEW_SIDE, VIEW_COMPARE = "g", "side", "compare"
PLACEHOLDER = ("Pick a content image and a style image on the left,\n"
               "then press Start to watch G being painted.")


def _tool(text: str, tip: str, checkable: bool = False) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(checkable)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LiveView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # -- run bar ----------------------------------------------------------------------
        self.start_button, self.pause_button, self.stop_button = run_buttons(
            "Paint G with these settings (Ctrl+Enter)",
            "Stop after the current iteration and keep G")
        self.save_button = QPushButton("Save G…")
        self.save_button.setObjectName("saveButton")
        self.save_button.setToolTip("Save G as PNG, with the settings in the PNG text and a "
                                    "JSON file beside it")

        self.view_group = QButtonGroup(self)
        self.view_buttons: dict[str, QToolButton] = {}
        view_row = QHBoxLayout()
        view_row.setSpacing(0)
        for key, text, tip in (
            (VIEW_G, "G", "The generated image"),
            (VIEW_SIDE, "C · S · G", "Content, style and G side by side (zoomed together)"),
            (VIEW_COMPARE, "Before / after", "C and G in one view; drag the divider"),
        ):
            button = _tool(text, tip, checkable=True)
            button.setObjectName(f"view_{key}")
            button.setProperty("segment", True)
            self.view_group.addButton(button)
            self.view_buttons[key] = button
            view_row.addWidget(button)
        self.view_buttons[VIEW_G].setChecked(True)
        self.fit_button = _tool("Fit", "Fit the image to the view (or double-click it)")
        self.actual_button = _tool("1:1", "One image pixel per screen pixel")
        self.zoom_out_button = _tool("−", "Zoom out (or the mouse wheel)")
        self.zoom_in_button = _tool("+", "Zoom in (or the mouse wheel)")

        bar = button_row((self.start_button, self.pause_button, self.stop_button),
                         (self.save_button,))

        self.message = MessageBar()

        # -- preview --------------------------------------------------------------------
        self.canvas = ImageCanvas(PLACEHOLDER)
        self.canvas.setObjectName("previewCanvas")
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setObjectName("splitSlider")
        self.split_slider.setRange(0, 1000)
        self.split_slider.setValue(500)
        self.split_slider.setToolTip("Before (C) on the left, after (G) on the right")
        self.split_row = QWidget()
        split_layout = QHBoxLayout(self.split_row)
        split_layout.setContentsMargins(0, 0, 0, 0)
        split_layout.addWidget(QLabel("before"))
        split_layout.addWidget(self.split_slider, 1)
        split_layout.addWidget(QLabel("after"))
        self.split_row.hide()
        view_bar = QHBoxLayout()
        view_bar.setContentsMargins(0, 0, 0, 0)
        view_bar.addLayout(view_row)
        view_bar.addSpacing(12)
        view_bar.addWidget(self.split_row, 3)
        view_bar.addStretch(1)
        for w in (self.zoom_out_button, self.fit_button, self.actual_button, self.zoom_in_button):
            view_bar.addWidget(w)

        self.side_canvases = {key: ImageCanvas("") for key in ("C", "S", "G")}
        side = QWidget()
        side_layout = QHBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(4)
        captions = {"C": "C · content", "S": "S · style", "G": "G · generated"}
        for key, canvas in self.side_canvases.items():
            canvas.caption = captions[key]
            canvas.setObjectName(f"side{key}")
            side_layout.addWidget(canvas, 1)
        c, s, g = self.side_canvases.values()
        c.link(s)
        s.link(g)
        g.link(c)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(side)

        # -- numbers --------------------------------------------------------------------
        self.progress, self.stats, self.device_label, stats_row = status_widgets()

        # -- plot and history -----------------------------------------------------------
        self.plot = LossPlot()
        self.plot.setMinimumHeight(120)
        self.history = HistoryStrip()
        history_box = QFrame()
        history_box.setObjectName("historyBox")
        history_layout = QVBoxLayout(history_box)
        history_layout.setContentsMargins(0, 0, 0, 0)
        history_layout.setSpacing(2)
        history_layout.addWidget(self.history)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(6)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.message)
        top_layout.addWidget(self.stack, 1)
        top_layout.addLayout(view_bar)
        top_layout.addWidget(self.progress)
        top_layout.addLayout(stats_row)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.setSpacing(6)
        bottom_layout.addWidget(self.plot, 1)
        bottom_layout.addWidget(history_box)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([540, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self._generated: QImage | None = None
        self._stale: ImageCanvas | None = None  # the canvas not showing the newest G

        # -- wiring ---------------------------------------------------------------------
        self.view_group.buttonClicked.connect(lambda _b: self._apply_view())
        self.split_slider.valueChanged.connect(lambda v: self.canvas.set_split(v / 1000))
        self.canvas.split_changed.connect(self._split_from_canvas)
        self.fit_button.clicked.connect(self._fit)
        self.actual_button.clicked.connect(lambda: self._active_canvas().actual_size())
        self.zoom_in_button.clicked.connect(lambda: self._active_canvas().zoom_by(1.25))
        self.zoom_out_button.clicked.connect(lambda: self._active_canvas().zoom_by(0.8))

    # -- view modes ---------------------------------------------------------------------
    def view(self) -> str:
        return next(k for k, b in self.view_buttons.items() if b.isChecked())

    def set_view(self, key: str) -> None:
        if key in self.view_buttons:
            self.view_buttons[key].setChecked(True)
            self._apply_view()

    def _apply_view(self) -> None:
        key = self.view()
        self.stack.setCurrentIndex(1 if key == VIEW_SIDE else 0)
        if self._stale is not None and self._generated is not None:
            self._stale.set_image(self._generated)
            self._stale = None
        self.canvas.set_compare(key == VIEW_COMPARE)
        self.split_row.setVisible(key == VIEW_COMPARE)

    def _active_canvas(self) -> ImageCanvas:
        return self.side_canvases["G"] if self.view() == VIEW_SIDE else self.canvas

    def _fit(self) -> None:
        if self.view() == VIEW_SIDE:
            for canvas in self.side_canvases.values():
                canvas.fit()
        else:
            self.canvas.fit()

    def _split_from_canvas(self, fraction: float) -> None:
        self.split_slider.blockSignals(True)
        self.split_slider.setValue(round(fraction * 1000))
        self.split_slider.blockSignals(False)

    # -- images -------------------------------------------------------------------------
    def show_generated(self, image: QImage, caption: str) -> None:
        """Show G in the visible view; the hidden one catches up when it is shown."""
        self._generated = image
        self.canvas.caption = caption
        if self.view() == VIEW_SIDE:
            self.side_canvases["G"].set_image(image)
            self._stale = self.canvas
        else:
            self.canvas.set_image(image)
            self._stale = self.side_canvases["G"]

    def set_inputs(self, content: QImage | None, style: QImage | None) -> None:
        self.canvas.set_before(content)
        self.side_canvases["C"].set_image(content)
        self.side_canvases["S"].set_image(style)

    def set_running(self, state: str) -> None:
        """Enable the run buttons for ``idle``, ``running``, ``paused`` or ``stopping``."""
        set_run_state(self.start_button, self.pause_button, self.stop_button, state)
