"""The model commands: eval-pairs, train-verifier, encoders (with a fake face engine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import CodeEngine, code_image

from desktop.cli import main
from desktop.commands import train_encoder as train_cmd
from desktop.face import training
from desktop.face.encoder_versions import BUILTIN, EncoderRegistry
from desktop.face.training import finetune

# code -> descriptor; people: A = {10, 11, 12}, B = {20, 21}, C = {30}; 0 = no face.
TABLE = {
    10: np.r_[0.00, 0.0], 11: np.r_[0.30, 0.0], 12: np.r_[0.50, 0.0],
    20: np.r_[1.00, 0.0], 21: np.r_[1.20, 0.3], 30: np.r_[0.00, 0.9],
}
FILES = {"a/1.png": 10, "a/2.png": 11, "a/3.png": 12, "b/1.png": 20, "b/2.png": 21,
         "c/1.png": 30, "x/blank.png": 0}
# d per pair: a1-a2 .09 (same), a1-a3 .25 (same), b1-b2 .13 (same), a2-b1 .49 (diff),
# a3-c1 1.06 (diff), a1-blank (same, failed), b2-c1 1.8 (diff), a3-b1 .25 (diff)
PAIRS_CSV = """file_x,file_y,decision
a/1.png,a/2.png,yes
a/1.png,a/3.png,1
b/1.png,b/2.png,yes
a/2.png,b/1.png,no
a/3.png,c/1.png,0
a/1.png,x/blank.png,yes
b/2.png,c/1.png,no
a/3.png,b/1.png,no
"""


@pytest.fixture
def photo_root(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for rel, code in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(code_image(code)).save(root / rel)
    (tmp_path / "pairs.csv").write_text(PAIRS_CSV, encoding="utf-8")
    return root


@pytest.fixture
def fake_engine(monkeypatch):
    engine = CodeEngine({k: v.astype(np.float32) for k, v in TABLE.items()})
    monkeypatch.setattr(EncoderRegistry, "build_engine",
                        lambda self, name=None, device="auto", **kw: engine)
    return engine


def test_eval_pairs_json_matches_hand_computed_figures(photo_root, fake_engine, capsys):
    rc = main(["eval-pairs", str(photo_root.parent / "pairs.csv"), "--root", str(photo_root),
               "--json", "--roc", str(photo_root.parent / "roc.png")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"pairs", "accuracy", "tau", "best_threshold", "best_accuracy",
                        "roc_auc", "eer", "tar_at_far", "failed_images", "unreadable_images",
                        "excluded_pairs"}
    assert out["unreadable_images"] == [] and out["excluded_pairs"] == 0
    assert out["pairs"] == 8 and out["tau"] == 0.36
    # at tau .36: same .09 .25 .13 right, failed wrong; diff .49 1.06 1.8 right, .25 wrong
    assert out["accuracy"] == pytest.approx(6 / 8)
    # ranking by d: .09S .13S .25S=.25D (tie) .49D 1.06D 1.8D, failed S last (inf)
    # positive-negative pairs won: 3 same x 4 diff = 12, minus the tie (.5) -> 11.5/16
    assert out["roc_auc"] == pytest.approx(11.5 / 16)
    # cuts: d <= .09 -> 5 right, <= .13 -> 6, <= .25 -> 6, <= .49 -> 5: the first best is
    # the cut between .13 and .25
    assert out["best_accuracy"] == pytest.approx(6 / 8)
    assert out["best_threshold"] == pytest.approx(0.19)
    assert out["tar_at_far"] == {"0.01": 0.5, "0.001": 0.5}
    assert out["failed_images"] == ["x/blank.png"]
    assert (photo_root.parent / "roc.png").stat().st_size > 5000


def test_eval_pairs_text_output_and_verifier_rule(photo_root, fake_engine, capsys):
    rc = main(["eval-pairs", str(photo_root.parent / "pairs.csv"), "--root", str(photo_root)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "[threshold] 8 pairs (4 same, 4 different)" in text
    assert "failed: x/blank.png: no face found" in text
    rc = main(["eval-pairs", str(photo_root.parent / "pairs.csv"), "--root", str(photo_root),
               "--rule", "verifier"])
    assert rc == 2  # no head trained for the active encoder
    assert "No verification head" in capsys.readouterr().err


def test_eval_pairs_with_every_image_missing_fails_naming_them(tmp_path, fake_engine, capsys):
    # 61 images, none of them under --root (e.g. a wrong --root)
    lines = ["file_x,file_y,decision"]
    lines += [f"p{i:02d}/1.jpg,p{i + 1:02d}/1.jpg,no" for i in range(0, 60, 2)]
    lines += [f"p{i:02d}/1.jpg,p{i:02d}/2.jpg,yes" for i in range(0, 60, 2)]
    lines += ["p60/1.jpg,p00/1.jpg,no"]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "root").mkdir()
    rc = main(["eval-pairs", str(tmp_path / "pairs.csv"), "--root", str(tmp_path / "root"),
               "--json"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""  # no figures at all, not accuracy 0
    assert "91 of 91 images could not be read, so no pair can be scored" in captured.err
    assert "p00/1.jpg does not exist" in captured.err  # relative to --root
    assert "p00/2.jpg does not exist; p01/1.jpg does not exist" in captured.err
    assert "and 86 more" in captured.err
    assert "relative to the root folder" in captured.err
    assert fake_engine.detect_calls == 0


def test_eval_pairs_leaves_out_the_pairs_of_unreadable_images(photo_root, fake_engine, capsys):
    (photo_root / "b" / "2.png").unlink()  # in two pairs: b1-b2 (same), b2-c1 (different)
    (photo_root / "a" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # in three
    rc = main(["eval-pairs", str(photo_root.parent / "pairs.csv"), "--root", str(photo_root),
               "--json"])
    captured = capsys.readouterr()
    assert rc == 1
    out = json.loads(captured.out)
    assert out["unreadable_images"] == ["a/3.png", "b/2.png"]
    assert out["excluded_pairs"] == 5
    assert out["failed_images"] == ["x/blank.png"]  # no face: still counts as wrong
    # left: a1-a2 .09 (same, right), a2-b1 .49 (diff, right), a1-blank (same, wrong)
    assert out["pairs"] == 3
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert captured.err.strip().splitlines()[-1] == (
        "facestyle: 2 of 7 images failed (could not be read; 5 pairs left out of the figures)")

    rc = main(["eval-pairs", str(photo_root.parent / "pairs.csv"), "--root", str(photo_root)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "[threshold] 3 pairs (2 same, 1 different), encoder dlib-resnet-v1; 5 more left " \
        "out (an image could not be read)" in text
    assert "unreadable: b/2.png does not exist. (its pairs are left out)" in text
    assert "unreadable: a/3.png is " in text


def test_eval_pairs_reads_a_deepface_style_csv_with_model_columns(photo_root, fake_engine,
                                                                  capsys):
    rows = [line.split(",") for line in PAIRS_CSV.strip().splitlines()]
    models = [f"{m}_{d}" for m in ("VGG-Face", "Facenet", "OpenFace", "DeepFace", "DeepID")
              for d in ("cosine", "euclidean")] + ["ArcFace_cosine"]
    lines = [",".join([*rows[0], *models])]
    lines += [",".join([x, y, "Yes" if dec in ("yes", "1") else "No", *["0.5"] * 11])
              for x, y, dec in rows[1:]]
    deepface = photo_root.parent / "deepface.csv"
    deepface.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(lines[0].split(",")) == 14
    rc = main(["eval-pairs", str(deepface), "--root", str(photo_root), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # the same pairs as pairs.csv, so the same figures
    assert out["pairs"] == 8 and out["accuracy"] == pytest.approx(6 / 8)
    assert out["roc_auc"] == pytest.approx(11.5 / 16)


def make_gallery(model_id: str = BUILTIN):
    from desktop.store import Gallery, NewTemplate

    rng = np.random.default_rng(0)
    g = Gallery()
    centres = rng.normal(0, 0.12, (6, 128))
    for p in range(6):
        templates = [NewTemplate(np.full((150, 150, 3), 40 * p, np.uint8),
                                 (centres[p] + rng.normal(0, 0.03, 128)).astype(np.float32),
                                 model_id) for _ in range(3)]
        g.enrol(f"person {p}", templates)
    return g


def test_train_verifier_on_the_gallery_and_use_it(capsys):
    make_gallery().close()
    rc = main(["train-verifier", "--features", "chi2", "--use"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model_id"] == BUILTIN and out["features"] == "chi2"
    assert out["train_positives"] == 18  # 6 people x 3 pairs each
    assert out["train_balanced_accuracy"] == 1.0
    assert Path(out["path"]).is_file()
    assert EncoderRegistry().rule() == "verifier"
    rule = EncoderRegistry().decision_rule()
    accepted, p = rule.accept(0.0, np.zeros(128), np.zeros(128))
    assert accepted and p > 0.5


def test_train_verifier_without_a_gallery_says_so(capsys):
    assert main(["train-verifier"]) == 2
    assert "no gallery" in capsys.readouterr().err


def test_encoders_list_rule_and_rollback_messages(capsys):
    assert main(["encoders", "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {BUILTIN}" in out and "rule: threshold" in out
    assert main(["encoders", "rollback"]) == 2
    assert "no earlier encoder" in capsys.readouterr().err
    assert main(["encoders", "rule", "verifier"]) == 2  # no head for the active encoder
    assert main(["encoders", "activate", "nope"]) == 2
    assert "no encoder version named 'nope'" in capsys.readouterr().err
    assert main(["encoders", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == BUILTIN and listed[0]["active"]


def test_train_encoder_refuses_bad_arguments(capsys, tmp_path):
    assert main(["train-encoder", "--out", "x"]) == 2
    assert "either ROOT" in capsys.readouterr().err
    assert main(["train-encoder", str(tmp_path), "--out", "bad name"]) == 2
    assert main(["train-encoder", str(tmp_path), "--out", "v", "--batch", "8"]) == 2
    assert "P x K" in capsys.readouterr().err


def test_parser_choices_match_the_core():
    assert train_cmd.MINING_RULES == training.MINING_RULES
    assert tuple(training.TRAIN_MODES) == train_cmd.TRAIN_MODES
    assert train_cmd.SCHEDULES == finetune.SCHEDULES
