"""Receptive-field crops are padded, not shifted; tiles, sheets and activation maps."""

from __future__ import annotations

import numpy as np
import pytest
from explore_helpers import write_folder

from desktop.explore.index import IndexSettings, index_layers
from desktop.explore.networks import open_network
from desktop.explore.patches import (
    PAD_RGB,
    activation_map,
    crop,
    fit_cell,
    overlay,
    sheet,
    unit_patches,
    unit_tile,
)
from desktop.explore.receptive_field import Geometry
from desktop.explore.sources import ImageFolderSource


def test_a_crop_over_the_border_is_padded_not_shifted():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    inside = crop(image, (1, 1, 4, 3))
    np.testing.assert_array_equal(inside, image[1:3, 1:4])
    corner = crop(image, (-2, -1, 2, 2))  # 4 wide, 3 high, hanging over the top left
    assert corner.shape == (3, 4, 3)
    assert (corner[0] == PAD_RGB).all() and (corner[:, :2] == PAD_RGB).all()
    np.testing.assert_array_equal(corner[1:, 2:], image[0:2, 0:2])
    outside = crop(image, (10, 10, 13, 13))
    assert (outside == PAD_RGB).all()


def test_small_patches_stay_blocky_and_tiles_have_nine_cells():
    patch = np.zeros((3, 3, 3), np.uint8)
    patch[1, 1] = 255
    cell = fit_cell(patch, 30)
    assert cell.shape == (30, 30, 3)
    assert set(np.unique(cell)) == {0, 255}  # nearest neighbour: no blur
    tile = unit_tile([patch] * 4, cell=20, gap=2)
    assert tile.shape == (64, 64, 3)
    assert (tile[0:20, 0:20] == fit_cell(patch, 20)).all()
    assert (tile[-20:, -20:] != tile[0:20, 0:20]).any()  # the ninth cell is blank


@pytest.fixture(scope="module")
def vgg():
    return open_network("vgg19", "cpu", "fp32")


def test_unit_patches_sheet_and_activation_map(tmp_path, vgg):
    write_folder(tmp_path, [(64, 80), (64, 80), (50, 70)])
    source = ImageFolderSource(tmp_path)
    index = index_layers(source, vgg, ["relu3_1"], IndexSettings(top_k=3, per_image=1),
                         use_cache=False)["relu3_1"]

    def load(i):
        return source.load(source.items[i])

    patches = unit_patches(index, 7, load)
    assert [e.rank for e, _ in patches] == [0, 1, 2]
    for entry, patch in patches:
        assert patch.shape == (24, 24, 3)  # relu3_1's field, whatever the position
        x0, y0, x1, y1 = index.box(entry)
        image = load(entry.item)
        if x0 >= 0 and y0 >= 0 and x1 <= image.shape[1] and y1 <= image.shape[0]:
            np.testing.assert_array_equal(patch, image[y0:y1, x0:x1])
    page = sheet(index, [0, 1, 2, 7, 9], load, cell=24, columns=3)
    assert page.ndim == 3 and page.shape[1] == 10 + 3 * (3 * 24 + 4 + 10)
    assert (page != 255).any()

    image = load(0)
    amap = activation_map(vgg, image, "relu3_1", 7)
    assert amap.shape == (16, 20)
    best = index.entries(7)[0]
    if best.item == 0:
        assert amap[best.row, best.col] == pytest.approx(best.value, rel=1e-4)
    shown = overlay(image, amap, index.geometry)
    assert shown.shape == image.shape and shown.dtype == np.uint8


def test_overlay_puts_a_position_at_its_fields_centre():
    image = np.zeros((40, 40, 3), np.uint8)
    amap = np.zeros((5, 5), np.float32)
    amap[2, 3] = 1.0
    g = Geometry(size=8, jump=8, start=0)  # centres at 3.5, 11.5, 19.5, ...
    shown = overlay(image, amap, g, alpha=1.0)
    brightest = np.unravel_index(shown.sum(axis=2).argmax(), shown.shape[:2])
    assert abs(brightest[0] - 19.5) <= 1 and abs(brightest[1] - 27.5) <= 1
