"""Training a small encoder on procedurally drawn faces: it learns, and the loop behaves
(split by identity, refusals, freezing, cancel, reproducibility)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_helpers import TinyEncoder

from desktop.errors import Cancelled, FacestyleError
from desktop.face.evaluation import best_threshold
from desktop.face.training import (
    Augmentation,
    ChipDataset,
    EpochReport,
    NotEnoughData,
    StepReport,
    TrainConfig,
    augment,
    embed_chips,
    evaluate_on_pairs,
    heldout_pairs,
    run_training,
    select_trainable,
    split_for_training,
    train_encoder,
    triplet_loss,
)
from desktop.face.training.finetune import calibration_pairs, pair_distances
from desktop.face.training.synthetic import synthetic_faces
from desktop.tasks import CancelToken


@pytest.fixture(scope="module")
def faces() -> ChipDataset:
    return synthetic_faces(30, 5, size=32, seed=0)


def config(**kw) -> TrainConfig:
    base = dict(epochs=4, train="all", lr=3e-3, mining="all", batch_p=8, batch_k=4,
                heldout_fraction=0.3, tau=1.0, precision="fp32", device="cpu", patience=10)
    return TrainConfig(**{**base, **kw})


def mean_triplet_loss(model, data: ChipDataset, margin: float) -> float:
    """J / (number of valid triplets) over the whole set, without augmentation."""
    emb = torch.as_tensor(embed_chips(model, data.chips))
    _, stats = triplet_loss(emb, torch.as_tensor(data.labels), margin, "all")
    return stats.total / stats.valid


def test_small_encoder_learns_to_separate_unseen_identities(faces):
    cfg = config()
    train, held = split_for_training(faces, cfg)
    model = TinyEncoder()
    loss_before = mean_triplet_loss(model, train, cfg.margin)
    events = []
    result = run_training(train_encoder(model, train, held, cfg), events.append)
    steps = [e for e in events if isinstance(e, StepReport)]
    epochs = [e for e in events if isinstance(e, EpochReport)]
    assert [e.epoch for e in epochs] == list(range(cfg.epochs + 1))  # 0 = the start
    assert len(steps) == cfg.epochs * steps[0].steps_per_epoch
    assert [s.global_step for s in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].eta_seconds == 0 and steps[0].eta_seconds > 0
    assert all(0 <= s.active_fraction <= 1 and s.valid > 0 for s in steps)
    # the triplet loss J over the training set falls, and fewer triplets stay active
    assert mean_triplet_loss(model, train, cfg.margin) < 0.5 * loss_before
    assert np.mean(result.step_active[-3:]) < np.mean(result.step_active[:3])
    # held-out identities (never trained on) are separated better than at the start
    assert result.baseline.roc_auc < 0.8
    assert result.best.roc_auc > result.baseline.roc_auc + 0.1
    assert result.best.best_accuracy > result.baseline.best_accuracy + 0.05
    assert result.best_epoch >= 1 and result.improved
    # the model now holds the kept weights: scoring it again gives the same figures
    again = evaluate_on_pairs(model, held, cfg.tau)
    assert again.roc_auc == pytest.approx(result.best.roc_auc)
    assert result.calibration_scale is None  # normalised output: fc scaling cannot apply


def test_kept_model_is_rescaled_onto_the_starting_models_scale(faces):
    cfg = config(epochs=2)
    train, held = split_for_training(faces, cfg)
    model = TinyEncoder(normalize=False)
    result = run_training(train_encoder(model, train, held, cfg))
    assert result.best_epoch >= 1
    assert result.calibration_scale is not None and result.calibration_scale != 1.0
    # on the training pairs, the kept model's best threshold is now the starting model's
    calib = calibration_pairs(train, seed=cfg.seed)
    d = pair_distances(model, calib)
    threshold, _ = best_threshold(-d, calib.same)
    assert -threshold == pytest.approx(result.history[0].threshold, rel=1e-4)
    # the ranking is unchanged by the rescaling
    assert result.final.roc_auc == pytest.approx(result.best.roc_auc)
    assert result.final.tau == cfg.tau


def test_a_run_that_does_not_help_returns_the_start_weights_untouched(faces):
    cfg = config(epochs=1, steps_per_epoch=1, lr=1e-9)
    train, held = split_for_training(faces, cfg)
    model = TinyEncoder(normalize=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run_training(train_encoder(model, train, held, cfg))
    # a step of 1e-9 changes no ranking of pairs, so epoch 1 cannot beat epoch 0
    assert result.best_epoch == 0 and not result.improved
    assert result.calibration_scale is None
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_split_is_by_identity_and_pairs_are_balanced(faces):
    train, held = faces.split_by_identity(0.3, seed=4)
    assert not set(train.names) & set(held.names)
    assert train.num_identities + held.num_identities == faces.num_identities
    assert len(train) + len(held) == len(faces)
    pairs = heldout_pairs(held, train, seed=0)
    assert pairs.same.sum() == (~pairs.same).sum()
    a, b = pairs.pairs.T
    assert np.all(a != b)


def test_one_heldout_identity_borrows_training_images_for_negatives():
    ds = synthetic_faces(3, 3, size=16, seed=1)
    train, held = ds.split_by_identity(0.2)
    assert held.num_identities == 1 and train.num_identities == 2
    pairs = heldout_pairs(held, train)
    assert pairs.same.sum() == 3 and (~pairs.same).sum() == 3


@pytest.mark.parametrize("counts, people", [((4, 4), 2), ((4, 4, 1), 2), ((1, 1, 1, 1), 0)])
def test_too_little_data_is_refused_with_a_clear_message(counts, people):
    groups = {f"p{i}": [np.zeros((8, 8, 3), np.uint8)] * n for i, n in enumerate(counts)}
    ds = ChipDataset.from_identities(groups)
    with pytest.raises(NotEnoughData) as err:
        split_for_training(ds, config())
    assert f"at least 3 people with at least 2 face photos each; this data has {people}" \
        in err.value.message
    assert err.value.hint


def test_training_modes_free_only_their_parts():
    model = TinyEncoder()
    fc = {id(p) for p in model.fc.parameters()}
    level0 = {id(p) for p in model.level0.parameters()}
    assert {id(p) for p in select_trainable(model, "final")} == fc
    assert all(not p.requires_grad for p in model.stem.parameters())
    assert {id(p) for p in select_trainable(model, "last-level")} == fc | level0
    assert len(select_trainable(model, "all")) == len(list(model.parameters()))
    with pytest.raises(FacestyleError, match="no level0"):
        select_trainable(torch.nn.Sequential(torch.nn.Linear(2, 2)), "last-level")


def test_final_mode_changes_only_fc(faces):
    cfg = config(epochs=1, train="final", steps_per_epoch=3)
    train, held = split_for_training(faces, cfg)
    model = TinyEncoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_training(train_encoder(model, train, held, cfg))
    # whatever epoch was kept, the frozen parts are unchanged
    for key, value in model.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(value, before[key]), key


def test_cancel_stops_within_a_step_and_keeps_the_best_weights(faces):
    cfg = config(epochs=3)
    train, held = split_for_training(faces, cfg)
    model = TinyEncoder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    token = CancelToken()
    gen = train_encoder(model, train, held, cfg, cancel=token)
    seen = 0
    with pytest.raises(Cancelled):
        for event in gen:
            seen += 1
            if isinstance(event, StepReport) and event.step == 2:
                token.cancel()
    assert seen == 3  # epoch 0, step 1, step 2
    for key, value in model.state_dict().items():  # epoch 0 is still the best: restored
        assert torch.equal(value, before[key])


def test_same_seed_same_run(faces):
    cfg = config(epochs=1, steps_per_epoch=3)
    train, held = split_for_training(faces, cfg)
    runs = []
    for _ in range(2):
        result = run_training(train_encoder(TinyEncoder(seed=5), train, held, cfg))
        runs.append(result.step_losses)
    assert runs[0] == runs[1]


def test_augmentation_is_seeded_bounded_and_varied():
    x = torch.rand(8, 3, 32, 32) * 255
    aug = Augmentation()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = augment(x, aug, g1), augment(x, aug, g2)
    assert torch.equal(a, b)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255
    assert not torch.allclose(a, x)
    assert torch.equal(augment(x, Augmentation.off(), g1), x)
    flip_only = Augmentation(**{**Augmentation.off().to_dict(), "flip": 1.0})
    assert torch.equal(augment(x, flip_only, g1), x.flip(-1))


def test_bad_settings_are_refused():
    with pytest.raises(FacestyleError, match="margin"):
        TrainConfig(margin=0).validate()
    with pytest.raises(FacestyleError, match="mining"):
        TrainConfig(mining="hardest").validate()
    cfg = TrainConfig(epochs=3, mining="batch-hard")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_gallery_people_with_two_templates_become_identities():
    from desktop.jobs import dataset_from_gallery
    from desktop.store import Gallery, NewTemplate

    faces = synthetic_faces(4, 3, 150, seed=2)
    with Gallery() as gallery:
        for k in range(len(faces.names)):
            own = faces.chips[faces.labels == k][: 1 if k == 3 else 3]
            gallery.enrol(f"person {k}", [NewTemplate(c, np.zeros(128, np.float32),
                                                      "some-model") for c in own])
        data = dataset_from_gallery(gallery)
    assert data.names == ["person 0", "person 1", "person 2"]
    assert data.counts() == {"person 0": 3, "person 1": 3, "person 2": 3}
    assert [s.source for s in data.skipped] == ["person 3"]
    # each chip comes back (through its JPEG) closest to the chip it was made from
    for chip, original in zip(data.chips, faces.chips[faces.labels < 3], strict=True):
        errors = np.abs(faces.chips.astype(int) - chip.astype(int)).mean(axis=(1, 2, 3))
        assert np.argmin(errors) == np.flatnonzero((faces.chips == original).all(
            axis=(1, 2, 3)))[0]
        assert errors.min() < 8
    assert data.origin.startswith("gallery:")


def test_people_who_share_a_name_stay_separate_identities():
    from desktop.jobs import dataset_from_gallery
    from desktop.store import Gallery, NewTemplate

    faces = synthetic_faces(3, 2, 150, seed=3)
    with Gallery() as gallery:
        for k, name in enumerate(["Sam", "Sam", "Kim"]):
            own = faces.chips[faces.labels == k]
            gallery.enrol(name, [NewTemplate(c, np.zeros(128, np.float32), "m") for c in own],
                          allow_duplicate_name=True)
        data = dataset_from_gallery(gallery)
    assert len(data.names) == 3 and "Kim" in data.names
    assert sorted(data.counts().values()) == [2, 2, 2]
