import io

import numpy as np
import pytest
from PIL import Image

from desktop.errors import ImageError
from desktop.imageio import downscale_to, load_rgb, save_png


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_grayscale_palette_cmyk_become_rgb():
    gray = Image.fromarray(np.full((4, 5), 77, np.uint8), "L")
    out = load_rgb(encode(gray))
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and (out == 77).all()
    assert out.flags.writeable  # callers (overlays, OpenCV) draw on it in place
    pal = gray.convert("P")
    assert load_rgb(encode(pal)).shape == (4, 5, 3)
    cmyk = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red in CMYK
    red = load_rgb(encode(cmyk, "JPEG", quality=100))
    assert red[..., 0].min() > 200 and red[..., 1].max() < 60


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    out = load_rgb(encode(Image.fromarray(arr)))
    assert list(out[0, :, 0]) == [0, 128, 255]


def test_alpha_is_composited_over_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent
    out = load_rgb(encode(Image.fromarray(rgba, "RGBA")))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[1, 1]) == (255, 255, 255)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (6, 3), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = load_rgb(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.shape[:2] == (6, 3)


def test_decompression_bomb_is_refused_before_decoding():
    big = encode(Image.new("L", (2000, 2000)))
    with pytest.raises(ImageError, match="megapixels"):
        load_rgb(big, max_pixels=1_000_000)


def test_corrupt_missing_and_non_images(tmp_path):
    good = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_rgb(tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match="not an image"):
        load_rgb(tmp_path / "text.png")
    with pytest.raises(ImageError, match="does not exist"):
        load_rgb(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_rgb(tmp_path)


def test_downscale_and_png_text(tmp_path):
    img = np.zeros((300, 600, 3), np.uint8)
    small, scale = downscale_to(img, 200)
    assert small.shape == (100, 200, 3) and scale == pytest.approx(1 / 3)
    same, one = downscale_to(img, 1000)
    assert same is img and one == 1.0
    save_png(tmp_path / "x.png", small, {"settings": '{"a": 1}'})
    assert Image.open(tmp_path / "x.png").text["settings"] == '{"a": 1}'
