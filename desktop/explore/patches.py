"""Pictures of what a unit responds to: receptive-field crops, 3x3 tiles, sheets, maps.

* :func:`crop` cuts a box out of an image; where the box hangs over the image's edge
  (fields near the border do) the outside is filled with :data:`PAD_RGB`, so the patch
  stays centred on what the unit saw instead of shifting.
* :func:`unit_tile` lays a unit's (up to) nine patches out 3 x 3, strongest first,
  each scaled to one cell: nearest-neighbour when enlarged a lot (a 3 px field stays three
  visible pixels), area averaging when reduced.
* :func:`sheet` puts the tiles of several units on one image, with the layer, its
  receptive field and each unit's number and strongest activation written on it.
* :func:`activation_map` and :func:`overlay` show one unit's activation over a whole
  image, each feature-map position drawn at the centre of its receptive field.

Images are (H, W, 3) RGB uint8 throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np

from desktop.explore.index import Entry, LayerIndex
from desktop.explore.networks import ExploreNetwork
from desktop.explore.receptive_field import Geometry

#: Fill for the parts of a receptive field outside the image (a neutral grey).
PAD_RGB = (128, 128, 128)
#: Colour of a tile's empty cells (a unit with fewer than nine entries).
EMPTY_RGB = (236, 236, 236)
BACKGROUND_RGB = (255, 255, 255)
TEXT_RGB = (32, 33, 36)

Loader = Callable[[int], np.ndarray | None]


def crop(image: np.ndarray, box: tuple[int, int, int, int],
         fill: tuple[int, int, int] = PAD_RGB) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` for a box ``(x0, y0, x1, y1)`` (ends exclusive) that may
    reach outside the image; the outside is ``fill``. Shape (y1 - y0, x1 - x0, 3)."""
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    out = np.empty((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
    out[:] = fill
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def fit_cell(patch: np.ndarray, cell: int) -> np.ndarray:
    """``patch`` scaled to ``cell x cell``: blocky when enlarged 2x or more, smooth else."""
    if patch.shape[0] == cell and patch.shape[1] == cell:
        return patch
    if patch.size == 0:
        out = np.empty((cell, cell, 3), np.uint8)
        out[:] = EMPTY_RGB
        return out
    enlarge = cell / max(patch.shape[:2])
    mode = (cv2.INTER_NEAREST if enlarge >= 2 else
            cv2.INTER_AREA if enlarge < 1 else cv2.INTER_LINEAR)
    return cv2.resize(patch, (cell, cell), interpolation=mode)


class ImageCache:
    """Loads items through ``loader`` at most once each while the newest ``size`` are
    kept (a sheet of 16 units touches a few dozen images, many of them again and again)."""

    def __init__(self, loader: Loader, size: int = 64) -> None:
        self._loader = loader
        self._size = size
        self._images: dict[int, np.ndarray | None] = {}

    def __call__(self, item: int) -> np.ndarray | None:
        image = self._images.pop(item) if item in self._images else self._loader(item)
        self._images[item] = image
        while len(self._images) > self._size:
            self._images.pop(next(iter(self._images)))
        return image


def unit_patches(index: LayerIndex, unit: int, images: Loader) -> list[tuple[Entry, np.ndarray]]:
    """The unit's entries with their receptive-field crops, strongest first (entries
    whose image can no longer be read are left out)."""
    out = []
    for entry in index.entries(unit):
        image = images(entry.item)
        if image is not None:
            out.append((entry, crop(image, index.box(entry))))
    return out


def unit_tile(patches: Sequence[np.ndarray], cell: int = 64, gap: int = 2,
              grid: int = 3) -> np.ndarray:
    """Up to ``grid * grid`` patches as one (grid x grid) tile, row by row, each
    ``cell`` px square, ``gap`` px apart; missing ones are blank."""
    side = grid * cell + (grid - 1) * gap
    tile = np.empty((side, side, 3), np.uint8)
    tile[:] = BACKGROUND_RGB
    for n in range(grid * grid):
        r, c = divmod(n, grid)
        y, x = r * (cell + gap), c * (cell + gap)
        if n < len(patches):
            tile[y:y + cell, x:x + cell] = fit_cell(patches[n], cell)
        else:
            tile[y:y + cell, x:x + cell] = EMPTY_RGB
    return tile


def unit_tiles(index: LayerIndex, units: Sequence[int], images: Loader, cell: int = 40
               ) -> Iterator[tuple[int, np.ndarray]]:
    """``(unit, 3 x 3 tile)`` for each of ``units`` in turn (each image read once)."""
    cached = images if isinstance(images, ImageCache) else ImageCache(images)
    for unit in units:
        yield unit, unit_tile([p for _, p in unit_patches(index, unit, cached)], cell)


def _draw_text(image: np.ndarray, lines: Sequence[tuple[int, int, str, int]]) -> np.ndarray:
    """``image`` with each ``(x, y, text, size)`` written on it (PIL's built-in font)."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for x, y, text, size in lines:
        draw.text((x, y), text, fill=TEXT_RGB, font=ImageFont.load_default(size=size))
    return np.asarray(canvas).copy()


def sheet(index: LayerIndex, units: Sequence[int], images: Loader, cell: int = 40,
          columns: int = 4, title: str = "") -> np.ndarray:
    """The 3 x 3 tiles of ``units`` on one image, ``columns`` per row, each captioned
    with the unit's number and strongest activation, under a header naming the layer and
    its receptive field."""
    tiles = list(unit_tiles(index, units, images, cell))
    tile_side = tiles[0][1].shape[0] if tiles else 3 * cell + 4
    caption, pad, header = 20, 10, 46
    columns = max(1, min(columns, len(tiles) or 1))
    rows = max(1, -(-len(tiles) // columns))
    width = pad + columns * (tile_side + pad)
    height = header + rows * (tile_side + caption + pad) + pad
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BACKGROUND_RGB
    g = index.geometry
    lines = [(pad, 6, title or f"{index.network} {index.layer}", 15),
             (pad, 26, f"receptive field {g.size} px, stride {g.jump} px · top "
                       f"{index.settings.top_k} of {int((index.sizes[:, 0] >= 0).sum())} "
                       "images", 12)]
    best = index.unit_max()
    for n, (unit, tile) in enumerate(tiles):
        r, c = divmod(n, columns)
        x = pad + c * (tile_side + pad)
        y = header + r * (tile_side + caption + pad)
        out[y:y + tile_side, x:x + tile_side] = tile
        value = best[unit]
        label = f"unit {unit}" + (f" · max {value:.4g}" if np.isfinite(value) else " · no entries")
        lines.append((x, y + tile_side + 3, label, 12))
    return _draw_text(out, lines)


def activation_map(network: ExploreNetwork, image: np.ndarray, layer: str, unit: int
                   ) -> np.ndarray:
    """One unit's activation over ``image``: (n_H, n_W) float32."""
    maps = network.features(image[None], [layer])[layer]
    return maps[0, unit].numpy().astype(np.float32, copy=False)


def overlay(image: np.ndarray, amap: np.ndarray, geometry: Geometry,
            alpha: float = 0.85, vmax: float | None = None, dim: float = 0.45) -> np.ndarray:
    """``image``, dimmed to ``dim``, with ``amap`` drawn over it as a heat map (0
    transparent, ``vmax`` or the map's maximum coloured at ``alpha``), position (i, j) at
    its receptive field's centre."""
    h, w = image.shape[:2]
    top = float(vmax if vmax is not None else amap.max())
    norm = np.clip(amap / top, 0, 1) if top > 0 else np.zeros_like(amap)
    # map pixel (x, y) of the image to feature-map coordinates: inverse of the centres
    j = geometry.jump
    c0 = geometry.centre(0)
    to_map = np.float32([[1 / j, 0, -c0 / j], [0, 1 / j, -c0 / j]])
    dense = cv2.warpAffine(norm.astype(np.float32), to_map, (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    heat = cv2.applyColorMap((dense * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    weight = (alpha * dense)[:, :, None]
    return (image * dim * (1 - weight) + heat * weight).round().astype(np.uint8)
