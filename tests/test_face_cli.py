"""``facestyle faces`` and ``facestyle verify``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.cli import main
from desktop.imageio import save_png


@pytest.fixture
def blank_png(tmp_path):
    path = tmp_path / "blank.png"
    save_png(path, np.full((120, 160, 3), 180, np.uint8))
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_faces_reports_each_image_and_fails_when_any_fails(blank_png, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rc = main(["faces", "--json", "--device", "cpu", str(blank_png), str(broken)])
    captured = capsys.readouterr()
    records = json_lines(captured.out)
    assert rc == 1  # one broken file in the batch
    assert [r["image"] for r in records] == [str(blank_png), str(broken)]
    assert records[0] == {"image": str(blank_png), "faces": [], "error": None}
    assert records[1]["faces"] == [] and "broken.jpg" in records[1]["error"]
    assert captured.err.strip().splitlines()[-1] == "facestyle: 1 of 2 images failed"

    rc = main(["faces", "--device", "cpu", str(blank_png), str(broken), str(tmp_path / "no.png")])
    captured = capsys.readouterr()
    assert rc == 1
    assert f"{broken}: ERROR" in captured.out and "no face found" in captured.out
    assert "2 of 3 images failed" in captured.err

    rc = main(["faces", "--json", "--device", "cpu", str(broken), str(tmp_path / "none.png")])
    captured = capsys.readouterr()
    assert rc == 1
    assert all(r["error"] for r in json_lines(captured.out))
    assert "2 of 2 images failed" in captured.err

    assert main(["faces", "--device", "cpu", str(blank_png), str(blank_png)]) == 0  # no face
    assert "failed" not in capsys.readouterr().err


def test_batch_commands_state_their_exit_status_in_help(capsys):
    for command in (["faces"], ["eval-pairs"], ["gallery", "enroll"], ["gallery", "reembed"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "Exit status: 0 when every one of the" in text, command
        assert "1 when any failed" in text, command


def test_faces_text_says_clearly_when_no_face_is_found(blank_png, capsys):
    assert main(["faces", "--device", "cpu", str(blank_png)]) == 0
    out = capsys.readouterr().out
    assert "no face found" in out and "--upsample" in out


def test_verify_without_a_face_is_trouble_not_a_decision(blank_png, capsys):
    rc = main(["verify", "--device", "cpu", str(blank_png), str(blank_png)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no face found" in err and str(blank_png) in err


def test_verify_refuses_a_bad_tau(blank_png, capsys):
    assert main(["verify", "--tau", "0", str(blank_png), str(blank_png)]) == 2
    assert "--tau" in capsys.readouterr().err


# -- faces-dev -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.shared_data
def test_faces_finds_a_face_in_every_faces_dev_photo(shared_data, capsys):
    photos = sorted(p for p in (shared_data / "faces-dev").rglob("*")
                    if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    names = {p.name for p in photos}
    assert {"32bit.png", "obama_partial_face.jpg", "obama_partial_face2.jpg"} <= names
    rc = main(["faces", "--json", "--descriptors", "--device", "cpu", *map(str, photos)])
    records = json_lines(capsys.readouterr().out)
    assert rc == 0 and len(records) == len(photos)
    for record in records:
        assert record["error"] is None, record
        assert record["faces"], f"no face in {record['image']}"
        for face in record["faces"]:
            assert len(face["box"]) == 4 and face["score"] > 0
            assert np.array(face["landmarks"]).shape == (5, 2)
            assert len(face["descriptor"]) == 128
    by_name = {r["image"].rsplit("/", 1)[-1]: r for r in records}
    assert len(by_name["obama_and_biden.jpg"]["faces"]) == 3  # and the girl on the right
    assert len(by_name["kit_with_rose.jpg"]["faces"]) == 2


@pytest.mark.shared_data
def test_verify_same_and_different_people(shared_data, capsys):
    knn = shared_data / "faces-dev" / "knn"
    rc = main(["verify", "--device", "cpu", str(knn / "train/obama/obama.jpg"),
               str(knn / "test/obama1.jpg")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "d   =" in out and "L2  =" in out and "tau = 0.3600" in out
    assert "SAME person" in out
    rc = main(["verify", "--json", "--device", "cpu", str(knn / "train/biden/biden.jpg"),
               str(knn / "test/obama_and_biden.jpg")])
    result = json.loads(capsys.readouterr().out)
    assert rc == 1 and result["same_person"] is False
    assert result["faces_found"] == [1, 3]  # the largest of the three faces was compared
    assert result["d_squared_l2"] == pytest.approx(result["l2"] ** 2)
    assert result["d_squared_l2"] >= result["tau_squared_l2"] == pytest.approx(0.36)


def test_fast_mode_without_opencv_4_fails_once_and_clearly(blank_png, capsys):
    from desktop.face.detector import HaarFaceDetector

    if HaarFaceDetector.available():
        assert main(["faces", "--fast", str(blank_png)]) == 0
        return
    assert main(["faces", "--fast", str(blank_png), str(blank_png)]) == 2
    err = capsys.readouterr().err
    assert err.count("OpenCV 4") == 1 and "opencv-python-headless<5" in err
