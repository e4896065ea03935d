"""The public face API: FaceEngine (detect, embed, analyze), swappable encoders, TTA,
threads, and the module-level conveniences."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from desktop.errors import ImageError, ModelFileError
from desktop.face import api
from desktop.face.api import FaceEngine, as_rgb
from desktop.face.encoder import FaceEncoder
from desktop.face.types import DEFAULT_TAU, Face, FaceEngineLike


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(device="cpu")


def smooth_chips(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.integers(0, 256, (n, 3, 8, 8)).astype(np.float32))
    big = torch.nn.functional.interpolate(small, size=(150, 150), mode="bilinear")
    return big.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()


def test_engine_fits_the_protocol_and_loads_lazily():
    eng: FaceEngineLike = FaceEngine(device="cpu")
    for name in ("model_id", "detect", "embed"):  # the protocol's members
        assert hasattr(FaceEngineLike, name) and hasattr(eng, name)
    assert eng.model_id == "dlib-resnet-v1"
    assert eng._detector is None and eng._embedder is None and eng._landmarks is None
    assert eng.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    assert eng._embedder is None  # nothing to embed, nothing loaded


def test_as_rgb_accepts_grey_rgba_and_refuses_the_rest():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_rgb(grey).shape == (3, 4, 3) and (as_rgb(grey)[..., 2] == grey).all()
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert as_rgb(rgba).shape == (3, 4, 3)
    with pytest.raises(ImageError, match="8-bit"):
        as_rgb(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ImageError, match="shape"):
        as_rgb(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        as_rgb(np.zeros((0, 4, 3), np.uint8))


def test_no_face_in_a_blank_image(engine):
    assert engine.detect(np.full((240, 320, 3), 200, np.uint8)) == []
    assert engine.analyze(np.full((240, 320), 30, np.uint8)) == []


def test_embed_chips_and_distance_units(engine):
    chips = smooth_chips(3)
    codes = engine.embed(chips)
    assert codes.shape == (3, 128) and codes.dtype == np.float32
    np.testing.assert_allclose(engine.embed(chips[1]), codes[1:2], atol=1e-5)
    d = api.distance(codes[0], codes[1])
    assert isinstance(d, float)
    assert d == pytest.approx(float(np.sum((codes[0] - codes[1]) ** 2)), rel=1e-6)
    assert api.distance(codes[:, None], codes[None]).shape == (3, 3)  # broadcasts
    assert api.same_person(codes[0], codes[0]) and pytest.approx(0.36) == DEFAULT_TAU


def test_embed_fills_face_descriptors_and_needs_chips(engine):
    chips = smooth_chips(2, seed=1)
    faces = [Face(box=(0, 0, 10, 10), score=1.0, chip=c) for c in chips]
    codes = engine.embed(faces)
    assert all(np.array_equal(f.descriptor, c) for f, c in zip(faces, codes, strict=True))
    with pytest.raises(ValueError, match="chip"):
        engine.embed([Face(box=(0, 0, 10, 10), score=1.0)])


def test_tta_is_mirror_invariant_and_close_to_plain(engine):
    chip = smooth_chips(1, seed=2)
    mirrored = chip[:, :, ::-1].copy()
    with_tta = engine.embed(chip, tta=True)
    np.testing.assert_allclose(engine.embed(mirrored, tta=True), with_tta, atol=1e-5)
    plain = engine.embed(chip)
    assert 0 < np.linalg.norm(with_tta - plain) < 0.5


def test_encoder_is_swappable_by_module_or_state_dict(engine, tmp_path):
    torch.manual_seed(0)
    tuned = FaceEncoder.from_dlib(device="cpu")
    with torch.no_grad():
        tuned.fc.weight.mul_(-1)  # a different f(x), trivially related to dlib's
    chips = smooth_chips(2, seed=3)
    base = engine.embed(chips)

    by_module = FaceEngine(tuned, model_id="tuned-1", device="cpu")
    assert by_module.model_id == "tuned-1"
    np.testing.assert_allclose(by_module.embed(chips), -base, atol=1e-4)

    path = tmp_path / "tuned.pt"
    torch.save({"state_dict": tuned.state_dict()}, path)
    by_file = FaceEngine(path, model_id="tuned-1", device="cpu")
    np.testing.assert_allclose(by_file.embed(chips), -base, atol=1e-4)

    (tmp_path / "bad.pt").write_bytes(b"not weights")
    with pytest.raises(ModelFileError, match=r"bad\.pt"):
        FaceEngine(tmp_path / "bad.pt", device="cpu").embed(chips)
    with pytest.raises(ModelFileError, match="not found"):
        FaceEngine(tmp_path / "missing.pt", device="cpu").embed(chips)
    with pytest.raises(ValueError, match="model_id"):
        FaceEngine(model_id="")


def test_a_worker_thread_embeds_while_another_reads(engine):
    chips = smooth_chips(4, seed=4)
    want = engine.embed(chips)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(3):
                results.append(engine.embed(chips))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for r in list(results):  # the reader sees only finished arrays
            assert r.shape == (4, 128)
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    for r in results:
        np.testing.assert_allclose(r, want, atol=1e-5)


def test_custom_detector_object_and_big_image_downscale():
    class Fixed:
        def __init__(self):
            self.seen: list[tuple[int, int]] = []

        def detect(self, image):
            self.seen.append(image.shape[:2])
            return [Face(box=(100, 50, 200, 200), score=1.0)]

    fixed = Fixed()
    eng = FaceEngine(device="cpu", detector=fixed, detect_max_side=1000)
    image = np.zeros((1500, 2000, 3), np.uint8)
    faces = eng.detect_boxes(image)
    assert fixed.seen == [(750, 1000)]  # detection ran on the shrunk copy
    assert faces[0].box == (200, 100, 400, 400)  # and boxes came back in full pixels
    faces = eng.detect(image)
    assert faces[0].chip.shape == (150, 150, 3) and faces[0].landmarks.shape == (5, 2)


# -- faces-dev -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.shared_data
def test_engine_pipeline_matches_dlibs_on_the_same_boxes(shared_data, engine):
    """Our landmarks + chip + encoder from dlib's HOG boxes, against dlib's whole pipeline
    (shape_predictor, get_face_chip, compute_face_descriptor): within 0.01 L2."""
    dlib = pytest.importorskip("dlib")
    from faces_dev_reference import reference_faces

    from desktop.face.align import extract_chips
    from desktop.model_files import FACE_ENCODER, require

    reference = dlib.face_recognition_model_v1(str(require(FACE_ENCODER)))
    faces = reference_faces(shared_data)
    errors = []
    for face in faces:
        theirs = np.array(reference.compute_face_descriptor(
            dlib.get_face_chip(face.image, face.shape, size=150, padding=0.25)))
        marks = engine.landmarks.predict(face.image, [face.box])
        ours = engine.embed(extract_chips(face.image, marks))[0]
        errors.append(np.linalg.norm(ours - theirs))
    assert len(errors) >= 20 and max(errors) <= 0.01, max(errors)


@pytest.mark.slow
@pytest.mark.shared_data
def test_one_shot_identification_on_the_knn_photos(shared_data, engine):
    """Enrol one photo per person (knn/train), name every face in knn/test; the girl in
    obama_and_biden.jpg is nobody enrolled and must stay Unknown."""
    root = shared_data / "faces-dev" / "knn"
    names, gallery = [], []
    for person in sorted(p for p in (root / "train").iterdir() if p.is_dir()):
        first = sorted(person.iterdir())[0]
        faces = engine.analyze(api.load_image(first))
        assert len(faces) == 1, first
        names.append(person.name)
        gallery.append(faces[0].descriptor)
    gallery = np.stack(gallery)

    def name_of(code):
        d = api.distance(gallery, code)
        return names[int(np.argmin(d))] if d.min() < DEFAULT_TAU else "Unknown"

    expected = {"alex_lacamoire1.jpg": {"alex_lacamoire"}, "obama1.jpg": {"obama"},
                "johnsnow_test1.jpg": {"kit_harington"},
                "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
                "obama_and_biden.jpg": {"obama", "biden", "Unknown"}}
    for photo, want in expected.items():
        faces = engine.analyze(api.load_image(root / "test" / photo))
        found = [name_of(f.descriptor) for f in faces]
        assert sorted(found) == sorted(want), (photo, found)
