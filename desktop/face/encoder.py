"""The Siamese branch f(x): dlib's face recognition ResNet, in torch.

The network is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp`` (a ResNet-34
with fewer filters per layer, 29 convolutions), trained by Davis King with a pairwise
metric loss so that two chips of one person lie within 0.6 (L2) of each other.

    x  (N, 3, 150, 150) RGB in 0..255
    -> (x - channel mean) / 256                         dlib's input_rgb_image_sized
    -> stem:   conv 7x7/2 (32) + affine + relu + max pool 3x3/2          -> (N, 32, 35, 35)
    -> level4: 3 residual units, 32 filters                              -> (N, 32, 35, 35)
    -> level3: 1 downsampling + 3 residual units, 64 filters             -> (N, 64, 17, 17)
    -> level2: 1 downsampling + 2 residual units, 128 filters            -> (N, 128, 8, 8)
    -> level1: 1 downsampling + 2 residual units, 256 filters            -> (N, 256, 4, 4)
    -> level0: 1 downsampling unit, 256 filters                          -> (N, 256, 2, 2)
    -> global average pool, fc (128, no bias)                            -> (N, 128)

dlib's batch norm is frozen into per-channel ``affine`` layers (y = gamma * x + beta). A
downsampling unit adds its 3x3/2 convolution branch to a 2x2/2 average pool of its input;
where the two differ in size (channels everywhere, and 3x3 against 4x4 in level1), the
smaller is zero-padded to the larger, as dlib's ``add_prev`` does.

Descriptors are not normalised; their norm is about 1.4, and the squared distance
d = ||f(x1) - f(x2)||^2 between two chips of one person is usually below 0.36.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.device import cpu_precision, onednn_fused_conv_available
from desktop.errors import ModelFileError
from desktop.face.dlib_nets import ENCODER_DEFINITION, Network, load_network
from desktop.face.onednn import PackedConv
from desktop.face.types import CHIP_SIZE, EMBEDDING_DIM

#: dlib's channel means (R, G, B) of the face chips it trained on; the file holds them too.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
#: dlib divides by 256 (not 255, not a standard deviation).
DLIB_INPUT_SCALE = 256.0


class Affine(nn.Module):
    """dlib's ``affine_`` layer: a frozen batch norm, y = gamma * x + beta per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: a + b, zero-padding the smaller tensor (channels, rows, columns
    at their far ends) to the larger size in each dimension."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        pad = (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1])
        return F.pad(t, pad) if any(pad) else t

    return grow(a) + grow(b)


class ResidualUnit(nn.Module):
    """``ares`` (stride 1, identity skip) or ``ares_down`` (stride 2, average-pooled skip):

        y = relu(add_prev(affine2(conv2(relu(affine1(conv1(x))))), skip(x)))
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        stride, padding = (2, 0) if downsample else (1, 1)  # dlib: padding only at stride 1
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.affine2 = Affine(out_channels)
        self.skip: nn.Module = nn.AvgPool2d(2, 2) if downsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(add_prev(y, self.skip(x)))


def _level(in_channels: int, channels: int, units: int, downsample: bool) -> nn.Sequential:
    first = ResidualUnit(in_channels, channels, downsample)
    return nn.Sequential(first, *(ResidualUnit(channels, channels, False)
                                  for _ in range(units - 1)))


class Stem(nn.Sequential):
    """conv 7x7/2 (32 filters) + affine + relu + max pool 3x3/2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.affine = Affine(32)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2)


