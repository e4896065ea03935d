import subprocess
import sys

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QMessageBox

from desktop.errors import FacestyleError
from desktop.ui.about_dialog import AboutDialog
from desktop.ui.error_dialog import ErrorDialog, describe
from desktop.ui.main_window import TABS, MainWindow


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def test_window_has_its_three_tabs_and_a_status_bar(window):
    assert window.tab_keys() == ["checkin", "style", "explore"]
    titles = [window.tab_widget.tabText(i) for i in range(window.tab_widget.count())]
    assert titles == [spec.title for spec in TABS]
    window.show_tab("style")
    assert window.current_tab_key() == "style"
    assert window.device_label.text().startswith(("CPU", "CUDA"))
    window.set_status_field("fps", "camera 30.0 fps")
    assert window.findChild(QLabel, "status_fps").text() == "camera 30.0 fps"
    with pytest.raises(KeyError):
        window.show_tab("nope")


def test_about_dialog_shows_versions_and_device(window, qtbot):
    dialog = window.show_about()
    qtbot.addWidget(dialog)
    assert isinstance(dialog, AboutDialog) and dialog.isVisible()
    text = dialog.text()
    import torch

    assert f"torch: {torch.__version__.split('+')[0]}" in text
    assert "Qt: 6." in text
    assert "GPU / CUDA:" in text
    assert "dlib_face_recognition_resnet_model_v1.dat" in text


def test_geometry_and_tab_persist_across_windows(qtbot):
    first = MainWindow()
    qtbot.addWidget(first)
    first.resize(700, 500)
    first.show()
    first.show_tab("style")
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.current_tab_key() == "style"
    assert (second.width(), second.height()) == (700, 500)


def test_error_dialog_reads_like_a_message():
    try:
        raise FacestyleError("The photo has no face.", "Try a photo facing the camera.")
    except FacestyleError as exc:
        dialog = ErrorDialog(exc)
    assert dialog.text() == "The photo has no face."
    assert dialog.informativeText() == "Try a photo facing the camera."
    assert "Traceback" in dialog.detailedText()
    assert dialog.icon() == QMessageBox.Icon.Warning
    message, hint, _ = describe(ZeroDivisionError("division by zero"))
    assert "division by zero" in message and "safe" in hint


@pytest.mark.parametrize("tab", ["checkin", "style", "explore"])
def test_gui_screenshot_writes_a_png_of_the_requested_size(tmp_path, tab):
    out = tmp_path / f"{tab}.png"
    proc = subprocess.run(
        [sys.executable, "-m", "desktop", "gui", "--screenshot", str(out), "--tab", tab,
         "--size", "1024x700"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1024, 700)
    assert out.stat().st_size > 5_000


def test_cli_version_and_bad_tab():
    version = subprocess.run([sys.executable, "-m", "desktop", "--version"],
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("facestyle ")
    bad = subprocess.run([sys.executable, "-m", "desktop", "gui", "--screenshot", "/tmp/x.png",
                          "--tab", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no tab 'nope'" in bad.stderr
