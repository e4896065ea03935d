"""The top-k per unit is the true top-k; the cache is keyed by the folder's content."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from explore_helpers import ArraySource, textured_image, write_folder
from PIL import Image

from desktop.errors import Cancelled, FacestyleError
from desktop.explore import cache
from desktop.explore.index import IndexSettings, index_layers
from desktop.explore.networks import open_network
from desktop.explore.sources import FaceChipSource, ImageFolderSource
from desktop.explore.topk import RunningTopK
from desktop.tasks import CancelToken


def brute_force_top(maps: list[torch.Tensor], k: int, per_image: int):
    """Per unit, sort every (image, position) by activation (ties: earlier image, then
    earlier position) and keep the first k with at most ``per_image`` per image."""
    channels = maps[0].shape[0]
    out = []
    for unit in range(channels):
        candidates = []
        for image, m in enumerate(maps):
            flat = m[unit].reshape(-1).tolist()
            width = m.shape[2]
            candidates += [(-v, image, p // width, p % width) for p, v in enumerate(flat)]
        candidates.sort()
        taken, per = [], {}
        for neg, image, row, col in candidates:
            if per.get(image, 0) < per_image:
                per[image] = per.get(image, 0) + 1
                taken.append((-neg, image, row, col))
            if len(taken) == k:
                break
        out.append(taken)
    return out


@pytest.mark.parametrize("per_image", [1, 3])
def test_running_top_k_equals_brute_force_with_ties_and_any_batching(per_image):
    g = torch.Generator().manual_seed(per_image)
    shapes = [(5, 7), (5, 7), (3, 4), (6, 2), (5, 7), (3, 4), (4, 4)]
    maps = [torch.randint(0, 6, (3, h, w), generator=g).float() for h, w in shapes]
    want = brute_force_top(maps, k=5, per_image=per_image)
    for batch in (1, 2, 7):
        top = RunningTopK(3, k=5, per_image=per_image)
        order = list(range(len(maps)))
        i = 0
        while i < len(order):  # same-shaped neighbours go together, like the index
            group = [order[i]]
            while (len(group) < batch and i + len(group) < len(order)
                   and shapes[order[i + len(group)]] == shapes[order[i]]):
                group.append(order[i + len(group)])
            top.update(torch.stack([maps[j] for j in group]), group)
            i += len(group)
        got = top.result()
        for unit in range(3):
            entries = [(float(got.value[unit, r]), int(got.item[unit, r]), int(got.row[unit, r]),
                        int(got.col[unit, r])) for r in range(5)]
            assert entries == want[unit], (batch, unit)


def test_running_top_k_pads_when_there_are_fewer_than_k():
    top = RunningTopK(2, k=4, per_image=1)
    top.update(torch.ones(2, 2, 3, 3), [0, 1])
    got = top.result()
    assert list(got.item[0]) == [0, 1, -1, -1]
    assert np.isneginf(got.value[0, 2:]).all()


@pytest.fixture(scope="module")
def vgg_fp32():
    return open_network("vgg19", "cpu", "fp32")


def check_against_exhaustive(index, maps, k, per_image):
    """Every entry is the activation at its position, at most ``per_image`` per image,
    and the values are the k largest of the brute-force ranking."""
    want = brute_force_top(maps, k, per_image)
    for unit in range(index.channels):
        entries = index.entries(unit)
        assert len(entries) == len(want[unit])
        got_values = np.array([e.value for e in entries])
        want_values = np.array([w[0] for w in want[unit]])
        scale = max(1.0, float(np.abs(want_values).max()))
        np.testing.assert_allclose(got_values, want_values, rtol=1e-4, atol=1e-4 * scale)
        per: dict[int, int] = {}
        for e in entries:
            truth = float(maps[e.item][unit, e.row, e.col])
            assert abs(truth - e.value) <= 1e-4 * scale
            per[e.item] = per.get(e.item, 0) + 1
        assert max(per.values()) <= per_image


@pytest.mark.parametrize("per_image", [1, 2])
def test_vgg_index_is_the_true_top_k_over_a_folder(tmp_path, vgg_fp32, per_image):
    sizes = [(40, 56), (48, 48), (40, 56), (33, 71), (48, 48), (40, 56)]
    write_folder(tmp_path / "imgs", sizes)
    source = ImageFolderSource(tmp_path / "imgs", max_side=512)
    settings = IndexSettings(top_k=4, per_image=per_image, batch_size=2)
    layers = ["relu1_1", "relu3_1"]
    result = index_layers(source, vgg_fp32, layers, settings, use_cache=False)
    assert [i.key for i in source.items][:2] == ["img00.png", "img02.png"]
    for layer in layers:
        maps = [vgg_fp32.features(source.load(item)[None], [layer])[layer][0]
                for item in source.items]
        index = result[layer]
        assert index.channels == maps[0].shape[0]
        assert [tuple(s) for s in index.sizes] == [m.shape[1:] and tuple(
            source.load(i).shape[:2]) for m, i in zip(maps, source.items, strict=True)]
        check_against_exhaustive(index, maps, 4, per_image)


def test_encoder_index_is_the_true_top_k_over_chips():
    network = open_network("encoder", "cpu", "fp32")
    chips = [textured_image(40 + n, 150, 150) for n in range(5)]
    source = ArraySource(chips, chips=True)
    settings = IndexSettings(top_k=3, per_image=2, batch_size=2)
    result = index_layers(source, network, ["level4", "level2"], settings, use_cache=False)
    for layer, index in result.items():
        maps = [network.features(chip[None], [layer])[layer][0] for chip in chips]
        check_against_exhaustive(index, maps, 3, 2)
    assert result["level2"].geometry.jump == 16


def test_the_encoder_refuses_whole_images(tmp_path):
    write_folder(tmp_path, [(40, 40)])
    with pytest.raises(FacestyleError, match="face chips"):
        index_layers(ImageFolderSource(tmp_path), open_network("encoder", "cpu", "fp32"),
                     ["level4"])


def test_bad_and_tiny_images_are_skipped_with_a_reason(tmp_path, vgg_fp32):
    write_folder(tmp_path, [(40, 40), (36, 44)])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(textured_image(9, 3, 5)).save(tmp_path / "tiny.png")
    index = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu3_1"],
                         IndexSettings(top_k=2), use_cache=False)["relu3_1"]
    reasons = {os.path.basename(s.path): s.reason for s in index.skipped}
    assert set(reasons) == {"broken.jpg", "tiny.png"}
    assert "damaged" in reasons["broken.jpg"] or "not an image" in reasons["broken.jpg"]
    assert "too small" in reasons["tiny.png"]
    assert int((index.sizes[:, 0] >= 0).sum()) == 2


def test_an_empty_folder_says_so(tmp_path, vgg_fp32):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(FacestyleError, match="No images found") as caught:
        index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"])
    assert str(tmp_path.resolve()) in str(caught.value)  # which folder, in full


def test_cancel_stops_the_index_and_caches_nothing(tmp_path, vgg_fp32):
    write_folder(tmp_path, [(40, 40)] * 4)
    token = CancelToken()
    seen = []

    def progress(fraction, message=""):
        seen.append(message)
        if "Indexing: 2" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"],
                     IndexSettings(batch_size=1), progress=progress, cancel=token)
    assert any("Indexing: 2" in m for m in seen)
    assert not cache.cache_dir().exists() or not list(cache.cache_dir().glob("*.npz"))


def test_the_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path, vgg_fp32):
    paths = write_folder(tmp_path, [(40, 40), (40, 40), (40, 40)])
    settings = IndexSettings(top_k=3)
    first = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"], settings)
    assert not first["relu1_1"].from_cache
    again = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1", "relu2_1"],
                         settings)
    assert again["relu1_1"].from_cache and not again["relu2_1"].from_cache
    np.testing.assert_array_equal(again["relu1_1"].top.value, first["relu1_1"].top.value)
    assert [i.key for i in again["relu1_1"].items] == [i.key for i in first["relu1_1"].items]

    # a file changes (new content, same name): the folder's results are made again
    bright = np.full((40, 40, 3), 255, np.uint8)
    bright[::2] = 0  # strong horizontal edges everywhere
    Image.fromarray(bright).save(paths[0])
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"], settings)
    assert not changed["relu1_1"].from_cache
    assert not np.array_equal(changed["relu1_1"].top.value, first["relu1_1"].top.value)

    # other settings are other entries; a damaged cache file is ignored, then replaced
    other = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"],
                         IndexSettings(top_k=2))
    assert not other["relu1_1"].from_cache
    for path in cache.cache_dir().glob("vgg19-relu1_1-*.npz"):
        path.write_bytes(b"garbage")
    redone = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"], settings)
    assert not redone["relu1_1"].from_cache
    assert index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"],
                        settings)["relu1_1"].from_cache


def test_a_removed_file_invalidates_the_cache_too(tmp_path, vgg_fp32):
    paths = write_folder(tmp_path, [(40, 40), (40, 40)])
    index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"])
    paths[1].unlink()
    after = index_layers(ImageFolderSource(tmp_path), vgg_fp32, ["relu1_1"])["relu1_1"]
    assert not after.from_cache and len(after.items) == 1


def test_json_lists_entries_with_boxes_in_both_pixel_spaces(tmp_path, vgg_fp32):
    write_folder(tmp_path, [(100, 140)])
    index = index_layers(ImageFolderSource(tmp_path, max_side=70), vgg_fp32, ["relu2_1"],
                         IndexSettings(top_k=1))["relu2_1"]
    doc = index.to_json([0, 5])
    assert doc["receptive_field"] == {"size": 10, "stride": 2, "start": -4}
    entry = doc["units"][1]["top"][0]
    assert entry["image_size"] == [70, 50]
    row, col = entry["position"]
    assert entry["box"] == [-4 + 2 * col, -4 + 2 * row, 6 + 2 * col, 6 + 2 * row]
    assert entry["source_box"] == [round(v * 2) for v in entry["box"]]


def test_face_chip_source_finds_faces_and_caches_them(tmp_path, shared_data):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("obama.jpg", "two_people.jpg"):
        (folder / name).write_bytes((shared_data / "faces-dev" / "images" / name).read_bytes())
    (folder / "empty.png").write_bytes(b"")
    calls = []

    def engine():
        from desktop.face.api import FaceEngine

        calls.append(1)
        return FaceEngine()

    source = FaceChipSource(folder, engine_factory=engine)
    source.scan()
    labels = [i.label for i in source.items]
    assert "obama.jpg" in labels and "two_people.jpg · face 2" in labels
    assert [os.path.basename(s.path) for s in source.skipped] == ["empty.png"]
    assert source.load(source.items[0]).shape == (150, 150, 3)
    again = FaceChipSource(folder, engine_factory=engine)
    again.scan()  # chips come from the cache: no engine made
    assert len(calls) == 1 and [i.key for i in again.items] == [i.key for i in source.items]


def test_large_jpegs_are_drafted_and_boxes_map_back_to_the_file(tmp_path):
    from desktop.imageio import load_rgb

    big = np.zeros((1200, 1600, 3), np.uint8)
    big[:, 800:] = 255
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    drafted = load_rgb(tmp_path / "big.jpg", draft_side=300)
    assert drafted.shape == (300, 400, 3)  # decoded at 1/4 scale, never below 300
    assert load_rgb(tmp_path / "big.jpg").shape == (1200, 1600, 3)
    source = ImageFolderSource(tmp_path, max_side=200)
    source.scan()
    image = source.load(source.items[0])
    assert image.shape == (150, 200, 3)
    assert source.source_size(source.items[0]) == (1200, 1600)
    assert image[:, 105:].min() > 200 and image[:, :95].max() < 50


def test_the_gallerys_face_chips_are_a_source_for_the_encoder(tmp_path):
    from desktop.explore.sources import GalleryChipSource
    from desktop.store.gallery import open_gallery
    from desktop.store.records import NewTemplate

    db = tmp_path / "gallery.sqlite3"
    gallery = open_gallery(db)
    chips = [textured_image(70 + n, 150, 150) for n in range(3)]
    gallery.enrol("Ada", [NewTemplate(chips[0], np.ones(128, np.float32), "m"),
                          NewTemplate(chips[1], np.ones(128, np.float32), "m")])
    gallery.enrol("Bob", [NewTemplate(chips[2], np.ones(128, np.float32), "m")])
    gallery.close()
    source = GalleryChipSource(db)
    result = index_layers(source, open_network("encoder", "cpu", "fp32"), ["level2"],
                          IndexSettings(top_k=3), use_cache=False)["level2"]
    assert [i.label for i in result.items] == ["Ada · photo 1", "Ada · photo 2", "Bob · photo 1"]
    assert int((result.sizes[:, 0] == 150).sum()) == 3 and result.source_box(
        result.entries(0)[0]) is None
    chip = source.load(source.items[2])
    assert chip.shape == (150, 150, 3) and np.abs(chip.astype(int) - chips[2]).mean() < 8
    fingerprint = source.fingerprint()
    gallery = open_gallery(db)
    gallery.enrol("Cy", [NewTemplate(chips[0], np.ones(128, np.float32), "m")])
    gallery.close()
    again = GalleryChipSource(db)
    again.scan()
    assert again.fingerprint() != fingerprint