class FaceEncoder(nn.Module):
    """f(x): (N, 3, 150, 150) float RGB in 0..255 -> (N, 128) float descriptors.

    ``FaceEncoder()`` is randomly initialised (for training code);
    ``FaceEncoder.from_dlib()`` carries dlib's pretrained weights. Sub-modules are named
    after dlib's definition: ``stem``, ``level4`` .. ``level0`` (``level0`` is the last
    residual level before pooling) and ``fc``; fine-tuning may free ``fc``,
    ``level0`` + ``fc``, or everything.
    """

    def __init__(self, mean_rgb: tuple[float, float, float] = DLIB_MEAN_RGB) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = Stem()
        self.level4 = _level(32, 32, 3, downsample=False)
        self.level3 = _level(32, 64, 4, downsample=True)
        self.level2 = _level(64, 128, 3, downsample=True)
        self.level1 = _level(128, 256, 3, downsample=True)
        self.level0 = _level(256, 256, 1, downsample=True)
        self.fc = nn.Linear(256, EMBEDDING_DIM, bias=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / 256, exactly as dlib's input layer."""
        return (x - self.mean) / DLIB_INPUT_SCALE

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 256) pooled features before ``fc``."""
        x = self.stem(self.preprocess(x))
        x = self.level0(self.level1(self.level2(self.level3(self.level4(x)))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    # -- dlib weights ---------------------------------------------------------------------
    def dlib_layers(self) -> Iterator[nn.Module]:
        """The weighted layers in dlib's file order (input side first): conv, affine, fc."""
        yield self.stem.conv
        yield self.stem.affine
        for level in (self.level4, self.level3, self.level2, self.level1, self.level0):
            for unit in level:
                yield from (unit.conv1, unit.affine1, unit.conv2, unit.affine2)
        yield self.fc

    def load_dlib(self, network: Network) -> FaceEncoder:
        """Copy the weights of a parsed, paired dlib encoder file into this module."""
        copy_dlib_weights(self.dlib_layers(), network)
        mean = torch.tensor(network.input["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        self.mean.copy_(mean)
        return self

    @classmethod
    def from_dlib(
        cls,
        path: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        use_cache: bool = True,
    ) -> FaceEncoder:
        """dlib's pretrained encoder (``dlib_face_recognition_resnet_model_v1.dat`` from
        face_recognition_models unless ``path`` is given), in eval mode on ``device``
        (default: CUDA when present, else CPU).

        Raises:
            ModelFileError: the file is missing, truncated or not this network.
        """
        from desktop.device import pick_device
        from desktop.model_files import FACE_ENCODER, require

        file = Path(path) if path is not None else require(FACE_ENCODER)
        network = load_encoder_network(file, use_cache=use_cache)
        model = cls().load_dlib(network).eval()
        return model.to(pick_device("auto") if device is None else torch.device(device))


def load_encoder_network(path: str | os.PathLike[str], use_cache: bool = True) -> Network:
    """Parse (or load from the cache) and check dlib's face recognition network file."""
    return load_network(path, ENCODER_DEFINITION, "loss_metric", "input_rgb_image_sized",
                        use_cache=use_cache)


def copy_dlib_weights(modules: Iterator[nn.Module], network: Network) -> None:
    """Copy each weighted dlib layer into the matching torch module, in file order.

    Raises:
        ModelFileError: a count or shape mismatch (naming the file).
    """
    modules = list(modules)
    layers = network.parametrised()
    if len(modules) != len(layers):
        raise ModelFileError(f"{network.source}: {len(layers)} weighted layers, "
                             f"the torch network has {len(modules)}.")
    with torch.no_grad():
        for i, (module, layer) in enumerate(zip(modules, layers, strict=True)):
            if isinstance(module, Affine):
                targets = {"gamma": module.gamma, "beta": module.beta}
            elif isinstance(module, nn.Conv2d | nn.Linear):
                targets = {"weight": module.weight}
                if module.bias is not None:
                    targets["bias"] = module.bias
            else:  # pragma: no cover - dlib_layers yields only these
                raise TypeError(type(module))
            if set(targets) != set(layer.arrays):
                raise ModelFileError(f"{network.source}: layer {i} ({layer.describe()}) has "
                                     f"{sorted(layer.arrays)}, expected {sorted(targets)}.")
            for key, param in targets.items():
                value = torch.from_numpy(layer.arrays[key])
                if tuple(value.shape) != tuple(param.shape):
                    raise ModelFileError(
                        f"{network.source}: layer {i} ({layer.describe()}) {key} has shape "
                        f"{tuple(value.shape)}, expected {tuple(param.shape)}.")
                param.copy_(value)


# ------------------------------------------------------------------------------------------
# Inference on chips
# ------------------------------------------------------------------------------------------
def fold_affine_pairs(pairs: Iterable[tuple[nn.Module, str, str]]) -> None:
    """For each (parent, conv name, affine name): fold the affine into the convolution
    before it (w' = gamma * w, b' = gamma * b + beta) and replace it by an identity."""
    with torch.no_grad():
        for parent, conv_name, affine_name in pairs:
            conv, aff = getattr(parent, conv_name), getattr(parent, affine_name)
            if not isinstance(aff, Affine):
                continue
            conv.weight.mul_(aff.gamma.view(-1, 1, 1, 1))
            conv.bias.mul_(aff.gamma).add_(aff.beta)
            setattr(parent, affine_name, nn.Identity())


def fold_affines(encoder: FaceEncoder) -> FaceEncoder:
    """A copy of ``encoder`` for inference with every affine folded into its convolution.
    Same function, fewer passes over memory; the original is left untouched (keep
    training that one)."""
    fused = copy.deepcopy(encoder).eval()
    pairs = [(fused.stem, "conv", "affine")]
    for level in (fused.level4, fused.level3, fused.level2, fused.level1, fused.level0):
        for unit in level:
            pairs += [(unit, "conv1", "affine1"), (unit, "conv2", "affine2")]
    fold_affine_pairs(pairs)
    return fused


class FusedCPUForward:
    """The folded encoder's forward pass on oneDNN kernels (see :class:`PackedConv`):
    stem conv + ReLU fused; in each residual unit conv1 + ReLU fused, and for identity
    units conv2 + skip sum + ReLU fused. Downsampling units keep dlib's zero-padded sum."""

    def __init__(self, folded: FaceEncoder) -> None:
        self.stem_conv = PackedConv(folded.stem.conv, relu=True)
        self.stem_pool = folded.stem.pool
        self.units: list[tuple[PackedConv, PackedConv, nn.Module | None]] = []
        for level in (folded.level4, folded.level3, folded.level2, folded.level1,
                      folded.level0):
            for unit in level:
                identity = isinstance(unit.skip, nn.Identity)
                self.units.append((PackedConv(unit.conv1, relu=True),
                                   PackedConv(unit.conv2, relu=identity),
                                   None if identity else unit.skip))
        self.fc = folded.fc

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 150, 150) preprocessed, channels_last -> (N, 128) in x's dtype."""
        x = self.stem_pool(self.stem_conv(x))
        for conv1, conv2, pool in self.units:
            if pool is None:
                x = conv2(conv1(x), add=x)
            else:
                x = F.relu(add_prev(conv2(conv1(x)), pool(x)))
        return self.fc(x.mean(dim=(2, 3)))


#: Batches smaller than this run on one thread (by precision). Measured on 2 AVX-512/AMX
#: cores (``bench/face_engine.py``): the maps shrink to 9x9 and less, and splitting such small
#: convolutions between threads costs more than it saves. fp32 at batch 1: 7.7 ms on one
#: thread, 9.6 ms on two; bf16 at batch 1: 4.5 against 8.5 ms, and still ahead at batch 4.
SINGLE_THREAD_BELOW = {"fp32": 2, "bf16": 8}


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with at most ``n`` torch threads (None: unchanged)."""
    before = torch.get_num_threads()
    if n is None or n >= before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ChipEmbedder:
    """Runs a :class:`FaceEncoder` on uint8 chips: batched, on the encoder's device, in
    channels_last, with the affines folded into the convolutions.

    ``precision``: ``"fp32"`` (parity with dlib, about 1e-6 L2), or ``"bf16"`` (weights and
    activations in bfloat16: fast on CPUs with AMX/AVX-512 bf16 and on CUDA; about 0.01
    L2 from dlib, see the parity figures in docs/benchmarks.md).

    The weights are snapshotted when the embedder is made; after changing the encoder's
    weights (training), make a new embedder. Calls are serialised by a lock, so a worker
    thread can embed while other threads read earlier results.
    """

    def __init__(self, encoder: FaceEncoder, precision: str = "fp32", batch_size: int = 32):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.device = next(encoder.parameters()).device
        self.precision = cpu_precision(precision, self.device, what="Face encoder")
        precision = self.precision
        self.batch_size = max(1, int(batch_size))
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.mean = encoder.mean.detach().float().clone()  # preprocessing stays in fp32
        self.model = fold_affines(encoder).to(dtype=self.dtype, memory_format=torch.channels_last)
        self._fused = (FusedCPUForward(self.model)
                       if self.device.type == "cpu" and onednn_fused_conv_available() else None)
        self._lock = threading.Lock()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.mean) / DLIB_INPUT_SCALE).to(self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        if self._fused is not None:
            return self._fused(x).float()
        m = self.model
        x = m.stem(x)
        x = m.level0(m.level1(m.level2(m.level3(m.level4(x)))))
        return m.fc(x.mean(dim=(2, 3))).float()

    @torch.inference_mode()
    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips (or one (150, 150, 3) chip) -> (N, 128) float32."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), not {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        out = []
        with self._lock:
            for start in range(0, len(chips), self.batch_size):
                batch = np.ascontiguousarray(chips[start:start + self.batch_size])
                x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
                small = (self.device.type == "cpu"
                         and len(batch) < SINGLE_THREAD_BELOW[self.precision])
                with _torch_threads(1 if small else None):
                    out.append(self._forward(x).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)
