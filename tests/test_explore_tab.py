"""The Explore tab: index a folder with progress and cancel, unit pages, a unit's detail,
layers side by side, saving, the cache on reopening, feature visualisation, conv shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from explore_helpers import write_folder
from PIL import Image

from desktop.explore.conv_shapes import EXAMPLES, ConvSpec
from desktop.ui import settings as ui_settings
from desktop.ui.explore.unit_detail import UnitDetail
from desktop.ui.explore.widgets import select_data
from desktop.ui.explore_tab import ExploreTab
from desktop.ui.main_window import MainWindow

WAIT = 120_000


@pytest.fixture
def tab(qtbot):
    widget = ExploreTab()
    qtbot.addWidget(widget)
    widget.resize(1200, 760)
    widget.show()
    yield widget
    widget.shutdown()


@pytest.fixture
def folder(tmp_path):
    write_folder(tmp_path / "imgs", [(64, 80), (64, 80), (72, 56), (64, 80), (60, 60)])
    return tmp_path / "imgs"


def index(qtbot, page, folder, layer="relu2_1", compare=("relu1_1", "relu3_1")):
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)
    select_data(page.network, "vgg19")
    select_data(page.layer, layer)
    for combo, name in zip(page.compare, compare, strict=True):
        select_data(combo, name)
    page.folder.setText(str(folder))
    page.max_side.setValue(128)
    assert page.start_index()
    assert not page.index_button.isEnabled() and page.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)


def test_indexing_a_folder_shows_a_page_of_unit_tiles(qtbot, tab, folder):
    page = tab.patches
    progress = []
    page.job.progress.connect(lambda f, text: progress.append(text))
    index(qtbot, page, folder)
    assert page.message.text() == ""
    assert set(page.results) == {"relu2_1", "relu1_1", "relu3_1"}
    assert any("Indexing:" in text for text in progress)
    assert "5 images" in page.summary.text() and "indexed in" in page.summary.text()
    grid = page.grid
    assert page.stack.currentWidget() is grid
    assert grid.index.layer == "relu2_1" and len(grid.cards) == 16
    assert "of 128 units" in grid.page_label.text()
    qtbot.waitUntil(grid.tiles_done, timeout=WAIT)
    grid.next.click()
    assert grid.page == 1 and min(grid.cards) == 16
    select_data(grid.order, "strongest")
    maxima = grid.index.unit_max()
    shown = grid.units_on_page()
    assert maxima[shown[0]] == maxima.max()

    # compare view: the layers side by side, shallow to deep
    page.compare_button.click()
    assert page.stack.currentWidget() is page.compare_view
    assert [c.index.layer for c in page.compare_view.columns] == ["relu1_1", "relu2_1",
                                                                  "relu3_1"]
    qtbot.waitUntil(page.compare_view.tiles_done, timeout=WAIT)


def test_a_units_detail_shows_its_patches_and_activation_map(qtbot, tab, folder, tmp_path):
    page = tab.patches
    index(qtbot, page, folder, compare=("", ""))
    qtbot.waitUntil(page.grid.tiles_done, timeout=WAIT)
    card = page.grid.cards[5]
    qtbot.mouseClick(card, pytest.importorskip("PySide6.QtCore").Qt.MouseButton.LeftButton)
    dialog = next(d for d in page._details if d.unit == 5)
    assert isinstance(dialog, UnitDetail)
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=WAIT)
    top = page.results["relu2_1"].entries(5)
    assert dialog.cells[0][1].text().startswith(f"1. {top[0].value:.4g}")
    assert dialog.canvas.has_image() and "max" in dialog.map_facts.text()
    other = tmp_path / "other.png"
    Image.fromarray(np.full((90, 120, 3), 200, np.uint8)).save(other)
    dialog.show_file(str(other))
    qtbot.waitUntil(lambda: not dialog.busy(), timeout=WAIT)
    assert "other.png" in dialog.map_facts.text()
    dialog.show_file(str(tmp_path / "missing.png"))
    assert "does not exist" in dialog.map_facts.text()
    with qtbot.waitSignal(dialog.visualize_requested):
        dialog.visualize.click()
    assert tab.current_page() == "visualize"
    assert tab.visualize.layer.currentData() == "relu2_1" and tab.visualize.unit.value() == 5


def test_saving_a_sheet_and_json(qtbot, tab, folder, tmp_path):
    page = tab.patches
    index(qtbot, page, folder, compare=("", ""))
    out = tmp_path / "sheet.png"
    worker = page.save_sheet_to(str(out))
    assert worker.wait(60)
    qtbot.waitUntil(lambda: "Saved sheet.png" in page.message.text(), timeout=WAIT)
    with Image.open(out) as img:
        assert json.loads(img.text["facestyle-explore"])["units"] == list(range(16))
    assert page.save_json_to(str(tmp_path / "units.json"))
    doc = json.loads((tmp_path / "units.json").read_text())
    assert doc["layer"] == "relu2_1" and len(doc["units"]) == 16
    assert not page.save_json_to(str(tmp_path / "no" / "such" / "x.json"))
    assert "Cannot write" in page.message.text()


def test_cancel_and_bad_folders_say_what_happened(qtbot, tab, tmp_path):
    page = tab.patches
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)
    page.folder.setText(str(tmp_path / "nowhere"))
    assert not page.start_index()
    assert "is not a folder" in page.message.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    page.folder.setText(str(empty))
    assert page.start_index()
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)
    assert "No images found" in page.message.text()
    write_folder(tmp_path / "many", [(96, 96)] * 12)
    page.folder.setText(str(tmp_path / "many"))
    with qtbot.waitSignal(page.job.stopped, timeout=WAIT):
        page.start_index()
        page.job.cancel()
    assert "cancelled" in page.message.text()
    assert page.index_button.isEnabled() and not page.results


def test_indexing_runs_below_the_ui_threads_priority(qtbot, tab, tmp_path, monkeypatch):
    import desktop.explore.index as index_module
    from desktop.ui.torch_runtime import thread_is_lowered

    lowered = []
    real = index_module.index_layers

    def spy(*args, **kwargs):
        lowered.append(thread_is_lowered())
        return real(*args, **kwargs)

    monkeypatch.setattr(index_module, "index_layers", spy)
    page = tab.patches
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)
    (tmp_path / "empty").mkdir()
    page.folder.setText(str(tmp_path / "empty"))
    assert page.start_index()
    qtbot.waitUntil(lambda: not page.job.running, timeout=WAIT)
    assert lowered and all(lowered)  # the receptionist's Check-in tab keeps its priority


def test_reopening_shows_the_cached_results_at_once(qtbot, folder):
    first = MainWindow(initial_tab="explore")
    qtbot.addWidget(first)
    first.show()
    page = first.tab("explore").patches
    index(qtbot, page, folder, compare=("", ""))
    first.close()

    second = MainWindow(initial_tab="explore")
    qtbot.addWidget(second)
    second.show()
    page = second.tab("explore").patches
    assert page.folder.text() == str(folder)
    qtbot.waitUntil(lambda: bool(page.results), timeout=WAIT)
    assert all(r.from_cache for r in page.results.values())
    assert "from the cache" in page.summary.text()
    second.close()
    settings = ui_settings.app_settings()
    assert settings.value("explore/layer") == "relu2_1"


def test_feature_visualisation_runs_live_and_saves(qtbot, tab, tmp_path):
    vis = tab.visualize
    tab.show_page("visualize")
    vis.choose("vgg19", "relu1_1", 3)
    vis.steps.setValue(4)
    vis.size.setValue(64)
    assert vis.start()
    qtbot.waitUntil(lambda: not vis.running, timeout=WAIT)
    assert vis.last is not None and vis.last.step == 4
    assert vis.canvas.has_image() and "Finished after 4 steps" in vis.stats.text()
    assert vis.save_to(str(tmp_path / "unit3"))
    with Image.open(tmp_path / "unit3.png") as img:
        saved = json.loads(img.text["facestyle-explore"])
    assert saved["unit"] == 3 and saved["layer"] == "relu1_1" and img.size == (64, 64)
    select_data(vis.network, "encoder")
    assert vis.size.value() == 150 and not vis.size.isEnabled()
    assert vis.unit.maximum() == 63  # level3 has 64 units


def test_conv_shapes_page_matches_torch(qtbot, tab):
    conv = tab.conv
    conv.set_spec(EXAMPLES["1D: ECG trace, 14 x 1, 16 filters of 5"])
    assert conv.output.text().startswith("10 x 16")
    assert "floor((14 + 2·0 - 5) / 1) + 1 = 10" in conv.formula.text()
    qtbot.waitUntil(conv.checked, timeout=WAIT)
    assert "(16, 10)" in conv.torch_line.text() and "✓ same" in conv.torch_line.text()
    conv.set_spec(ConvSpec.make(3, (8, 12, 12), 3, 3, (1, 2, 2), 1, 4))
    qtbot.waitUntil(conv.checked, timeout=WAIT)
    assert conv.output.text().startswith("8 x 6 x 6 x 4")
    assert "(4, 8, 6, 6)" in conv.torch_line.text()
    assert [s.isHidden() for _, s in conv.sliders] == [False, False, False]
    conv.sliders[2][1].setValue(5)
    assert conv.drawing.position == (0, 0, 5)
    conv.rows[0][2].setValue(20)  # a filter longer than the padded input
    conv.recompute()
    assert conv.output.text() == "No output" and "larger than" in conv.formula.text()
    conv.set_dims(2)
    conv.rows[0][2].setValue(3)
    conv.recompute()
    assert conv.sliders[2][1].isHidden() and conv.shape.spec.dims == 2
