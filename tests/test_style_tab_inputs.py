"""The Style tab's inputs: pickers, bad images, what is missing, presets, camera."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QCursor, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication
from style_tab_helpers import content_image, load_pair, style_image

from desktop.style.presets import builtin_presets, presets_dir
from desktop.style.settings import StyleSettings
from desktop.ui.main_window import MainWindow
from desktop.ui.style.image_slot import MAX_INPUT_SIDE
from desktop.ui.style.qimage import to_qimage
from desktop.ui.style_tab import StyleTab


@pytest.fixture
def tab(qtbot):
    widget = StyleTab()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_start_with_nothing_says_what_is_missing(qtbot, tab):
    assert tab.start() is False
    text = tab.live.message.text()
    assert "content image" in text and "style image" in text
    assert tab.live.message.level == "error"
    assert tab.side.content.property("missing") is True
    assert tab.side.styles.slots[0].property("missing") is True
    assert tab.job.state == "idle"

    tab.side.content.set_image(content_image(), "c.png")
    assert tab.side.content.property("missing") is False
    assert tab.start() is False
    text = tab.live.message.text()
    assert "style image" in text and "content image" not in text

    tab.side.styles.slots[0].set_image(style_image(), "s.png")
    assert tab.live.message.text() == ""  # the "add ..." message goes once all is there


def test_no_style_layer_ticked_is_explained(qtbot, tab):
    load_pair(tab)
    tab.side.controls.weights.layers.set_weights({})
    assert tab.start() is False
    assert "style layer" in tab.live.message.text()


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "P"])
def test_unusual_image_modes_arrive_as_rgb(qtbot, tab, tmp_path, mode):
    path = tmp_path / f"img-{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
    if mode == "I;16":
        Image.fromarray(np.full((12, 20), 40000, np.uint16)).save(path)
    else:
        Image.new(mode, (20, 12)).save(path)
    assert tab.side.content.load_file(path)
    image = tab.side.content.image
    assert image.shape == (12, 20, 3) and image.dtype == np.uint8
    assert "20×12" in tab.side.content.name.text()


def test_bad_files_give_a_message_and_keep_the_current_image(qtbot, tab, tmp_path):
    good = content_image()
    tab.side.content.set_image(good, "good.png")
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert tab.side.content.load_file(corrupt) is False
    assert "broken.jpg" in tab.live.message.text() and tab.live.message.level == "error"
    assert tab.side.content.image is good
    text_file = tmp_path / "notes.png"
    text_file.write_text("hello")
    assert tab.side.styles.slots[0].load_file(text_file) is False
    assert "notes.png" in tab.live.message.text()
    assert tab.side.content.load_file(tmp_path / "missing.png") is False
    assert "does not exist" in tab.live.message.text()


def test_huge_images_are_reduced_with_a_notice(qtbot, tab, tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (MAX_INPUT_SIDE + 900, 50), (10, 200, 30)).save(path)
    assert tab.side.styles.slots[0].load_file(path)
    image = tab.side.styles.slots[0].image
    assert max(image.shape[:2]) == MAX_INPUT_SIDE
    assert tab.live.message.level == "warning"
    assert "wide.png" in tab.live.message.text() and "reduced" in tab.live.message.text()


def test_paste_and_drop(qtbot, tab, tmp_path):
    clipboard = QGuiApplication.clipboard()
    clipboard.setImage(to_qimage(style_image(32)))
    qtbot.mouseClick(tab.side.styles.slots[0].paste_button, Qt.MouseButton.LeftButton)
    pasted = tab.side.styles.slots[0].image
    assert pasted is not None and np.array_equal(pasted, style_image(32))
    clipboard.setText("just words")
    qtbot.mouseClick(tab.side.content.paste_button, Qt.MouseButton.LeftButton)
    assert tab.side.content.image is None
    assert "holds no image" in tab.live.message.text()

    path = tmp_path / "dropped.png"
    Image.fromarray(content_image()).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    assert tab.side.content.take_mime(mime, "The dropped item")
    assert tab.side.content.source == str(path)
    rgba = QImage(8, 6, QImage.Format.Format_ARGB32)
    rgba.fill(Qt.GlobalColor.transparent)
    mime = QMimeData()
    mime.setImageData(rgba)
    assert tab.side.content.take_mime(mime, "The dropped item")
    assert (tab.side.content.image == 255).all()  # transparent pixels over white


@pytest.fixture
def clipboard():
    """The application clipboard, emptied afterwards (an image left on it at exit crashed
    the offscreen platform's shutdown)."""
    board = QGuiApplication.clipboard()
    yield board
    board.clear()


def test_ctrl_v_fills_the_empty_cards_in_order(qtbot, tab, clipboard):
    tab.show()
    qtbot.waitExposed(tab)
    tab.live.canvas.setFocus()
    QCursor.setPos(tab.mapToGlobal(tab.rect().bottomRight()) + QPoint(50, 50))  # off the cards
    clipboard.setImage(to_qimage(content_image()))
    qtbot.keyClick(tab.live.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert tab.side.content.image is not None
    assert np.array_equal(tab.side.content.image, content_image())
    assert tab.side.styles.slots[0].image is None
    clipboard.setImage(to_qimage(style_image(32)))
    qtbot.keyClick(tab.live.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(tab.side.styles.slots[0].image, style_image(32))
    assert np.array_equal(tab.side.content.image, content_image())  # kept
    # all cards full: the card under the pointer takes it
    slot = tab.side.styles.slots[0]
    QCursor.setPos(slot.mapToGlobal(slot.rect().center()))
    if QApplication.widgetAt(QCursor.pos()) is None:
        return  # this platform plugin cannot place the pointer
    clipboard.setImage(to_qimage(style_image(24)))
    qtbot.keyClick(tab.live.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(slot.image, style_image(24))
    assert np.array_equal(tab.side.content.image, content_image())


def test_several_styles_have_blend_weights(qtbot, tab):
    styles = tab.side.styles
    styles.slots[0].set_image(style_image(seed=1), "a.png")
    assert tab.settings().style_blend is None
    assert not styles.slots[0].blend_row.isVisibleTo(tab)
    qtbot.mouseClick(styles.add_button, Qt.MouseButton.LeftButton)
    styles.slots[1].set_image(style_image(seed=2), "b.png")
    assert styles.slots[0].blend_row.isVisibleTo(tab)
    styles.slots[0].slider.setValue(75)
    styles.slots[1].slider.setValue(25)
    assert tab.settings().style_blend == [0.75, 0.25]
    assert styles.slots[0].share.text() == "75%"
    qtbot.mouseClick(styles.slots[0].remove_button, Qt.MouseButton.LeftButton)
    assert len(styles.images()) == 1 and tab.settings().style_blend is None
    assert styles.slots[0].title.text() == "<b>Style 1</b>"


def test_presets_apply_and_round_trip_through_the_ui(qtbot, tab):
    controls = tab.side.controls
    controls.run.size.setValue(192)
    tab.side.presets.choose("strong style")
    strong = builtin_presets()["strong style"]
    assert controls.weights.beta.value() == strong.beta
    assert controls.weights.layers.weights() == strong.style_layers
    assert controls.run.size.value() == 192  # the size is the user's, not the preset's
    controls.weights.alpha.setValue(4.0)
    controls.weights.layers.set_checked("conv3_1", True)
    mine = tab.settings()
    assert tab.side.presets.save_as("Night  ") is not None
    assert (presets_dir() / "night.json").is_file()
    assert tab.side.presets.current_name() == "Night"

    other = StyleTab()
    qtbot.addWidget(other)
    assert "Night" in other.side.presets.names()
    other.side.presets.choose("Night")
    got = other.settings()
    assert got.alpha == 4.0 and got.style_layers == mine.style_layers
    assert got.size == other.side.controls.run.size.value()
    assert tab.side.presets.save_as("Gatys 2015") is None
    assert "built-in" in tab.live.message.text()
    tab.side.presets.select("Night")
    assert tab.side.presets.delete_current() is True
    assert "Night" not in tab.side.presets.names()
    tab.side.presets.reset_to_defaults()
    assert tab.settings().beta == StyleSettings().beta
    assert tab.settings().size == 192


def test_camera_snapshot_uses_the_checkin_tab_when_it_offers_frames(qtbot):
    window = MainWindow(initial_tab="style")
    qtbot.addWidget(window)
    window.show()
    style = window.tab("style")
    checkin = window.tab("checkin")
    style.activated()
    if not hasattr(checkin, "latest_frame"):  # no camera support: no camera button
        assert not style.side.content.camera_button.isEnabled()
    frames = [None]
    checkin.latest_frame = lambda: frames[0]
    style.activated()
    assert not style.side.content.camera_button.isEnabled()  # no picture yet
    assert "Start the camera" in style.side.content.camera_button.toolTip()
    assert style.side.content.snapshot() is False
    assert "camera" in style.live.message.text().lower()
    frames[0] = content_image(30, 40)
    window.show_tab("checkin")
    window.show_tab("style")  # coming back to the tab looks again
    assert style.side.content.camera_button.isEnabled()
    qtbot.mouseClick(style.side.content.camera_button, Qt.MouseButton.LeftButton)
    assert np.array_equal(style.side.content.image, frames[0])
    assert style.side.content.source == "camera snapshot"


def test_settings_can_be_taken_from_a_saved_result(qtbot, tab, tmp_path):
    from desktop.style.output import save_result

    saved = StyleSettings(alpha=0.25, beta=5e5, style_layers={"relu2_1": 1.0}, seed=11,
                          size=999)
    png, _ = save_result(tmp_path / "art.png", content_image(), saved, {"iteration": 3})
    tab.side.controls.run.size.setValue(200)
    assert tab.side.presets.load_from_image(png)
    got = tab.settings()
    assert (got.alpha, got.beta, got.style_layers, got.seed) == (0.25, 5e5, {"relu2_1": 1.0}, 11)
    assert got.size == 200
    plain = tmp_path / "plain.png"
    Image.fromarray(content_image()).save(plain)
    assert not tab.side.presets.load_from_image(plain)
    assert "no facestyle settings" in tab.live.message.text()
