"""Enrolment and identification with the real face engine on faces-dev (shared data)."""

from __future__ import annotations

import numpy as np
import pytest

from desktop import cli
from desktop.store import Gallery
from desktop.store.enrol import enrol_from_images

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine():
    api = pytest.importorskip("desktop.face.api", reason="the face engine is not merged")
    return api.FaceEngine()


def test_enrol_knn_train_then_identify_test_photos(shared_data, engine, tmp_path):
    from desktop.imageio import load_rgb

    train = shared_data / "faces-dev" / "knn" / "train"
    with Gallery(tmp_path / "gallery.sqlite3") as g:
        for person in sorted(p for p in train.iterdir() if p.is_dir()):
            photos = sorted(person.iterdir())
            res = enrol_from_images(g, engine, person.name, photos)
            assert res.person.n_templates == len(photos), res
        assert len(g.people()) == 5
        matcher = g.matcher(engine.model_id)
        assert matcher.n_people == 5 and matcher.model_id == engine.model_id
        test = shared_data / "faces-dev" / "knn" / "test"
        expected = {"johnsnow_test1.jpg": {"kit_harington"}, "obama1.jpg": {"obama"},
                    "alex_lacamoire1.jpg": {"alex_lacamoire"},
                    "obama_and_biden.jpg": {"obama", "biden"},
                    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"}}
        for name, who in expected.items():
            faces = engine.detect(load_rgb(test / name))
            found = matcher.identify(engine.embed(np.stack([f.chip for f in faces])))
            named = [m.name for m in found if m.accepted]
            # every expected person is named once; other faces (a bystander) are Unknown
            assert sorted(named) == sorted(who), (name, [m.reason for m in found])


def test_cli_enroll_with_the_real_engine(shared_data, engine, tmp_path, capsys):
    db = tmp_path / "g.sqlite3"
    video = shared_data / "faces-dev" / "video"
    assert cli.main(["gallery", "enroll", "Lin-Manuel Miranda",
                     str(video / "lin-manuel-miranda.png"), "--db", str(db)]) == 0
    assert "enrolled Lin-Manuel Miranda" in capsys.readouterr().out
    two = shared_data / "faces-dev" / "images" / "two_people.jpg"
    assert cli.main(["gallery", "enroll", "Pair", str(two), "--db", str(db)]) == 2
    assert "two_people.jpg: 2 faces found" in capsys.readouterr().err
    with Gallery(db, maintenance=False) as g:
        assert [p.name for p in g.people()] == ["Lin-Manuel Miranda"]


def test_reembedding_from_stored_chips_reproduces_descriptors(shared_data, engine, tmp_path):
    """Same weights under a new model id: re-embedding the stored JPEG chips must land
    within JPEG noise of the original descriptors (far below the 0.03 margin)."""
    from desktop.face.api import FaceEngine
    from desktop.face.types import squared_distance
    from desktop.store.reembed import reembed_gallery

    video = shared_data / "faces-dev" / "video"
    with Gallery(tmp_path / "g.sqlite3") as g:
        for name, photo in (("Lin", "lin-manuel-miranda.png"), ("Alex", "alex-lacamoire.png")):
            enrol_from_images(g, engine, name, [video / photo])
        before = {t.id: t.embedding for t in g.templates()}
        renamed = FaceEngine(model_id="dlib-resnet-v1-copy")
        report = reembed_gallery(g, renamed)
        assert (report.done, report.failed) == (2, [])
        assert len(g.matcher(engine.model_id)) == 0
        for t in g.templates():
            assert t.model_id == "dlib-resnet-v1-copy"
            assert float(squared_distance(t.embedding, before[t.id])) < 0.005
