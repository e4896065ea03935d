"""Enrolment from image files (fake engine) and the gallery / checkins CLI."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from store_fakes import FakeEngine, make_photo

from desktop import cli
from desktop.commands import gallery as gallery_cmd
from desktop.commands.checkins import parse_when
from desktop.errors import FacestyleError
from desktop.store import EnrolmentError, Gallery, default_db_path
from desktop.store.enrol import enrol_from_images, examine_images


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def gallery(tmp_path):
    g = Gallery(tmp_path / "gallery.sqlite3")
    yield g
    g.close()


def test_examine_images_gives_one_sentence_per_problem(tmp_path, engine):
    good = make_photo(tmp_path, "good.png", 1)
    none = make_photo(tmp_path, "empty.png", 1, faces=0)
    two = make_photo(tmp_path, "pair.png", 1, faces=2)
    small = make_photo(tmp_path, "tiny.png", 1, size=60)
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff not really a jpeg")
    shots = examine_images(engine, [good, none, two, small, corrupt, tmp_path / "missing.png"])
    assert shots[0].ok and shots[0].face.descriptor.shape == (128,)
    problems = [s.problem for s in shots[1:]]
    assert "empty.png: no face found" in problems[0]
    assert "pair.png: 2 faces found" in problems[1]
    assert "tiny.png: the face is too small (30 px" in problems[2]
    assert "broken.jpg" in problems[3]
    assert "missing.png" in problems[4] and "does not exist" in problems[4]


def test_enrol_from_images_saves_all_templates(tmp_path, gallery, engine):
    paths = [make_photo(tmp_path, f"ada{i}.png", 1, variant=i) for i in range(3)]
    res = enrol_from_images(gallery, engine, "Ada", paths, employee_id="E1")
    assert res.created and res.person.name == "Ada" and res.person.n_templates == 3
    assert res.used == paths and res.skipped == [] and len(res.template_ids) == 3
    assert all(t.source == "file" and t.model_id == engine.model_id
               for t in gallery.templates(res.person.id))


def test_bad_image_refuses_whole_enrolment_unless_skip_bad(tmp_path, gallery, engine):
    good = make_photo(tmp_path, "ada.png", 1)
    two = make_photo(tmp_path, "group.png", 1, faces=2)
    with pytest.raises(EnrolmentError) as info:
        enrol_from_images(gallery, engine, "Ada", [good, two])
    assert "nothing was saved" in info.value.headline
    assert "group.png" in info.value.message
    assert info.value.problems == ["group.png: 2 faces found; use a photo with only the person "
                                   "to enrol."]
    assert "group.png" in str(info.value)
    assert gallery.people() == []
    res = enrol_from_images(gallery, engine, "Ada", [good, two], skip_bad=True)
    assert res.person.n_templates == 1 and len(res.skipped) == 1
    with pytest.raises(EnrolmentError, match="None of the images"):
        enrol_from_images(gallery, engine, "Bob", [two])


def test_lookalike_and_inconsistent_photos_need_force(tmp_path, gallery, engine):
    enrol_from_images(gallery, engine, "Ada", [make_photo(tmp_path, "ada.png", 1)])
    same_face = make_photo(tmp_path, "bob.png", 1, variant=3)
    with pytest.raises(EnrolmentError) as info:
        enrol_from_images(gallery, engine, "Bob", [same_face])
    assert info.value.problems[0].startswith("looks like Ada (already enrolled), d = 0.00")
    res = enrol_from_images(gallery, engine, "Bob", [same_face], force=True)
    assert res.warnings and res.person.name == "Bob"

    mixed = [make_photo(tmp_path, "c1.png", 5), make_photo(tmp_path, "c2.png", 6)]
    with pytest.raises(EnrolmentError) as info:
        enrol_from_images(gallery, engine, "Cy", mixed)
    assert "c2.png does not look like c1.png" in info.value.problems[0]
    assert len(gallery.people()) == 2


def test_existing_name_and_add(tmp_path, gallery, engine):
    enrol_from_images(gallery, engine, "Ada", [make_photo(tmp_path, "a.png", 1)])
    more = make_photo(tmp_path, "a2.png", 1, variant=2)
    with pytest.raises(EnrolmentError, match="already enrolled"):
        enrol_from_images(gallery, engine, "ada", [more])
    res = enrol_from_images(gallery, engine, "Ada", [more], add=True)
    assert not res.created and res.person.n_templates == 2  # not a look-alike of herself


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def fake_cli_engine(monkeypatch, engine):
    monkeypatch.setattr(gallery_cmd, "load_engine", lambda: engine)
    return engine


def test_cli_enroll_list_remove(tmp_path, fake_cli_engine, capsys):
    a = make_photo(tmp_path, "ada.png", 1)
    b = make_photo(tmp_path, "bob.png", 2)
    assert cli.main(["gallery", "enroll", "Ada Lovelace", str(a), "--employee-id", "E1"]) == 0
    assert "enrolled Ada Lovelace (id 1): 1 template(s)" in capsys.readouterr().out
    assert default_db_path().exists()
    assert cli.main(["gallery", "enroll", "Bob", str(b)]) == 0
    capsys.readouterr()
    # a look-alike is refused with exit 2 and a message naming the problem
    assert cli.main(["gallery", "enroll", "Imposter", str(a)]) == 2
    err = capsys.readouterr().err
    assert "looks like Ada Lovelace" in err and "--force" in err

    assert cli.main(["gallery", "list"]) == 0
    out = capsys.readouterr().out
    assert "Ada Lovelace" in out and "E1" in out and "Bob" in out and "2 people" in out

    with Gallery(maintenance=False) as g:
        g.record_checkin(g.person_by_name("Bob").id, 0.1, camera="front")
    assert cli.main(["gallery", "remove", "bob"]) == 0
    assert "kept 1 check-in(s)" in capsys.readouterr().out
    assert cli.main(["gallery", "remove", "Nobody"]) == 2
    assert "No one called 'Nobody'" in capsys.readouterr().err
    assert cli.main(["gallery", "list", "--json"]) == 0
    assert '"name": "Ada Lovelace"' in capsys.readouterr().out


def test_cli_enroll_exit_status_with_a_broken_photo(tmp_path, fake_cli_engine, capsys):
    good = make_photo(tmp_path, "ada.png", 1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    # without --skip-bad nothing is saved and the command fails
    assert cli.main(["gallery", "enroll", "Ada", str(good), str(broken)]) == 2
    assert "1 of 2 images cannot be used" in capsys.readouterr().err
    # with it, Ada is enrolled from the good photo, but the batch still reports the failure
    assert cli.main(["gallery", "enroll", "Ada", str(good), str(broken), "--skip-bad"]) == 1
    captured = capsys.readouterr()
    assert "enrolled Ada (id 1): 1 template(s) from 1 image(s)" in captured.out
    assert f"skipped: {broken} is not an image" in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "facestyle: 1 of 2 images failed (skipped by --skip-bad)")
    with Gallery(maintenance=False) as g:
        assert g.person_by_name("Ada").n_templates == 1


def test_cli_with_db_option_and_no_gallery(tmp_path, fake_cli_engine, capsys):
    db = tmp_path / "other" / "g.sqlite3"
    assert cli.main(["gallery", "list", "--db", str(db)]) == 0
    assert "No one is enrolled" in capsys.readouterr().out
    assert not db.exists()  # listing never creates a gallery
    assert cli.main(["gallery", "enroll", "Ada", str(make_photo(tmp_path, "a.png", 1)),
                     "--db", str(db)]) == 0
    assert db.exists() and not default_db_path().exists()


def test_cli_corrupt_db_points_to_restore(tmp_path, fake_cli_engine, capsys):
    db = tmp_path / "g.sqlite3"
    assert cli.main(["gallery", "enroll", "Ada", str(make_photo(tmp_path, "a.png", 1)),
                     "--db", str(db)]) == 0
    with Gallery(db, maintenance=False) as g:
        g.backup("manual")
    db.write_bytes(b"garbage" * 1000)
    capsys.readouterr()
    assert cli.main(["gallery", "list", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and f"facestyle gallery restore --db {db}" in err
    assert cli.main(["gallery", "restore", "--db", str(db)]) == 0
    assert "restored" in capsys.readouterr().out
    assert cli.main(["gallery", "list", "--db", str(db)]) == 0
    assert "Ada" in capsys.readouterr().out


def test_cli_checkins(tmp_path, capsys):
    with Gallery() as g:
        from store_fakes import chip_for

        from desktop.store import NewTemplate

        e = FakeEngine()
        pid = g.enrol("Ada", [NewTemplate(chip_for(1), e.expected(chip_for(1)), e.model_id)]).id
        now = datetime.now()
        g.record_checkin(pid, 0.1, at=now)
        g.record_checkin(pid, 0.2, at=now - timedelta(days=3))
    assert cli.main(["checkins"]) == 0
    out = capsys.readouterr().out
    assert "Ada" in out and "1 check-in(s) today" in out
    assert cli.main(["checkins", "--since", "7d", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3 and rows[1][2] == "Ada"
    target = tmp_path / "out.csv"
    assert cli.main(["checkins", "--all", "--csv", str(target)]) == 0
    assert target.read_text(encoding="utf-8-sig").count("\n") == 3
    assert cli.main(["checkins", "--since", "not-a-date"]) == 2
    assert "Cannot read the date" in capsys.readouterr().err


def test_parse_when():
    now = datetime(2024, 5, 10, 15, 30)
    assert parse_when("today", now) == datetime(2024, 5, 10)
    assert parse_when("yesterday", now) == datetime(2024, 5, 9)
    assert parse_when("2024-05-01", now) == datetime(2024, 5, 1)
    assert parse_when("2024-05-01T08:30", now) == datetime(2024, 5, 1, 8, 30)
    assert parse_when("7d", now) == now - timedelta(days=7)
    assert parse_when("12h", now) == now - timedelta(hours=12)
    with pytest.raises(FacestyleError):
        parse_when("someday", now)


def test_cli_settings(tmp_path, capsys):
    db = tmp_path / "g.sqlite3"
    assert cli.main(["gallery", "settings", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "tau             0.36" in out and "look-alikes" in out and not db.exists()
    assert cli.main(["gallery", "settings", "--db", str(db), "--tau", "0.3",
                     "--retention-days", "30"]) == 0
    with Gallery(db, maintenance=False) as g:
        assert g.get_setting("tau") == 0.3 and g.get_setting("retention_days") == 30
        assert g.matcher("any").tau == 0.3
    assert cli.main(["gallery", "settings", "--db", str(db), "--tau", "5"]) == 2
    assert "between" in capsys.readouterr().err
