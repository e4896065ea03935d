"""The 5-point landmark predictor: file parsing, the cascade, the cache, parity with dlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop.face.dlib_format import DlibFormatError, encode_float, encode_int
from desktop.face.landmarks import ShapePredictor
from desktop.model_files import FACE_LANDMARKS, locate


# -- a small synthetic predictor, written in dlib's format ------------------------------
def _matrix(values) -> bytes:
    values = list(values)
    return encode_int(-len(values)) + encode_int(-1) + b"".join(encode_float(v) for v in values)


def _synthetic_model(rng: np.random.Generator, cascades=3, trees=4, depth=2, pixels=12):
    """Random but well-formed predictor parts and their dlib serialisation."""
    parts = 5
    initial = rng.uniform(0.2, 0.8, (parts, 2)).astype(np.float32)
    splits = depth and 2**depth - 1
    model = {
        "initial": initial,
        "idx1": rng.integers(0, pixels, (cascades, trees, splits)),
        "idx2": rng.integers(0, pixels, (cascades, trees, splits)),
        "thresh": rng.uniform(-40, 40, (cascades, trees, splits)).astype(np.float32),
        "leaves": rng.normal(0, 0.01, (cascades, trees, splits + 1, parts, 2)).astype(np.float32),
        "anchors": rng.integers(0, parts, (cascades, pixels)),
        "deltas": rng.uniform(-0.3, 0.3, (cascades, pixels, 2)).astype(np.float32),
    }
    out = [encode_int(1), _matrix(initial.ravel())]
    out.append(encode_int(cascades))
    for c in range(cascades):
        out.append(encode_int(trees))
        for t in range(trees):
            out.append(encode_int(splits))
            for s in range(splits):
                out += [encode_int(int(model["idx1"][c, t, s])),
                        encode_int(int(model["idx2"][c, t, s])),
                        encode_float(float(model["thresh"][c, t, s]))]
            out.append(encode_int(splits + 1))
            out += [_matrix(leaf.ravel()) for leaf in model["leaves"][c, t]]
    out.append(encode_int(cascades))
    for c in range(cascades):
        out.append(encode_int(pixels))
        out += [encode_int(int(a)) for a in model["anchors"][c]]
    out.append(encode_int(cascades))
    for c in range(cascades):
        out.append(encode_int(pixels))
        for dx, dy in model["deltas"][c]:
            out += [encode_float(float(dx)), encode_float(float(dy))]
    return model, b"".join(out)


def _reference_predict(model: dict, grey: np.ndarray, box) -> np.ndarray:
    """dlib's shape_predictor::operator() written out one pixel and one tree at a time.

    The similarity is found with an SVD (Umeyama, as dlib does), independently of the
    closed form the vectorised code uses.
    """
    x, y, w, h = box
    left, top, right, bottom = x, y, x + w - 1, y + h - 1
    s0 = model["initial"]
    shape = s0.copy()
    for c in range(model["idx1"].shape[0]):
        mu_s, mu_d = s0.mean(0, dtype=np.float64), shape.mean(0, dtype=np.float64)
        src, dst = s0 - mu_s, shape - mu_d
        cov = dst.T @ src / len(s0)
        u, d, vt = np.linalg.svd(cov)
        flip = np.diag([1.0, -1.0 if np.linalg.det(cov) < 0 else 1.0])
        scale = np.trace(np.diag(d) @ flip) / (np.sum(src**2) / len(s0))
        m = (scale * u @ flip @ vt).astype(np.float32)
        values = []
        for anchor, delta in zip(model["anchors"][c], model["deltas"][c], strict=True):
            p = m @ delta + shape[anchor]
            px = int(np.floor(left + float(p[0]) * (right - left) + 0.5))
            py = int(np.floor(top + float(p[1]) * (bottom - top) + 0.5))
            inside = 0 <= px < grey.shape[1] and 0 <= py < grey.shape[0]
            values.append(np.float32(grey[py, px]) if inside else np.float32(0))
        for t in range(model["idx1"].shape[1]):
            node, splits = 0, model["idx1"].shape[2]
            while node < splits:
                i1, i2 = model["idx1"][c, t, node], model["idx2"][c, t, node]
                left_branch = values[i1] - values[i2] > model["thresh"][c, t, node]
                node = 2 * node + 1 if left_branch else 2 * node + 2
            shape = shape + model["leaves"][c, t, node - splits]
    return np.stack([left + shape[:, 0] * (right - left), top + shape[:, 1] * (bottom - top)], 1)


@pytest.fixture
def synthetic(tmp_path: Path):
    rng = np.random.default_rng(7)
    model, blob = _synthetic_model(rng)
    path = tmp_path / "tiny_predictor.dat"
    path.write_bytes(blob)
    return model, path


def _smooth_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 2.5)


def test_parses_synthetic_file(synthetic) -> None:
    model, path = synthetic
    sp = ShapePredictor.load(path)
    assert (sp.num_cascades, sp.num_trees, sp.depth, sp.num_parts) == (3, 4, 2, 5)
    np.testing.assert_array_equal(sp.split_idx1, model["idx1"])
    np.testing.assert_array_equal(sp.anchor_idx, model["anchors"])
    np.testing.assert_allclose(sp.initial_shape, model["initial"], rtol=1e-6)
    np.testing.assert_allclose(sp.leaf_values, model["leaves"], rtol=1e-6)
    np.testing.assert_allclose(sp.deltas, model["deltas"], rtol=1e-6)


def test_vectorised_cascade_matches_one_tree_at_a_time(synthetic) -> None:
    model, path = synthetic
    sp = ShapePredictor.load(path, use_cache=False)
    rng = np.random.default_rng(3)
    image = _smooth_noise(rng, 90, 120)
    grey = image.astype(np.uint16).sum(-1) // 3  # dlib's (R + G + B) / 3
    boxes = [(10, 5, 60, 60), (50, 30, 80, 70), (-20, -10, 50, 50), (100, 80, 40, 40)]
    ours = sp.predict(image, boxes, round_to_pixels=False)
    for k, box in enumerate(boxes):
        np.testing.assert_allclose(ours[k], _reference_predict(model, grey, box), atol=1e-3)
    # A grey image gives the same as the RGB image whose grey it is.
    grey_u8 = grey.astype(np.uint8)
    grey_points = sp.predict(grey_u8, boxes, round_to_pixels=False)
    np.testing.assert_allclose(grey_points, ours, atol=1e-6)


def test_predict_shapes_and_input_checks(synthetic) -> None:
    from desktop.errors import ImageError

    _, path = synthetic
    sp = ShapePredictor.load(path)
    image = np.zeros((40, 50, 3), np.uint8)
    assert sp.predict(image, []).shape == (0, 5, 2)
    one = sp.predict(image, (5, 5, 20, 20), round_to_pixels=False)
    assert one.shape == (1, 5, 2) and one.dtype == np.float32
    rounded = sp.predict(image, [(5, 5, 20, 20)])  # dlib's whole pixels by default
    np.testing.assert_array_equal(rounded, np.floor(one + 0.5))
    with pytest.raises(ImageError):
        sp.predict(image.astype(np.float32), [(5, 5, 20, 20)])
    with pytest.raises(ImageError):
        sp.predict(np.zeros((40, 50, 4), np.uint8), [(5, 5, 20, 20)])
    with pytest.raises(ValueError):
        sp.predict(image, [(5, 5, 20)])


@pytest.mark.parametrize("cut", [1, 40, 400, -3])
def test_truncated_file_names_the_file(synthetic, tmp_path: Path, cut: int) -> None:
    _, path = synthetic
    bad = tmp_path / "cut.dat"
    bad.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(DlibFormatError) as info:
        ShapePredictor.load(bad)
    assert "cut.dat" in info.value.message
    assert "face_recognition_models" in (info.value.hint or "")


def test_wrong_version_and_trailing_bytes(synthetic, tmp_path: Path) -> None:
    _, path = synthetic
    data = path.read_bytes()
    other = tmp_path / "v2.dat"
    other.write_bytes(encode_int(2) + data[len(encode_int(1)):])
    with pytest.raises(DlibFormatError, match="version"):
        ShapePredictor.load(other)
    other.write_bytes(data + b"\x01\x00")
    with pytest.raises(DlibFormatError, match="unexpected bytes"):
        ShapePredictor.load(other)


def test_cache_is_written_reused_and_rebuilt(synthetic, facestyle_home: Path) -> None:
    _, path = synthetic
    first = ShapePredictor.load(path)
    cached = list((facestyle_home / "cache").glob("shape_predictor-*.npz"))
    assert len(cached) == 1
    again = ShapePredictor.load(path)
    np.testing.assert_array_equal(again.leaf_values, first.leaf_values)
    cached[0].write_bytes(b"not an npz")  # a damaged cache is ignored and rewritten
    rebuilt = ShapePredictor.load(path)
    np.testing.assert_array_equal(rebuilt.split_thresh, first.split_thresh)
    with np.load(cached[0]) as npz:
        assert npz["leaf_values"].shape == first.leaf_values.shape
        arrays = dict(npz)
    # A readable cache whose arrays do not fit together is not trusted either.
    arrays["anchor_idx"] = arrays["anchor_idx"] + 100
    np.savez(cached[0], **arrays)
    assert first.is_consistent()
    again = ShapePredictor.load(path)
    np.testing.assert_array_equal(again.anchor_idx, first.anchor_idx)


# -- the real model ------------------------------------------------------------------
def _real_model_path() -> Path:
    info = locate(FACE_LANDMARKS)
    if info.path is None:
        pytest.skip("face_recognition_models is not installed")
    return info.path


@pytest.fixture(scope="module")
def real_predictor() -> ShapePredictor:
    """Parsed once for the module (each test has a fresh, empty cache folder)."""
    return ShapePredictor.load(_real_model_path(), use_cache=False)


def test_real_model_structure(real_predictor: ShapePredictor) -> None:
    sp = real_predictor
    assert (sp.num_cascades, sp.num_trees, sp.depth, sp.num_parts) == (15, 500, 4, 5)
    assert sp.deltas.shape == (15, 800, 2)
    # The mean shape: right eye (image left) at x ~ 0.6-0.8, left eye at x ~ 0.2-0.4,
    # both eyes above the nose.
    s0 = sp.initial_shape
    assert s0[0, 0] > s0[1, 0] > s0[4, 0] > s0[3, 0] > s0[2, 0]
    assert s0[:4, 1].max() < s0[4, 1]


def test_parity_with_dlib_on_random_images(real_predictor: ShapePredictor) -> None:
    dlib = pytest.importorskip("dlib")
    sp = real_predictor
    reference = dlib.shape_predictor(str(_real_model_path()))
    rng = np.random.default_rng(11)
    errors = []
    for trial in range(6):
        image = _smooth_noise(rng, 240, 320)
        if trial % 2:
            image = np.ascontiguousarray(image[..., 1])
        boxes = [(int(rng.integers(-60, 300)), int(rng.integers(-60, 220)), s, s + 3)
                 for s in rng.integers(20, 200, 4)]
        ours = sp.predict(image, boxes)
        for k, (x, y, w, h) in enumerate(boxes):
            shape = reference(image, dlib.rectangle(x, y, x + w - 1, y + h - 1))
            theirs = np.array([[p.x, p.y] for p in shape.parts()])
            errors.append(np.linalg.norm(ours[k] - theirs, axis=1))
    errors = np.concatenate(errors)
    assert errors.mean() < 0.05, errors.mean()


@pytest.mark.shared_data
def test_parity_with_dlib_on_faces_dev(shared_data: Path, real_predictor) -> None:
    pytest.importorskip("dlib")
    from faces_dev_reference import reference_faces

    faces = reference_faces(shared_data)
    assert len(faces) >= 20  # faces-dev has ~30 faces dlib's HOG detector finds
    float_err, rounded_err = [], []
    for face in faces:
        ours = real_predictor.predict(face.image, [face.box], round_to_pixels=False)[0]
        float_err.append(np.linalg.norm(ours - face.landmarks, axis=1))
        rounded_err.append(np.linalg.norm(np.floor(ours + 0.5) - face.landmarks, axis=1))
    float_err, rounded_err = np.concatenate(float_err), np.concatenate(rounded_err)
    # dlib rounds to whole pixels: unrounded ours are within half a pixel per axis...
    assert float_err.mean() <= 1.5 and float_err.max() <= 0.71
    # ...and rounded ours are dlib's points.
    assert rounded_err.mean() < 0.05, rounded_err.mean()
