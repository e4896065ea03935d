"""Qt's platform plugin check: which plugin Qt picks, which of its libraries are missing,
the apt-get line that adds them, and that ``facestyle`` says so instead of Qt's abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import qt_platform

# what ldd prints for a plugin on a desktop without two xcb helper libraries
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd6d7f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x7f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f3b0e9a1000)
\tlibxcb-icccm.so.4 => not found
\tlibmystery.so.3 => not found
"""
LDD_ALL_THERE = "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f3b0e9a1000)\n"


def fake_pyside(tmp_path: Path) -> Path:
    """A PySide6-like layout: Qt/plugins/platforms/libq{xcb,offscreen}.so, Qt/lib/..."""
    platforms = tmp_path / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    for name in ("libqxcb.so", "libqoffscreen.so", "libqwayland-egl.so"):
        (platforms / name).write_bytes(b"")
    (tmp_path / "Qt" / "lib").mkdir()
    (tmp_path / "Qt" / "lib" / "libQt6XcbQpa.so.6").write_bytes(b"")
    return platforms


def test_ldd_not_found_lines_are_read_in_order_once():
    assert qt_platform.not_found(LDD_MISSING) == [
        "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libmystery.so.3"]
    assert qt_platform.not_found(LDD_ALL_THERE) == []
    assert qt_platform.not_found("") == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux plugin choice")
def test_qt_picks_the_plugin_as_qt_does():
    pick = qt_platform.chosen_plugin
    assert pick({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}) == "offscreen"
    assert pick({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    assert pick({"DISPLAY": ":1", "WAYLAND_DISPLAY": "wayland-0"}) == "xcb"
    assert pick({"WAYLAND_DISPLAY": "wayland-0"}) == "wayland"
    assert pick({}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ldd and xcb are Linux's")
def test_missing_xcb_libraries_are_named_with_one_apt_line(tmp_path):
    folder = fake_pyside(tmp_path)
    asked: list[str] = []

    def ldd(path: Path) -> str:
        asked.append(path.name)
        return LDD_MISSING

    result = qt_platform.check({"DISPLAY": ":0"}, folder=folder, ldd=ldd)
    assert asked == ["libqxcb.so", "libQt6XcbQpa.so.6"]  # the plugin and Qt's xcb library
    assert not result.ok and result.plugin == "xcb"
    assert result.missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libmystery.so.3"]
    assert result.apt_line() == ("sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1 "
                                 "<package with libmystery.so.3>")
    assert "libxcb-icccm.so.4" in result.problem and result.apt_line() in result.hint
    assert "cannot load" in result.summary()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ldd and xcb are Linux's")
def test_a_plugin_that_loads_passes_and_a_dead_display_is_named(tmp_path):
    folder = fake_pyside(tmp_path)
    ok = qt_platform.check({"QT_QPA_PLATFORM": "wayland-egl"}, folder=folder,
                           ldd=lambda _p: LDD_ALL_THERE)
    assert ok.ok and ok.summary() == "wayland-egl (loads)" and ok.apt_line() is None
    # a local X display whose socket does not exist
    gone = qt_platform.check({"DISPLAY": ":8765"}, folder=folder, ldd=lambda _p: LDD_ALL_THERE)
    assert not gone.ok and ":8765" in gone.problem and not gone.missing
    unknown = qt_platform.check({"QT_QPA_PLATFORM": "eglfs"}, folder=folder,
                                ldd=lambda _p: LDD_ALL_THERE)
    assert not unknown.ok and "offscreen" in unknown.hint and "xcb" in unknown.hint


def test_no_display_and_headless_plugins():
    none = qt_platform.check({})
    if sys.platform.startswith("linux"):
        assert none.plugin is None and not none.ok and "--screenshot" in none.hint
    headless = qt_platform.check({"QT_QPA_PLATFORM": "offscreen"},
                                 ldd=lambda _p: pytest.fail("offscreen needs no ldd"))
    assert headless.ok and headless.plugin == "offscreen"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "desktop.cli", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")
def test_gui_says_what_qt_lacks_instead_of_aborting(tmp_path):
    """With a display set that Qt cannot use here (libraries missing on this machine, or
    no X server on :8765), ``facestyle gui`` exits with our message and the fix, not with
    Qt's 'no Qt platform plugin could be initialized' abort."""
    here = qt_platform.check({"DISPLAY": ":8765"})
    done = _cli("gui", DISPLAY=":8765", HOME=str(tmp_path))
    assert done.returncode not in (0, -6), done.stderr  # -6: Qt's abort()
    assert "could not be initialized" not in done.stderr
    assert here.problem and here.problem in done.stderr
    if here.missing:
        assert here.apt_line() in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")
def test_doctor_reports_the_platform_plugin(tmp_path):
    here = qt_platform.check({"DISPLAY": ":8765"})
    done = _cli("doctor", "--json", "--no-cameras", DISPLAY=":8765", HOME=str(tmp_path))
    report = json.loads(done.stdout)
    assert report["qt"]["platform plugin"] == here.summary()
    assert any(here.problem in p for p in report["problems"])
    # without a display the desktop plugin's libraries are still checked, not a problem
    done = _cli("doctor", "--json", "--no-cameras", HOME=str(tmp_path))
    report = json.loads(done.stdout)
    desktop = qt_platform.check({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"})
    if desktop.missing:
        assert desktop.apt_line() in report["qt"]["xcb plugin (desktop)"]
        assert not any("platform plugin" in p for p in report["problems"])
