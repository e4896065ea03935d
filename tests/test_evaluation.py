"""Pair lists (CSV and LFW pairs.txt), verification metrics against a hand-computed
example, failed images, and the ROC plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import CodeEngine, code_image

from desktop.face.evaluation import (
    PairListError,
    RocSeries,
    UnreadableImagesError,
    distance_metrics,
    embed_pairs,
    evaluate_embeddings,
    probability_metrics,
    read_pairs,
    save_roc_png,
)

# Hand-computed example. Squared distances d of 4 same pairs (the last has a photo with
# no face) and 4 different pairs; tau = 0.36.
SAME_D = [0.10, 0.20, 0.50, math.inf]
DIFF_D = [0.30, 0.60, 0.80, 0.90]
# At tau: same 0.1, 0.2 accepted (right), 0.5 and the failed one rejected (wrong);
#         different 0.3 accepted (wrong), 0.6, 0.8, 0.9 rejected (right): 5/8.
# ROC (FAR, TAR) from strict to loose: (0,0) (0,.25) (0,.5) (.25,.5) (.25,.75) (.5,.75)
#   (.75,.75) (1,.75) (1,1). AUC = .25*.5 + 3*.25*.75 = .6875 (= Mann-Whitney 11/16).
# EER: the curve meets FAR = 1 - TAR at (.25, .75): 0.25.
# TAR at FAR 1e-2 and 1e-3: 0.5 (the best with no false accept).
# Best cut: accept d <= 0.25 (between 0.2 and 0.3): 2 + 4 right = 6/8 (0.75), the first
# of two cuts reaching 6.
EXPECTED = {
    "pairs": 8, "accuracy": 0.625, "tau": 0.36, "best_threshold": 0.25,
    "best_accuracy": 0.75, "roc_auc": 0.6875, "eer": 0.25,
    "tar_at_far": {"0.01": 0.5, "0.001": 0.5},
}


def test_threshold_metrics_match_the_hand_computed_example():
    d = np.array(SAME_D + DIFF_D)
    same = np.array([True] * 4 + [False] * 4)
    m = distance_metrics(d, same, 0.36, failed_images=["no_face.jpg"])
    out = m.to_json()
    for key, value in EXPECTED.items():
        if isinstance(value, dict):
            assert out[key] == pytest.approx(value)
        else:
            assert out[key] == pytest.approx(value), key
    assert out["failed_images"] == ["no_face.jpg"]
    assert set(out) == {*EXPECTED, "failed_images", "unreadable_images",
                        "excluded_pairs"}  # exactly the CLI's keys
    assert m.operating_point == pytest.approx((0.25, 0.5))


def test_probability_metrics_use_p_units_and_the_same_ranking():
    d = np.array(SAME_D + DIFF_D)
    same = np.array([True] * 4 + [False] * 4)
    p = np.exp(-d * 3)  # monotone in -d, so every rank figure is the same
    m = probability_metrics(p, same, threshold=float(np.exp(-0.36 * 3)))
    assert m.roc_auc == pytest.approx(0.6875)
    assert m.eer == pytest.approx(0.25)
    assert m.accuracy == pytest.approx(0.625)
    assert m.best_accuracy == pytest.approx(0.75)
    assert m.best_threshold == pytest.approx((np.exp(-0.6) + np.exp(-0.9)) / 2)


def test_perfect_separation_and_nan_free_json():
    m = distance_metrics(np.array([0.1, 0.2, 0.9, 1.0]), np.array([1, 1, 0, 0], bool))
    assert (m.accuracy, m.roc_auc, m.eer, m.best_accuracy) == (1.0, 1.0, 0.0, 1.0)
    assert m.tar_at_far == {"0.01": 1.0, "0.001": 1.0}
    only_same = distance_metrics(np.array([0.1, 0.2]), np.array([True, True]))
    assert only_same.to_json()["roc_auc"] is None  # undefined, printed as null


def write_tree(root: Path, codes: dict[str, int]) -> None:
    for rel, code in codes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(code_image(code)).save(path)


def test_csv_pairs_with_yes_no_and_1_0(tmp_path: Path):
    lst = tmp_path / "pairs.csv"
    lst.write_text("file_x,file_y,decision\n"
                   "a/1.png,a/2.png,yes\n"
                   "a/1.png,b/1.png,no\n"
                   "\n"
                   "b/1.png,b/2.png,1\n"
                   "a/2.png, b/2.png ,0\n", encoding="utf-8")
    pairs = read_pairs(lst, tmp_path / "root")
    assert [p.same for p in pairs] == [True, False, True, False]
    assert pairs[0].x == tmp_path / "root" / "a" / "1.png"
    assert pairs[3].y == tmp_path / "root" / "b" / "2.png"


def test_csv_errors_name_the_line(tmp_path: Path):
    lst = tmp_path / "bad.csv"
    lst.write_text("file_x,file_y,decision\na.png,b.png,maybe\n", encoding="utf-8")
    with pytest.raises(PairListError, match="line 2"):
        read_pairs(lst, tmp_path)
    lst.write_text("a.png,b.png\n", encoding="utf-8")
    with pytest.raises(PairListError, match="column"):
        read_pairs(lst, tmp_path)
    with pytest.raises(PairListError, match="Cannot read"):
        read_pairs(tmp_path / "missing.csv", tmp_path)


MODELS = ["VGG-Face_cosine", "VGG-Face_euclidean", "Facenet_cosine", "Facenet_euclidean",
          "OpenFace_cosine", "OpenFace_euclidean", "DeepFace_cosine", "DeepFace_euclidean",
          "DeepID_cosine", "DeepID_euclidean", "ArcFace_cosine"]


def test_csv_with_a_header_is_read_by_column_name_ignoring_extra_columns(tmp_path: Path):
    # a deepface-style pair file: file_x,file_y,decision and one column per model (14)
    header = ["file_x", "file_y", "decision", *MODELS]
    rows = [["a/1.jpg", "a/2.jpg", "Yes", *["0.31"] * 11],
            ["a/1.jpg", "b/1.jpg", "No", *["0.72"] * 11],
            ["b/1.jpg", "b/2.jpg", "Yes", *["0.28"] * 11]]
    lst = tmp_path / "deepface.csv"
    lst.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    assert len(header) == 14
    pairs = read_pairs(lst, tmp_path / "root")
    assert [p.same for p in pairs] == [True, False, True]
    assert [(p.x.name, p.y.name) for p in pairs] == [("1.jpg", "2.jpg"), ("1.jpg", "1.jpg"),
                                                      ("1.jpg", "2.jpg")]
    assert pairs[1].y == tmp_path / "root" / "b" / "1.jpg"

    # columns in another order, under synonyms, with pandas' unnamed index column
    lst.write_text(",label,score,img2,img1\n"
                   "0,1,0.3,a/2.jpg,a/1.jpg\n"
                   "1,0,0.9,b/1.jpg,a/1.jpg\n", encoding="utf-8")
    pairs = read_pairs(lst, tmp_path)
    assert [(p.x.name, p.y.parent.name, p.same) for p in pairs] == [("1.jpg", "a", True),
                                                                     ("1.jpg", "b", False)]


def test_csv_dialects_semicolons_tabs_and_quoted_paths(tmp_path: Path):
    lst = tmp_path / "pairs.csv"
    lst.write_text('Image 1;Image 2;Same\n"x/a; b.jpg";x/c.jpg;true\nx/c.jpg;y/d.jpg;false\n',
                   encoding="utf-8")
    pairs = read_pairs(lst, tmp_path)
    assert pairs[0].x == tmp_path / "x" / "a; b.jpg"  # the quoted ; is part of the name
    assert [p.same for p in pairs] == [True, False]
    lst.write_text("img1\timg2\tis_same\tnote\nx/a.jpg\tx/b.jpg\t1\tok\n", encoding="utf-8")
    [pair] = read_pairs(lst, tmp_path)
    assert (pair.x.name, pair.y.name, pair.same) == ("a.jpg", "b.jpg", True)
    # header-less rows whose decision reads like a column name are pairs, not a header
    lst.write_text("x/a.jpg,x/b.jpg,same\nx/a.jpg,y/c.jpg,different\n", encoding="utf-8")
    assert [p.same for p in read_pairs(lst, tmp_path)] == [True, False]


def test_csv_header_without_a_needed_column_says_which(tmp_path: Path):
    lst = tmp_path / "pairs.csv"
    lst.write_text("file_x,file_y,score\na.jpg,b.jpg,0.3\n", encoding="utf-8")
    with pytest.raises(PairListError, match="no decision column") as err:
        read_pairs(lst, tmp_path)
    assert "file_x, file_y, score" in err.value.message
    lst.write_text("a.jpg,b.jpg,yes,0.3\n", encoding="utf-8")  # 4 columns, no header
    with pytest.raises(PairListError, match="found 4 column") as err:
        read_pairs(lst, tmp_path)
    assert "header" in err.value.hint


def test_lfw_pairs_txt_both_line_forms_and_header(tmp_path: Path):
    lst = tmp_path / "pairs.txt"
    lst.write_text("2\t2\n"
                   "Abel_Pacheco\t1\t4\n"
                   "Akhmed_Zakayev\t1\t3\n"
                   "Abdel_Madi_Shabneh\t1\tDean_Barker\t1\n"
                   "Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\n", encoding="utf-8")
    pairs = read_pairs(lst, tmp_path / "lfw")
    assert [p.same for p in pairs] == [True, True, False, False]
    assert pairs[0].x == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert pairs[0].y == tmp_path / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"
    assert pairs[2].y == tmp_path / "lfw" / "Dean_Barker" / "Dean_Barker_0001.jpg"
    lst.write_text("6000\nAbel_Pacheco 1\n", encoding="utf-8")
    with pytest.raises(PairListError, match="line 2"):
        read_pairs(lst, tmp_path)


def test_embedding_pairs_counts_a_faceless_photo_as_wrong(tmp_path: Path):
    # code -> descriptor: 10, 11 are person A; 20 is person B; 0 has no face.
    table = {10: np.array([0.0, 0.0]), 11: np.array([0.3, 0.0]), 20: np.array([1.0, 0.0])}
    write_tree(tmp_path, {"a/1.png": 10, "a/2.png": 11, "b/1.png": 20, "x/none.png": 0})
    lst = tmp_path / "p.csv"
    lst.write_text("a/1.png,a/2.png,yes\na/1.png,b/1.png,no\n"
                   "a/1.png,x/none.png,yes\nb/1.png,x/none.png,no\n", encoding="utf-8")
    engine = CodeEngine(table)
    emb = embed_pairs(read_pairs(lst, tmp_path), engine)
    assert engine.detect_calls == 4  # each distinct photo once
    d = emb.squared_distances()
    assert d[0] == pytest.approx(0.09)
    assert d[1] == pytest.approx(1.0)
    assert d[2] == math.inf and d[3] == -math.inf  # wrong at any threshold
    m = distance_metrics(d, emb.same, 0.36, failed_images=list(emb.failed_images))
    assert m.accuracy == pytest.approx(0.5)  # the two good pairs right, the two failed wrong
    assert m.best_accuracy == pytest.approx(0.5)
    assert m.failed_images == [str(tmp_path / "x" / "none.png")]
    assert emb.failed_images[str(tmp_path / "x" / "none.png")] == "no face found"


def test_unreadable_images_leave_their_pairs_out(tmp_path: Path):
    table = {10: np.array([0.0, 0.0]), 11: np.array([0.3, 0.0]), 20: np.array([1.0, 0.0])}
    write_tree(tmp_path, {"a/1.png": 10, "a/2.png": 11, "b/1.png": 20})
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "bad.png").write_bytes(b"not a png")
    lst = tmp_path / "p.csv"
    lst.write_text("a/1.png,a/2.png,yes\na/1.png,b/1.png,no\n"
                   "a/1.png,x/bad.png,yes\nx/gone.png,b/1.png,no\n", encoding="utf-8")
    emb = embed_pairs(read_pairs(lst, tmp_path), CodeEngine(table))
    assert sorted(emb.unreadable) == [str(tmp_path / "x" / "bad.png"),
                                      str(tmp_path / "x" / "gone.png")]
    assert emb.failed_images == {}  # unreadable is not "no face"
    assert emb.excluded.tolist() == [False, False, True, True]
    m = evaluate_embeddings(emb)["threshold"]
    assert m.pairs == 2 and m.accuracy == 1.0  # only the two readable pairs
    assert m.excluded_pairs == 2 and m.unreadable_images == sorted(emb.unreadable)

    lst.write_text("x/bad.png,x/gone.png,no\n", encoding="utf-8")
    emb = embed_pairs(read_pairs(lst, tmp_path), CodeEngine(table))
    with pytest.raises(UnreadableImagesError, match="2 of 2 images could not be read"):
        evaluate_embeddings(emb)


def test_roc_png_is_drawn(tmp_path: Path):
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    d = np.where(same, rng.normal(0.2, 0.08, 400), rng.normal(0.6, 0.12, 400))
    thr = distance_metrics(d, same)
    noisy = d + rng.normal(0, 0.15, 400)  # a different ranking, so a different curve
    ver = probability_metrics(1 / (1 + np.exp((noisy - 0.4) * 12)), same)
    out = save_roc_png(tmp_path / "roc.png",
                       [RocSeries("threshold", thr, (31, 119, 180)),
                        RocSeries("verifier", ver, (214, 39, 40))], title="test")
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (640, 720, 3)
    blue = np.all(img == (31, 119, 180), axis=-1).sum()
    red = np.all(img == (214, 39, 40), axis=-1).sum()
    assert blue > 300 and red > 300  # both curves are drawn
