"""Encoder versions: saving a fine-tune with metadata, the activation guard, rollback."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from training_helpers import TinyEncoder

from desktop.errors import FacestyleError, ModelFileError
from desktop.face.encoder_versions import BUILTIN, ActivationRefused, EncoderRegistry
from desktop.face.training import NotEnoughData, TrainConfig, run_training
from desktop.face.training.jobs import fine_tune_version
from desktop.face.training.synthetic import synthetic_faces
from desktop.face.verifier import VerificationHead


def registry(root) -> EncoderRegistry:
    # the "built-in" of these tests is an untrained tiny encoder with a fixed seed
    return EncoderRegistry(root, pretrained=lambda: TinyEncoder(128, seed=0, normalize=False),
                           architecture=lambda: TinyEncoder(128, seed=None, normalize=False))


CONFIG = TrainConfig(epochs=3, train="all", lr=3e-3, mining="all", heldout_fraction=0.3,
                     precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A registry holding version 'good', fine-tuned from the built-in."""
    root = tmp_path_factory.mktemp("encoders")
    reg = registry(root)
    data = synthetic_faces(30, 5, size=32, seed=0)
    outcome = run_training(fine_tune_version(data, "good", CONFIG, reg))
    return root, outcome


def test_fine_tune_writes_a_checkpoint_with_metadata(trained):
    root, outcome = trained
    reg = registry(root)
    version = reg.get("good")
    assert outcome.version.name == "good" and outcome.result.improved
    assert re.fullmatch(r"good@[0-9a-f]{8}", version.model_id)
    meta = version.meta
    assert meta["base"] == BUILTIN and meta["base_model_id"] == BUILTIN
    assert meta["data"]["identities"] == 30 and meta["data"]["images"] == 150
    assert meta["train"]["mining"] == "all" and meta["train"]["epochs"] == 3
    assert meta["metrics"]["best_epoch"] == outcome.result.best_epoch
    assert meta["metrics"]["final"]["roc_auc"] > meta["metrics"]["baseline"]["roc_auc"]
    assert meta["created"].endswith("+00:00")
    lines = (version.path / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [0, 1, 2, 3]
    assert (version.path / "heldout.npz").is_file()
    # the weights load back into a fresh module and give the same embeddings
    x = torch.rand(4, 3, 32, 32) * 255
    loaded = reg.load("good")
    torch.testing.assert_close(loaded(x), outcome_model_output(reg, x))
    assert [v.name for v in reg.list()] == [BUILTIN, "good"]


def outcome_model_output(reg: EncoderRegistry, x: torch.Tensor) -> torch.Tensor:
    model = TinyEncoder(128, seed=None, normalize=False)
    model.load_state_dict(torch.load(reg.root / "good" / "weights.pt", weights_only=True))
    return model.eval()(x)


def test_guard_allows_a_better_model_and_refuses_a_worse_one(trained, tmp_path):
    root, _ = trained
    reg = registry(root)
    assert reg.active().name == BUILTIN
    check = reg.activate("good")
    assert check.allowed and reg.active().name == "good"
    assert check.candidate_metrics.roc_auc > check.current_metrics.roc_auc

    # a worse candidate: random weights, saved with the same held-out pairs
    heldout = reg.heldout(reg.get("good"))
    reg.save("worse", TinyEncoder(128, seed=123, normalize=False), base="good", heldout=heldout,
             metrics={}, data={}, train={})
    with pytest.raises(ActivationRefused) as err:
        reg.activate("worse")
    message = err.value.message
    assert "Not activating worse" in message and "worse than the active" in message
    assert re.search(r"worse: accuracy 0\.\d{4} at tau 0\.36, ROC AUC 0\.\d{4}", message)
    assert re.search(r"active good: accuracy 0\.\d{4} at tau 0\.36, ROC AUC", message)
    assert err.value.check.candidate_metrics.score_key() < \
        err.value.check.current_metrics.score_key()
    assert reg.active().name == "good"  # unchanged

    # the built-in is judged on the active version's held-out pairs, and refused too
    with pytest.raises(ActivationRefused):
        reg.activate(BUILTIN)

    # rollback needs no guard: it undoes the last activation
    assert reg.previous().name == BUILTIN
    assert reg.rollback().name == BUILTIN
    assert reg.active_model_id() == BUILTIN
    with pytest.raises(FacestyleError, match="no earlier encoder"):
        reg.rollback()
    reg.delete("worse")
    reg.activate("good")
    assert reg.active().name == "good"


def test_names_and_overwrites(trained):
    root, _ = trained
    reg = registry(root)
    heldout = reg.heldout(reg.get("good"))
    for bad in ("", "../x", "a b", BUILTIN, "-x"):
        with pytest.raises(FacestyleError):
            reg.save(bad, TinyEncoder(), base=BUILTIN, heldout=heldout, metrics={}, data={},
                     train={})
    with pytest.raises(FacestyleError, match="already exists"):
        reg.save("good", TinyEncoder(), base=BUILTIN, heldout=heldout, metrics={}, data={},
                 train={})
    with pytest.raises(FacestyleError, match="already exists"):
        next(fine_tune_version(synthetic_faces(4, 3, 16), "good", CONFIG, reg))
    with pytest.raises(FacestyleError, match="no encoder version named 'nope'"):
        reg.get("nope")


def test_damaged_files_give_clear_errors(tmp_path):
    reg = registry(tmp_path)
    heldout_data = synthetic_faces(3, 2, 16)
    from desktop.face.training import heldout_pairs

    pairs = heldout_pairs(heldout_data)
    reg.save("v1", TinyEncoder(), base=BUILTIN, heldout=pairs, metrics={}, data={}, train={})
    (tmp_path / "v1" / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        reg.load("v1")
    (tmp_path / "v1" / "meta.json").write_text("{broken")
    with pytest.raises(ModelFileError, match="damaged"):
        reg.get("v1")
    assert [v.name for v in reg.list()] == [BUILTIN]  # listed without the damaged one
    (tmp_path / "state.json").write_text("{not json")
    assert reg.active().name == BUILTIN  # an unreadable state falls back to the built-in


def test_refuses_to_train_on_too_few_people(tmp_path):
    reg = registry(tmp_path)
    data = synthetic_faces(2, 5, 16)
    with pytest.raises(NotEnoughData, match="at least 3 people"):
        next(fine_tune_version(data, "v", CONFIG, reg))
    assert not (tmp_path / "v").exists()


def test_decision_rule_is_remembered(tmp_path):
    reg = registry(tmp_path)
    assert reg.rule() == "threshold"
    with pytest.raises(FacestyleError, match="No verification head"):
        reg.set_rule("verifier")
    VerificationHead(np.full(16, -5.0), 1.0, "abs", BUILTIN).save()
    reg.set_rule("verifier")
    assert registry(tmp_path).rule() == "verifier"
    with pytest.raises(FacestyleError):
        reg.set_rule("coin-toss")
    rule = reg.decision_rule()
    assert rule.name == "verifier-abs"
    reg.set_rule("threshold")
    assert reg.decision_rule(0.3).accept(0.29, np.zeros(2), np.zeros(2)) == (True, 0.3 - 0.29)


def test_switching_re_embeds_the_gallery_and_rollback_does_too(trained):
    from desktop.jobs import switch_encoder
    from desktop.store import Gallery, NewTemplate

    root, _ = trained
    reg = registry(root)
    gallery = Gallery()
    chips = synthetic_faces(3, 2, 150, seed=3)
    for name in chips.names:
        own = chips.chips[chips.labels == chips.names.index(name)]
        gallery.enrol(name, [NewTemplate(c, np.zeros(128, np.float32), BUILTIN) for c in own])
    good = reg.get("good")
    seen = []
    outcome = switch_encoder(reg, "good", gallery, progress=lambda f, m="": seen.append(f))
    assert outcome.version.name == "good" and outcome.check.allowed
    assert outcome.reembed.done == 6 and not outcome.reembed.failed
    assert gallery.count_stale(good.model_id) == 0
    assert gallery.model_counts() == {good.model_id: 6}
    # each template now holds the new encoder's descriptor of its own chip
    for template in gallery.templates(with_chips=True):
        from desktop.store.chips import decode_chip

        expected = reg.embedder("good", device="cpu").embed(decode_chip(template.chip_jpeg))
        assert np.allclose(template.embedding, expected[0], atol=1e-5)
    assert seen[-1] == 1.0
    back = switch_encoder(reg, None, gallery)
    assert back.version.name == BUILTIN and back.check is None
    assert gallery.model_counts() == {BUILTIN: 6}
