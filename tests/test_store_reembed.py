"""Re-embedding stored chips when the encoder changes (fake engines)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from store_fakes import FakeEngine, chip_for

from desktop.errors import Cancelled
from desktop.store import Gallery, NewTemplate
from desktop.store.chips import decode_chip
from desktop.store.reembed import reembed_gallery
from desktop.tasks import CancelToken


@pytest.fixture
def gallery(tmp_path):
    g = Gallery(tmp_path / "gallery.sqlite3")
    v1 = FakeEngine("fake-v1")
    for ident, name in ((1, "Ada"), (2, "Bob"), (3, "Cy")):
        g.enrol(name, [NewTemplate(chip_for(ident, v), v1.expected(chip_for(ident, v)),
                                   v1.model_id, "1") for v in range(2)])
    yield g
    g.close()


def expected_embedding(engine: FakeEngine, g: Gallery, template_id: int) -> np.ndarray:
    return engine.expected(g.template_chip(template_id))


def test_model_change_reembeds_every_template(gallery):
    v2 = FakeEngine("fake-v2")
    assert gallery.count_stale(v2.model_id) == 6
    assert len(gallery.matcher(v2.model_id)) == 0  # spaces never mix
    reports = []
    report = reembed_gallery(gallery, v2, model_version="2", batch_size=4,
                             progress=lambda f, m="": reports.append((f, m)))
    assert (report.total, report.done, report.failed, report.cancelled) == (6, 6, [], False)
    assert gallery.model_counts() == {"fake-v2": 6}
    for t in gallery.templates():
        assert t.model_version == "2"
        np.testing.assert_array_equal(t.embedding, expected_embedding(v2, gallery, t.id))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert reports[-1][1] == "6/6 templates"
    assert v2.embed_calls == 2  # batches of 4 + 2
    m = gallery.matcher(v2.model_id)
    ada = gallery.person_by_name("Ada")
    assert m.identify_one(v2.expected(chip_for(1, 0))).person_id == ada.id
    # nothing left to do
    again = reembed_gallery(gallery, v2)
    assert again.total == 0 and v2.embed_calls == 2


def test_cancel_leaves_a_consistent_database(gallery):
    v2 = FakeEngine("fake-v2")
    token = CancelToken()

    def progress(fraction, message=""):
        if fraction >= 0.3:
            token.cancel()

    with pytest.raises(Cancelled) as info:
        reembed_gallery(gallery, v2, batch_size=2, progress=progress, cancel=token)
    report = info.value.report
    assert report.cancelled and report.done == 2 and report.remaining == 4
    counts = gallery.model_counts()
    assert counts == {"fake-v1": 4, "fake-v2": 2}
    v1 = FakeEngine("fake-v1")
    for t in gallery.templates():  # each template wholly old or wholly new
        engine = v2 if t.model_id == "fake-v2" else v1
        np.testing.assert_array_equal(t.embedding, expected_embedding(engine, gallery, t.id))
    assert len(gallery.people()) == 3
    # a second run finishes the job
    done = reembed_gallery(gallery, v2)
    assert done.total == 4 and done.done == 4
    assert gallery.model_counts() == {"fake-v2": 6}


def test_bad_chip_and_failing_encoder_are_reported(gallery):
    first = gallery.templates()[0].id
    conn = sqlite3.connect(gallery.path)
    conn.execute("UPDATE templates SET chip_jpeg = x'00010203' WHERE id = ?", (first,))
    conn.commit()
    conn.close()
    with pytest.raises(ValueError):
        decode_chip(b"\x00\x01\x02\x03")
    v2 = FakeEngine("fake-v2")
    report = reembed_gallery(gallery, v2, batch_size=3)
    assert report.done == 5 and [tid for tid, _ in report.failed] == [first]
    assert gallery.count_stale(v2.model_id) == 1  # left stale, so never matched

    class Broken(FakeEngine):
        def embed(self, chips):
            raise RuntimeError("out of memory")

    broken = Broken("fake-v3")
    report = reembed_gallery(gallery, broken, batch_size=10)
    assert report.done == 0 and len(report.failed) == 6  # the bad chip, and 5 encoder errors
    assert report.failed[0][0] == first
    assert all("out of memory" in why for _, why in report.failed[1:])
    assert "fake-v3" not in gallery.model_counts()


def test_cli_reembed_exits_1_and_counts_the_failed_templates(gallery, monkeypatch, capsys):
    from desktop import cli
    from desktop.commands import gallery as gallery_cmd

    first = gallery.templates()[0].id
    with sqlite3.connect(gallery.path) as conn:
        conn.execute("UPDATE templates SET chip_jpeg = x'00010203' WHERE id = ?", (first,))
    conn.close()
    monkeypatch.setattr(gallery_cmd, "load_engine", lambda: FakeEngine("fake-v2"))
    assert cli.main(["gallery", "reembed", "--db", str(gallery.path)]) == 1
    captured = capsys.readouterr()
    assert "re-embedded 5 of 6 template(s) with fake-v2" in captured.out
    assert f"template {first} failed" in captured.err
    assert "facestyle: 1 of 6 templates failed" in captured.err.strip().splitlines()[-1]
    assert cli.main(["gallery", "reembed", "--db", str(gallery.path)]) == 1  # still stale
    capsys.readouterr()
