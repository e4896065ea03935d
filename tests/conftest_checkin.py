"""Fixtures shared by the Check-in tab tests (imported by them; pytest plugins stay in
conftest.py)."""

from __future__ import annotations

import contextlib

import pytest
from checkin_fakes import CheckinEngine, walking, write_clip

from desktop.errors import FacestyleError
from desktop.store import Gallery, open_gallery
from desktop.ui.checkin_tab import CheckinTab
from desktop.ui.qthreading import shutdown_workers


@pytest.fixture
def gallery_path(tmp_path):
    return tmp_path / "gallery.sqlite3"


@pytest.fixture
def gallery(gallery_path):
    g = Gallery(gallery_path)
    yield g
    g.close()


@pytest.fixture
def clip(tmp_path):
    """3 s of "ann" crossing a 640x360 frame, 20 frames/s."""
    return write_clip(tmp_path / "ann.avi", walking("ann", 60))


@pytest.fixture
def make_tab(qtbot, gallery_path):
    tabs = []

    def make(**kwargs) -> CheckinTab:
        kwargs.setdefault("engine_factory", CheckinEngine)
        kwargs.setdefault("gallery_path", gallery_path)
        # The fake engine's faces are flat squares: these tests are about the check-in as
        # it was before liveness, so it is off unless a test chose a mode itself.
        with contextlib.suppress(FacestyleError), \
                open_gallery(str(kwargs["gallery_path"]), maintenance=False) as g:  # a file
            # or a shared gallery's server (unless damaged)
            if g.get_setting("liveness", None) is None:
                g.set_setting("liveness", "off")
        tab = CheckinTab(**kwargs)
        qtbot.addWidget(tab)
        tab.resize(1100, 650)
        tab.show()
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()
    assert shutdown_workers(5.0)

