"""The real encoder on the faces-dev photos: chips cached once, a short fine-tune that
writes a checkpoint with metadata, and eval-pairs reading both list formats."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from desktop.cli import main
from desktop.face.encoder import FaceEncoder
from desktop.face.encoder_versions import BUILTIN, EncoderRegistry
from desktop.face.training import (
    StepReport,
    TrainConfig,
    dataset_from_folder,
    run_training,
)
from desktop.face.training.jobs import fine_tune_version

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


class CountingEngine:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.model_id = engine.model_id
        self.detect_calls = 0

    def detect(self, image):
        self.detect_calls += 1
        return self.engine.detect(image)

    def embed(self, chips):
        return self.engine.embed(chips)


@pytest.fixture(scope="module")
def engine():
    return EncoderRegistry().build_engine(device="cpu")


def test_fine_tune_real_encoder_writes_a_checkpoint(shared_data, engine):
    root = shared_data / "faces-dev" / "knn" / "train"
    counting = CountingEngine(engine)
    data = dataset_from_folder(root, counting)
    assert counting.detect_calls == 9
    assert data.num_identities == 4  # alex_lacamoire has one photo: left out, and listed
    assert any(s.source == "alex_lacamoire" for s in data.skipped)
    assert data.chips.shape[1:] == (150, 150, 3)
    again = dataset_from_folder(root, counting)  # from the chip cache: no detection
    assert counting.detect_calls == 9
    assert np.array_equal(again.chips, data.chips)

    registry = EncoderRegistry()
    # a wide margin so that some triplets are active and the weights really move
    config = TrainConfig(epochs=1, train="last-level", mining="all", margin=1.0, lr=1e-3,
                         batch_p=3, batch_k=2, steps_per_epoch=2, device="cpu")
    events = []
    run_training(fine_tune_version(data, "faces-dev-ft", config, registry), events.append)
    steps = [e for e in events if isinstance(e, StepReport)]
    assert len(steps) == 2 and steps[0].active_fraction > 0

    version = registry.get("faces-dev-ft")
    assert version.model_id.startswith("faces-dev-ft@")
    for name in ("weights.pt", "meta.json", "heldout.npz", "train_log.jsonl"):
        assert (version.path / name).is_file(), name
    meta = json.loads((version.path / "meta.json").read_text())
    assert meta["base"] == BUILTIN
    assert meta["data"]["identities"] == 4 and meta["data"]["images"] == 8
    assert meta["train"]["train"] == "last-level" and meta["train"]["margin"] == 1.0
    assert set(meta["metrics"]) >= {"baseline", "best", "final", "best_epoch"}
    assert meta["created"] and meta["device"].startswith("CPU")
    # the checkpoint loads into dlib's architecture and embeds chips
    state = torch.load(version.path / "weights.pt", weights_only=True)
    FaceEncoder().load_state_dict(state)
    emb = registry.embedder("faces-dev-ft", device="cpu").embed(data.chips[:2])
    assert emb.shape == (2, 128) and np.isfinite(emb).all()
    # the guard compares it with the active encoder on its held-out pairs, with numbers
    check = registry.check_activation("faces-dev-ft")
    assert "held-out pairs of faces-dev-ft" in check.reason
    assert check.candidate_metrics is not None and check.current_metrics is not None


def test_eval_pairs_reads_csv_and_lfw_lists_of_real_photos(shared_data, engine, tmp_path,
                                                           monkeypatch, capsys):
    monkeypatch.setattr(EncoderRegistry, "build_engine",
                        lambda self, name=None, device="auto", **kw: engine)
    train = shared_data / "faces-dev" / "knn" / "train"
    people = {"biden": ["biden.jpg", "biden2.jpg"], "obama": ["obama.jpg", "obama2.jpg"],
              "rose_leslie": ["img1.jpg", "img2.jpg"]}
    # LFW layout: <root>/<name>/<name>_<n:04d>.jpg, as links to the photos
    lfw = tmp_path / "lfw"
    for person, files in people.items():
        (lfw / person).mkdir(parents=True)
        for n, f in enumerate(files, start=1):
            os.symlink(train / person / f, lfw / person / f"{person}_{n:04d}.jpg")
    (tmp_path / "pairs.txt").write_text(
        "1\t3\nbiden\t1\t2\nobama\t1\t2\nrose_leslie\t1\t2\n"
        "biden\t1\tobama\t1\nobama\t2\trose_leslie\t1\nrose_leslie\t2\tbiden\t2\n")
    (tmp_path / "pairs.csv").write_text(
        "file_x,file_y,decision\n"
        "biden/biden.jpg,biden/biden2.jpg,yes\nobama/obama.jpg,obama/obama2.jpg,yes\n"
        "rose_leslie/img1.jpg,rose_leslie/img2.jpg,1\nbiden/biden.jpg,obama/obama.jpg,no\n"
        "obama/obama2.jpg,rose_leslie/img1.jpg,0\nrose_leslie/img2.jpg,biden/biden2.jpg,no\n")
    outs = []
    for lst, root in ((tmp_path / "pairs.txt", lfw), (tmp_path / "pairs.csv", train)):
        assert main(["eval-pairs", str(lst), "--root", str(root), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1]  # the same six pairs in two formats
    assert outs[0]["pairs"] == 6 and outs[0]["failed_images"] == []
    assert outs[0]["accuracy"] == 1.0 and outs[0]["roc_auc"] == 1.0  # dlib tells them apart


def test_a_photo_without_a_face_is_a_wrong_answer(shared_data, engine, tmp_path, monkeypatch,
                                                  capsys):
    monkeypatch.setattr(EncoderRegistry, "build_engine",
                        lambda self, name=None, device="auto", **kw: engine)
    from PIL import Image

    Image.new("RGB", (320, 240), (120, 160, 200)).save(tmp_path / "sky.png")
    biden = shared_data / "faces-dev" / "knn" / "train" / "biden"
    (tmp_path / "p.csv").write_text(f"{biden / 'biden.jpg'},{biden / 'biden2.jpg'},yes\n"
                                    f"{biden / 'biden.jpg'},sky.png,yes\n")
    assert main(["eval-pairs", str(tmp_path / "p.csv"), "--root", str(tmp_path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 0.5
    assert out["failed_images"] == ["sky.png"]
