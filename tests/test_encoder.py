"""The torch port of dlib's face encoder: structure, and parity with dlib itself."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from desktop.device import cpu_has_native_bf16
from desktop.face.encoder import (
    Affine,
    ChipEmbedder,
    FaceEncoder,
    add_prev,
    fold_affines,
)
from desktop.face.types import DEFAULT_TAU, squared_distance


@pytest.fixture(scope="module")
def pretrained() -> FaceEncoder:
    return FaceEncoder.from_dlib(device="cpu", use_cache=False)


@pytest.fixture(scope="module")
def dlib_encoder():
    dlib = pytest.importorskip("dlib", reason="dlib-bin (test extra) is the reference")
    from desktop.model_files import FACE_ENCODER, require

    return dlib.face_recognition_model_v1(str(require(FACE_ENCODER)))


def synthetic_chips(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 150x150 RGB images: not faces, but any chip must give dlib's output."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 10, 10, 3)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(small).permute(0, 3, 1, 2),
                                          size=(150, 150), mode="bicubic", align_corners=False)
    noise = rng.normal(0, 8, (n, 3, 150, 150))
    return np.clip(big.numpy() + noise, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def test_add_prev_zero_pads_channels_rows_and_columns():
    a = torch.ones(1, 4, 3, 3)
    b = torch.full((1, 2, 4, 4), 2.0)
    out = add_prev(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert out[0, 0, 0, 0] == 3 and out[0, 3, 0, 0] == 1  # channel 3 only from a
    assert out[0, 0, 3, 3] == 2 and out[0, 3, 3, 3] == 0  # row/col 3 only from b
    assert torch.equal(add_prev(a, a), a + a)


def test_random_encoder_has_the_named_levels_and_output_shape():
    torch.manual_seed(0)
    enc = FaceEncoder().eval()
    names = {name for name, _ in enc.named_children()}
    assert {"stem", "level4", "level3", "level2", "level1", "level0", "fc"} <= names
    assert [len(getattr(enc, f"level{i}")) for i in (4, 3, 2, 1, 0)] == [3, 4, 3, 3, 1]
    assert enc.fc.bias is None and enc.fc.out_features == 128
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 29
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        assert enc(x).shape == (2, 128)
        assert enc.features(x).shape == (2, 256)
    # the training helper freezes by these names
    params = dict(enc.named_parameters())
    assert any(k.startswith("level0.") for k in params) and "fc.weight" in params


def test_preprocessing_is_dlibs():
    enc = FaceEncoder()
    x = torch.full((1, 3, 1, 1), 200.0)
    want = (200.0 - torch.tensor([122.782, 117.001, 104.298])) / 256
    torch.testing.assert_close(enc.preprocess(x).view(3), want)


def test_folding_affines_keeps_the_function():
    torch.manual_seed(1)
    enc = FaceEncoder().eval()
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, Affine):
                m.gamma.uniform_(0.5, 1.5)
                m.beta.uniform_(-0.2, 0.2)
        x = torch.rand(2, 3, 150, 150) * 255
        folded = fold_affines(enc)
        assert not any(isinstance(m, Affine) for m in folded.modules())
        assert any(isinstance(m, Affine) for m in enc.modules())  # original untouched
        torch.testing.assert_close(folded(x), enc(x), rtol=1e-4, atol=1e-5)


def test_parity_with_dlib_on_synthetic_chips(pretrained, dlib_encoder):
    chips = synthetic_chips(4)
    ours = ChipEmbedder(pretrained)(chips)
    theirs = np.array([dlib_encoder.compute_face_descriptor(c) for c in chips])
    assert ours.shape == (4, 128) and ours.dtype == np.float32
    err = np.linalg.norm(ours - theirs, axis=1)
    assert err.max() < 1e-4, err
    # and the unfused module agrees too
    with torch.no_grad():
        x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
        plain = pretrained(x).numpy()
    assert np.linalg.norm(plain - theirs, axis=1).max() < 1e-4


def test_embedder_batches_and_single_chips_agree(pretrained):
    chips = synthetic_chips(5, seed=3)
    emb = ChipEmbedder(pretrained, batch_size=2)
    all_at_once = emb(chips)
    one = emb(chips[3])
    np.testing.assert_allclose(one[0], all_at_once[3], atol=1e-5)
    assert emb(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match="150"):
        emb(np.zeros((1, 120, 120, 3), np.uint8))


def test_fused_cpu_path_computes_the_encoder(pretrained):
    """The oneDNN path (packed kernels, fused ReLU and residual sums, one thread for small
    batches) is the same function as the module, at batch 1 and in a batch."""
    chips = synthetic_chips(3, seed=7)
    emb = ChipEmbedder(pretrained)
    if emb._fused is None:
        pytest.skip("this torch has no oneDNN fused convolution")
    with torch.no_grad():
        plain = pretrained(torch.from_numpy(chips).permute(0, 3, 1, 2).float()).numpy()
    threads = torch.get_num_threads()
    single = emb(chips[:1])
    assert torch.get_num_threads() == threads  # the one-thread batch gave the threads back
    np.testing.assert_allclose(single[0], plain[0], atol=1e-5)
    np.testing.assert_allclose(emb(chips), plain, atol=1e-5)


def test_embedder_is_safe_to_share_between_threads(pretrained):
    chips = synthetic_chips(2, seed=4)
    emb = ChipEmbedder(pretrained)
    want = emb(chips)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(emb(chips))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results:
        np.testing.assert_allclose(r, want, atol=1e-5)


def test_from_dlib_uses_the_cache_on_the_second_load(monkeypatch):
    from desktop.face import dlib_nets

    FaceEncoder.from_dlib(device="cpu")
    monkeypatch.setattr(dlib_nets, "parse_network",
                        lambda *a, **k: pytest.fail("parsed again instead of using the cache"))
    enc = FaceEncoder.from_dlib(device="cpu")
    assert float(enc.fc.weight.detach().abs().sum()) > 0


# -- on dlib's own chips of the faces-dev photos --------------------------------------------
@pytest.fixture(scope="module")
def faces_dev_chips(shared_data, dlib_encoder):
    """dlib's chips (HOG boxes, 5 landmarks, get_face_chip 150/0.25) of faces-dev photos,
    each with its person (from the file name) and dlib's own descriptor."""
    import dlib

    from desktop.imageio import downscale_to, load_rgb
    from desktop.model_files import FACE_LANDMARKS, require

    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(require(FACE_LANDMARKS)))
    root = shared_data / "faces-dev" / "knn"
    chips, people, refs = [], [], []
    paths = sorted((root / "train").glob("*/*")) + sorted((root / "test").glob("*"))
    for path in paths:
        image, _ = downscale_to(load_rgb(path), 800)
        for rect in hog(image, 1):
            chip = dlib.get_face_chip(image, sp(image, rect), 150, 0.25)
            chips.append(chip)
            people.append(path.parent.name if path.parent.parent.name == "train" else path.stem)
            refs.append(np.array(dlib_encoder.compute_face_descriptor(chip), np.float32))
    assert len(chips) >= 12
    return np.stack(chips), people, np.stack(refs)


@pytest.mark.shared_data
def test_parity_with_dlib_on_its_own_chips(pretrained, faces_dev_chips):
    chips, _, refs = faces_dev_chips
    ours = ChipEmbedder(pretrained)(chips)
    err = np.linalg.norm(ours - refs, axis=1)
    assert err.max() < 1e-4, err
    assert 1.2 < np.linalg.norm(ours, axis=1).mean() < 1.7  # not unit vectors


@pytest.mark.shared_data
def test_bf16_keeps_every_same_different_decision(pretrained, faces_dev_chips):
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16; the bf16 path is not offered on it")
    chips, _, refs = faces_dev_chips
    fast = ChipEmbedder(pretrained, precision="bf16")(chips)
    deviation = np.linalg.norm(fast - refs, axis=1)
    print(f"bf16 deviation from dlib: max {deviation.max():.4f} L2, mean {deviation.mean():.4f}")
    assert deviation.max() < 0.05
    i, j = np.triu_indices(len(chips), 1)
    same_ref = squared_distance(refs[i], refs[j]) < DEFAULT_TAU
    same_fast = squared_distance(fast[i], fast[j]) < DEFAULT_TAU
    assert np.array_equal(same_ref, same_fast)
