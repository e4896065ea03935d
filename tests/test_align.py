"""Aligned face chips: dlib's template, chip geometry, pyramid, warp, and parity with dlib."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.errors import ImageError
from desktop.face.align import (
    TEMPLATE_5,
    extract_chips,
    face_chip_transforms,
    get_face_chip_details,
    pyramid_down2,
    similarity_transform,
    template_points,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def _face_landmarks(scale: float, angle: float, centre) -> np.ndarray:
    """Landmarks of a face whose aligned chip is exactly the template, for a known pose."""
    chip_pts = template_points(150, 0.25) - 75.0
    return _apply(_similarity(scale, angle, *centre), chip_pts)


def test_template_with_padding() -> None:
    pts = template_points(150, 0.25)
    np.testing.assert_allclose(pts, (0.25 + TEMPLATE_5) / 1.5 * 150)
    # Eyes level and symmetric about the nose, nose below the eyes.
    assert abs(pts[0, 1] - pts[2, 1]) < 0.1 and pts[4, 1] > pts[:4, 1].max() + 35
    assert abs((pts[0, 0] + pts[2, 0]) / 2 - pts[4, 0]) < 0.5


@pytest.mark.parametrize("scale,angle", [(1.0, 0.0), (2.5, 0.4), (0.4, -1.2), (7.0, 3.0)])
def test_similarity_transform_is_recovered(scale: float, angle: float) -> None:
    rng = np.random.default_rng(0)
    truth = _similarity(scale, angle, 13.5, -40.25)
    src = rng.uniform(-50, 50, (5, 2))
    np.testing.assert_allclose(similarity_transform(src, _apply(truth, src)), truth, atol=1e-9)


def test_similarity_is_least_squares_with_noise() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    dst = _apply(_similarity(1.3, 0.2, 5, 6), src) + rng.normal(0, 1, (5, 2))
    best = similarity_transform(src, dst)
    best_err = np.sum((_apply(best, src) - dst) ** 2)
    for _ in range(50):  # no nearby similarity fits better
        a, b, tx, ty = best[0, 0], best[1, 0], best[0, 2], best[1, 2]
        da, db, dtx, dty = rng.normal(0, [1e-3, 1e-3, 1e-2, 1e-2])
        other = np.array([[a + da, -(b + db), tx + dtx], [b + db, a + da, ty + dty]])
        assert np.sum((_apply(other, src) - dst) ** 2) >= best_err


@pytest.mark.parametrize("scale,angle", [(1.0, 0.0), (0.8, 0.3), (3.2, -0.5)])
def test_chip_details_put_landmarks_on_the_template(scale: float, angle: float) -> None:
    landmarks = _face_landmarks(scale, angle, (300.0, 200.0))
    details = get_face_chip_details(landmarks)
    assert details.rows == details.cols == 150
    assert details.angle == pytest.approx(angle, abs=1e-12)
    # The rectangle is 150 * scale pixels wide (dlib's inclusive corners: width - 1 apart).
    left, top, right, bottom = details.rect
    assert right - left + 1 == pytest.approx(150 * scale)
    assert ((left + right) / 2, (top + bottom) / 2) == pytest.approx((300.0, 200.0))
    # dlib spreads the chip's pixels between the rectangle's corners (size - 1 steps over
    # size * scale - 1 image pixels), so the chip is the similarity up to a pixel.
    to_chip = details.image_to_chip()
    np.testing.assert_allclose(_apply(to_chip, landmarks), template_points(), atol=1.0)
    np.testing.assert_allclose(_apply(details.chip_to_image(), template_points() - 0.5),
                               landmarks, atol=scale * 0.5 + 1e-9)
    batch = face_chip_transforms(np.stack([landmarks, landmarks + 10]))
    assert batch.shape == (2, 2, 3)
    np.testing.assert_allclose(batch[0], to_chip)


def _dotted_image(landmarks: np.ndarray, shape=(480, 640)) -> np.ndarray:
    """A grey image with a distinct saturated colour disc at each landmark."""
    image = np.full((*shape, 3), 128, np.uint8)
    radius = max(2, int(0.04 * np.linalg.norm(landmarks[0] - landmarks[2])))
    for k, (x, y) in enumerate(landmarks):
        cv2.circle(image, (round(x), round(y)), radius, _COLOURS[k], -1, lineType=cv2.LINE_AA)
    return image


_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]


@pytest.mark.parametrize("scale,angle", [(1.0, 0.0), (0.9, 0.35), (2.6, -0.25), (5.0, 0.1)])
def test_chip_puts_the_eyes_and_nose_where_the_template_says(scale: float, angle: float) -> None:
    """A synthetic 'face' of coloured dots at known landmarks lands on the template: this
    checks the warp's direction, rotation sense and the pyramid's geometry (scales above 2
    go through one or more pyramid levels)."""
    landmarks = _face_landmarks(scale, angle, (330.0, 250.0))
    image = _dotted_image(landmarks, shape=(1000, 700) if scale > 3 else (480, 640))
    chip = extract_chips(image, landmarks)[0].astype(int)
    for k, colour in enumerate(_COLOURS):
        match = np.all(np.abs(chip - colour) < 60, axis=-1)
        assert match.sum() > 3, f"dot {k} missing from the chip"
        ys, xs = np.nonzero(match)
        np.testing.assert_allclose([xs.mean(), ys.mean()], template_points()[k], atol=1.5)


def test_pyramid_down2_matches_its_definition() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (23, 30, 3), dtype=np.uint8)
    w = np.array([1, 4, 6, 4, 1])
    kernel = np.outer(w, w)
    down = pyramid_down2(image)
    assert down.shape == ((23 - 3) // 2, (30 - 3) // 2, 3)
    for r in range(down.shape[0]):
        for c in range(down.shape[1]):
            patch = image[2 * r : 2 * r + 5, 2 * c : 2 * c + 5].astype(int)
            expected = np.einsum("ij,ijk->k", kernel, patch) // 256
            np.testing.assert_array_equal(down[r, c], expected)
    assert pyramid_down2(image[:8]).size == 0
    assert pyramid_down2(image[..., 0]).shape == down.shape[:2]


def test_inputs_and_edges() -> None:
    image = np.full((100, 120, 3), 200, np.uint8)
    landmarks = _face_landmarks(0.5, 0.0, (60.0, 50.0))
    assert extract_chips(image, np.zeros((0, 5, 2))).shape == (0, 150, 150, 3)
    one = extract_chips(image, landmarks)
    assert one.shape == (1, 150, 150, 3) and one.dtype == np.uint8
    # A grey image gives the same chip as its RGB version.
    np.testing.assert_array_equal(extract_chips(image[..., 0], landmarks), one)
    # Chip pixels whose source lies outside the image are black, as in dlib.
    corner = extract_chips(image, _face_landmarks(1.0, 0.0, (0.0, 0.0)))[0]
    assert (corner[:70, :70] == 0).all() and (corner[80:, 80:] == 200).all()
    far = extract_chips(image, _face_landmarks(1.0, 0.0, (-500.0, -500.0)))[0]
    assert not far.any()
    with pytest.raises(ImageError):
        extract_chips(image.astype(np.float32), landmarks)
    with pytest.raises(ValueError):
        extract_chips(image, np.zeros((2, 4, 2)))


# -- parity with dlib ----------------------------------------------------------------
def _dlib_shape(dlib, landmarks: np.ndarray):
    points = [dlib.point(int(x), int(y)) for x, y in np.round(landmarks)]
    return dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1), points)


def test_parity_with_dlib_get_face_chip() -> None:
    """Random smooth images and poses, borders and pyramids included."""
    dlib = pytest.importorskip("dlib")
    rng = np.random.default_rng(2)
    diffs = []
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(60, 700, 2))
        image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
        centre = rng.uniform(-40, [w + 40, h + 40])
        landmarks = np.round(_face_landmarks(rng.uniform(0.2, 6), rng.uniform(-1, 1), centre)
                             + rng.normal(0, 2, (5, 2)))
        shape = _dlib_shape(dlib, landmarks)
        ref_details = dlib.get_face_chip_details(shape, 150, 0.25)
        ours_details = get_face_chip_details(landmarks, 150, 0.25)
        r = ref_details.rect
        np.testing.assert_allclose(ours_details.rect, (r.left(), r.top(), r.right(), r.bottom()),
                                   atol=1e-8)
        assert ours_details.angle == pytest.approx(ref_details.angle, abs=1e-12)
        ref = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        diffs.append(np.abs(ref.astype(int) - extract_chips(image, landmarks)[0]))
    diffs = np.stack(diffs)
    assert diffs.max() <= 1 and diffs.mean() < 0.01, (diffs.max(), diffs.mean())


@pytest.mark.slow
@pytest.mark.shared_data
def test_descriptor_of_our_chip_matches_dlibs_chip(shared_data: Path) -> None:
    """dlib's own encoder, every faces-dev face, <= 0.01 L2 from dlib's pipeline both for
    our chip from dlib's landmarks and for our landmarks + our chip (dlib's box)."""
    dlib = pytest.importorskip("dlib")
    from faces_dev_reference import reference_faces

    from desktop.face.landmarks import ShapePredictor
    from desktop.model_files import FACE_ENCODER, require

    encoder = dlib.face_recognition_model_v1(str(require(FACE_ENCODER)))
    predictor = ShapePredictor.load(use_cache=False)
    faces = reference_faces(shared_data)
    assert len(faces) >= 20
    chip_only, pipeline = [], []
    for face in faces:
        theirs = dlib.get_face_chip(face.image, face.shape, size=150, padding=0.25)
        reference = np.array(encoder.compute_face_descriptor(theirs))
        ours = extract_chips(face.image, face.landmarks)[0]
        chip_only.append(np.linalg.norm(np.array(encoder.compute_face_descriptor(ours))
                                        - reference))
        landmarks = predictor.predict(face.image, [face.box])
        ours = extract_chips(face.image, landmarks)[0]
        pipeline.append(np.linalg.norm(np.array(encoder.compute_face_descriptor(ours))
                                       - reference))
    assert max(chip_only) <= 0.01, max(chip_only)
    assert max(pipeline) <= 0.01, max(pipeline)
