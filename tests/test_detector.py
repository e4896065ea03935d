"""dlib's MMOD face detector in torch: geometry, NMS, bf16 refinement, and parity with
``dlib.cnn_face_detection_model_v1`` on a few small faces-dev photos."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from cpu_marks import needs_bf16_kernels

from desktop.face.detector import (
    HEAD_REACH,
    FaceDetector,
    HaarFaceDetector,
    Rect,
    dlib_box_overlap,
    dlib_pyramid_up,
    output_to_input_map,
    pyramid_level_sizes,
    tiled_pyramid_layout,
)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu", precision="fp32")


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


def test_pyramid_levels_shrink_by_five_sixths_down_to_five_rows():
    sizes = pyramid_level_sizes(360, 640)
    assert sizes[0] == (360, 640) and sizes[1] == (300, 533)
    for (r0, c0), (r1, c1) in itertools.pairwise(sizes):
        assert r1 == int(r0 * 5 / 6 + 1e-9) and c1 == int(c0 * 5 / 6 + 1e-9)
    assert sizes[-1][0] >= 5 and int(sizes[-1][0] * 5 / 6) < 5


@pytest.mark.parametrize("shape", [(360, 640), (640, 360), (100, 100), (37, 500), (480, 853)])
def test_tiled_layout_holds_every_kept_level_without_overlap(shape):
    rects, rows, cols = tiled_pyramid_layout(*shape)
    sizes = pyramid_level_sizes(*shape)
    assert rects[0] == Rect(11, 11, 11 + shape[1] - 1, 11 + shape[0] - 1)
    assert cols == shape[1] + 22
    for rect, (h, w) in zip(rects, sizes, strict=False):
        assert (rect.height, rect.width) == (h, w)
        assert rect.left >= 0 and rect.top >= 0 and rect.right < cols and rect.bottom < rows
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b)
    assert len(rects) >= min(len(sizes), 8)


def test_output_cells_map_to_input_pixels_through_the_three_stride_2_convs(detector):
    # p_in = 2 * (2 * (2 * p + 2) + 2) + 2 for three 5x5/2 convs without padding;
    # the 5x5 and 9x9 'same' convs map p to p.
    assert output_to_input_map(detector.network_info) == (8, 14)


def test_dlib_overlap_uses_the_bounding_box_of_both_rectangles():
    a = (0, 0, 9, 9)  # 10x10, inclusive corners
    b = (5, 0, 14, 9)  # overlaps a by 5x10 = 50; bounding box 15x10 = 150
    assert not dlib_box_overlap(a, b, iou_threshold=0.34, covered_threshold=1.0)
    assert dlib_box_overlap(a, b, iou_threshold=0.33, covered_threshold=1.0)
    assert dlib_box_overlap(a, (2, 2, 5, 5), iou_threshold=0.9, covered_threshold=0.99)
    assert not dlib_box_overlap(a, (10, 0, 19, 9), 0.0, 0.0)  # touching is not overlapping


def test_nms_keeps_the_best_of_overlapping_windows(detector):
    scores = np.full((30, 30), -2.0, np.float32)
    scores[10, 10], scores[10, 11], scores[25, 25] = 1.2, 1.1, 0.5
    rects, _, _ = tiled_pyramid_layout(300, 300)
    kept = detector._nms(detector._decode(scores, rects, 0.0))
    assert [round(score, 1) for score, _ in kept] == [1.2, 0.5]
    (_, (l, t, r, b)), _ = kept
    assert (r - l + 1, b - t + 1) == (80, 80)  # level 0: the 80x80 window itself
    # cell -> input pixel (8 * 10 + 14), minus the outer padding (11); 80 px span +/- 39.5
    assert abs((l + r) / 2 - (10 * 8 + 14 - 11)) <= 0.5


def test_blank_small_and_wrong_images(detector):
    assert detector.detect(np.full((200, 300, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((3, 3, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ValueError, match="RGB"):
        detector.detect(np.zeros((50, 50), np.uint8))


@needs_bf16_kernels
def test_bf16_rescoring_gives_the_fp32_head_near_the_threshold(detector):
    fast = FaceDetector(device="cpu", precision="bf16")
    torch.manual_seed(0)
    features = torch.rand(1, 45, 40, 50) * 2
    with torch.no_grad():
        scores = fast.net.head(features.to(torch.bfloat16))[0, 0].float().numpy()
    floor = float(np.quantile(scores, 0.97))
    refined = fast._rescore_fp32(features.to(torch.bfloat16), scores, floor)
    with torch.no_grad():
        exact = fast.head32.head(features.to(torch.bfloat16).float())[0, 0].numpy()
    near = scores > floor
    assert near.sum() >= 10
    np.testing.assert_allclose(refined[near], exact[near], rtol=1e-5, atol=1e-5)
    # every other cell is either left as bf16 or (inside a region's box) exact too
    assert np.all((refined == scores) | np.isclose(refined, exact, rtol=1e-5, atol=1e-5))
    assert (refined == scores).sum() > scores.size // 2
    assert HEAD_REACH == 2 + 4


def test_precision_auto_and_refusals():
    from desktop.device import cpu_has_native_bf16

    det = FaceDetector(device="cpu")
    assert det.precision == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision"):
        FaceDetector(device="cpu", precision="int8")


def test_dlib_pyramid_up_size():
    up = dlib_pyramid_up(np.zeros((10, 20, 3), np.uint8))
    assert up.shape == (21, 42, 3)  # rect_up of (0, 0, 19, 9) under pyramid_down<2>


needs_haar = pytest.mark.skipif(not HaarFaceDetector.available(),
                                reason="this OpenCV build has no Haar cascades (OpenCV 5)")


def test_haar_fast_mode_explains_itself_without_opencv_4():
    from desktop.errors import FacestyleError

    if HaarFaceDetector.available():
        pytest.skip("this OpenCV has Haar cascades")
    with pytest.raises(FacestyleError, match="OpenCV 4") as info:
        HaarFaceDetector()
    assert "opencv-python-headless<5" in info.value.hint


@needs_haar
def test_haar_fast_mode_finds_nothing_in_a_blank_frame():
    assert HaarFaceDetector().detect(np.full((240, 320, 3), 90, np.uint8)) == []


# -- parity with dlib ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlib_cnn():
    dlib = pytest.importorskip("dlib", reason="dlib-bin (test extra) is the reference")
    from desktop.model_files import FACE_DETECTOR, require

    return dlib.cnn_face_detection_model_v1(str(require(FACE_DETECTOR)))


# (photo, longest side, dlib's upsample_num_times): small, since dlib's CNN is slow here
PARITY_CASES = [
    ("faces-dev/video/alex-lacamoire.png", 400, 0),
    ("faces-dev/images/two_people.jpg", 480, 0),
    ("faces-dev/knn/test/kit_with_rose.jpg", 240, 1),
]


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=needs_bf16_kernels)])
def test_finds_every_face_dlibs_cnn_finds(shared_data, dlib_cnn, detector, precision):
    from desktop.imageio import downscale_to, load_rgb

    det = detector if precision == "fp32" else FaceDetector(device="cpu", precision="bf16")
    assert det.precision == precision
    found = 0
    for name, side, upsample in PARITY_CASES:
        image, _ = downscale_to(load_rgb(shared_data / name), side)
        theirs = [(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height(), d.confidence)
                  for d in dlib_cnn(image, upsample)]
        assert theirs, f"dlib finds no face in {name} at {side} px"
        ours = det.detect(image, upsample=upsample)
        for *box, score in theirs:
            best = max(ours, key=lambda f, box=box: iou(f.box, box))
            assert iou(best.box, box) >= 0.9, (name, det.precision, box, ours)
            assert best.score == pytest.approx(score, abs=0.01)
        found += len(theirs)
    assert found >= 4


@pytest.mark.shared_data
def test_min_face_size_skips_small_faces_and_keeps_big_ones(shared_data, detector):
    from desktop.imageio import downscale_to, load_rgb

    image, _ = downscale_to(load_rgb(shared_data / "faces-dev/images/two_people.jpg"), 640)
    full = detector.detect(image)
    assert len(full) == 2
    biggest = max(f.box[2] for f in full)
    # min_face_size shrinks the image by 80 / min_face_size before the pyramid
    assert detector.detect(image, min_face_size=2 * biggest) == []
    skipped = detector.detect(image, min_face_size=100)
    assert len(skipped) == 2
    for face in skipped:  # same faces; sizes snap to a pyramid level (steps of 6/5)
        assert max(iou(face.box, f.box) for f in full) > 0.6
    for face in full:  # boxes are in the original image's pixels
        x, y, w, _ = face.box
        assert 0 <= x < image.shape[1] and 0 <= y < image.shape[0] and w > 60


@needs_haar
@pytest.mark.shared_data
def test_haar_fast_mode_finds_a_clear_face(shared_data):
    from desktop.imageio import downscale_to, load_rgb

    image, _ = downscale_to(load_rgb(shared_data / "faces-dev/images/obama.jpg"), 640)
    faces = HaarFaceDetector().detect(image)
    assert faces and faces[0].box[2] > 80


@pytest.mark.slow
@pytest.mark.shared_data
@needs_bf16_kernels
def test_bf16_mode_keeps_the_fp32_boxes_on_every_faces_dev_photo(shared_data, detector):
    """bf16 alone moves boxes by a cell or a pyramid level; with fp32 re-scoring near the
    threshold every box stays where the fp32 (dlib) computation puts it."""
    from desktop.imageio import downscale_to, load_rgb

    fast = FaceDetector(device="cpu", precision="bf16")
    assert fast.precision == "bf16"
    photos = sorted(p for p in (shared_data / "faces-dev").rglob("*")
                    if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    faces = 0
    for path in photos:
        image, _ = downscale_to(load_rgb(path), 640)
        exact = detector.detect(image)
        quick = fast.detect(image)
        assert len(quick) == len(exact), path.name
        for face in exact:
            best = max(quick, key=lambda f, box=face.box: iou(f.box, box))
            assert iou(best.box, face.box) >= 0.9, (path.name, face, quick)
            assert best.score == pytest.approx(face.score, abs=0.02)
        faces += len(exact)
    assert faces >= 25


def test_fused_cpu_network_gives_the_plain_networks_scores():
    """The oneDNN path (packed kernels, conv + ReLU fused) is the same function."""
    from desktop.face.detector import FusedMMOD

    det = FaceDetector(device="cpu", precision="fp32")
    if not isinstance(det._runner, FusedMMOD):
        pytest.skip("this torch has no oneDNN fused convolution")
    torch.manual_seed(1)
    for shape in ((1, 3, 120, 160), (1, 3, 97, 211)):  # the second reuses the first packing
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            plain = det.net.head(det.net.trunk(x))
            fused = det._runner.head(det._runner.trunk(x))
        assert fused.shape == plain.shape
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)
