"""VGG19 feature extractor with the original (Caffe) weights, cut at the deepest layer a job needs.

Input convention (Caffe, as the weights were trained): BGR channels, values 0..255, minus
the ImageNet mean pixel ``(B, G, R) = (103.939, 116.779, 123.68)``; tensors are
``(N, 3, H, W)`` float. :func:`preprocess` and :func:`deprocess` convert from and to
``(H, W, 3)`` RGB uint8 images.

Layer names follow neural-style's scheme: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1,
conv2_1, ..., relu5_4`` (:data:`LAYER_NAMES`). A layer's activation ``a[l]`` has shape
``(N, n_C, n_H, n_W)``; every pool halves n_H and n_W (floor).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from desktop.style.conv_relu import FrozenConvReLU, GradientSink, MaxPool2x2
from desktop.style.vgg_weights import CONV_CHANNELS, KERNEL_SIZE, load_vgg19_weights

#: Convs per block of VGG19 (configuration "E").
BLOCK_CONVS = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(BLOCK_CONVS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        if block < len(BLOCK_CONVS):
            names.append(f"pool{block}")
    return tuple(names)


#: Every VGG19 feature layer in network order, ``conv1_1`` ... ``relu5_4`` (36 names).
LAYER_NAMES: tuple[str, ...] = _layer_names()
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}
#: The layers whose activations losses can use (every conv and relu).
FEATURE_LAYERS: tuple[str, ...] = tuple(n for n in LAYER_NAMES if not n.startswith("pool"))

#: ImageNet mean pixel in BGR order, 0..255 (Caffe preprocessing).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
POOLINGS = ("max", "avg")


def check_layer(name: str) -> str:
    """``name`` if it is a VGG19 layer name, else a ValueError listing the valid names."""
    if name not in LAYER_INDEX:
        raise ValueError(f"unknown VGG19 layer {name!r}; valid: {', '.join(LAYER_NAMES)}")
    return name


def deepest_layer(layers: Iterable[str]) -> str:
    """The layer furthest down the network among ``layers``."""
    return max((check_layer(n) for n in layers), key=LAYER_INDEX.__getitem__)


def downsampling(layer: str) -> int:
    """How many times smaller than the input ``layer``'s maps are (1, 2, 4, 8 or 16)."""
    pools = sum(1 for n in LAYER_NAMES[: LAYER_INDEX[check_layer(layer)]] if n.startswith("pool"))
    return 2**pools


def layer_shape(layer: str, height: int, width: int) -> tuple[int, int, int]:
    """``(n_C, n_H, n_W)`` of ``layer``'s activation for an input of ``height x width``."""
    n_h, n_w = height, width
    for name in LAYER_NAMES[: LAYER_INDEX[check_layer(layer)]]:
        if name.startswith("pool"):
            n_h, n_w = n_h // 2, n_w // 2
    conv = "conv" + layer[4:] if layer.startswith("relu") else layer
    channels = CONV_CHANNELS[conv][1] if conv in CONV_CHANNELS else 0
    if layer.startswith("pool"):
        channels = CONV_CHANNELS[f"conv{layer[4:]}_{BLOCK_CONVS[int(layer[4:]) - 1]}"][1]
    return channels, n_h, n_w


def preprocess(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` RGB uint8 (or float 0..255) -> ``(1, 3, H, W)`` float32 Caffe input."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    bgr = np.ascontiguousarray(image[:, :, ::-1], dtype=np.float32)
    x = torch.from_numpy(bgr).permute(2, 0, 1).unsqueeze(0)
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean).contiguous()


def deprocess(x: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` Caffe input -> ``(H, W, 3)`` RGB uint8 (clipped, rounded).

    Runs after every iteration (the live view), so in few passes: channels flipped to RGB
    and the mean added in one, clipped and rounded in place, then written interleaved.
    """
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1], dtype=torch.float32,
                            device=x.device).view(3, 1, 1)
    rgb = torch.add(x.detach()[0].flip(0).float(), mean_rgb).clamp_(0, 255).round_()
    out = torch.empty((x.shape[2], x.shape[3], 3), dtype=torch.uint8)
    out.copy_(rgb.permute(1, 2, 0))  # also brings it to the CPU
    return out.numpy()


class VGG19Features(nn.Module):
    """VGG19's conv/relu/pool stack from ``conv1_1`` down to ``last_layer`` only.

    ``forward(x, layers)`` runs the input through the stack just as far as the deepest of
    ``layers`` and returns ``{name: activation}`` for each of them. The weights are frozen
    (``requires_grad=False``): only the input gets gradients.

    With ``fused=True`` each conv and its ReLU run as one
    :class:`~desktop.style.conv_relu.FrozenConvReLU` (same values, faster backward on CPUs),
    except where the conv's own pre-ReLU output is asked for, and max pooling runs as
    :class:`~desktop.style.conv_relu.MaxPool2x2` (same values, faster backward).
    """

    def __init__(self, last_layer: str = "relu5_4", pooling: str = "max",
                 weights: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 fused: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        weights = load_vgg19_weights() if weights is None else weights
        self.pooling = pooling
        self.fused = fused
        #: Fused mode: run conv + ReLU + max pool as one step where the ReLU output is not
        #: asked for (exact; saves the full-size ReLU mask pass and its memory).
        self.fold_pools = True
        self.names = LAYER_NAMES[: LAYER_INDEX[check_layer(last_layer)] + 1]
        self.layers = nn.ModuleList()
        for name in self.names:
            self.layers.append(self._make_layer(name, weights))
        self.requires_grad_(False)
        self.eval()

    def _make_layer(self, name: str,
                    weights: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> nn.Module:
        if name.startswith("conv"):
            c_in, c_out = CONV_CHANNELS[name]
            conv = nn.Conv2d(c_in, c_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2)
            kernel, bias = weights[name]
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.asarray(kernel)))
                conv.bias.copy_(torch.from_numpy(np.asarray(bias)))
            return FrozenConvReLU(conv) if self.fused else conv
        if name.startswith("relu"):
            return nn.ReLU(inplace=False)
        if self.pooling == "avg":
            return nn.AvgPool2d(2, 2)
        return MaxPool2x2() if self.fused else nn.MaxPool2d(2, 2)

    @property
    def last_layer(self) -> str:
        return self.names[-1]

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        stop = LAYER_INDEX[deepest_layer(wanted)]
        if stop >= len(self.names):
            raise ValueError(f"layer {LAYER_NAMES[stop]} is below this network's last layer "
                             f"{self.last_layer}")
        out: dict[str, torch.Tensor] = {}
        i = 0
        while i <= stop:
            name, layer = self.names[i], self.layers[i]
            if isinstance(layer, FrozenConvReLU):
                if name in wanted or i == stop:
                    x = layer.conv(x)  # its pre-ReLU output is wanted
                else:
                    # x, handed on, is also an output: a style loss on it leaves its
                    # gradient for this layer's backward to add (see GradientSink)
                    sink = None
                    if x.requires_grad and any(x is v for v in out.values()):
                        sink = GradientSink()
                        x.grad_sink = sink  # type: ignore[attr-defined]
                    if (self.fold_pools and i + 2 <= stop
                            and isinstance(self.layers[i + 2], MaxPool2x2)
                            and self.names[i + 1] not in wanted):
                        x = layer.forward_pooled(x, sink)  # conv + ReLU + max pool in one step
                        i += 2
                    else:
                        x = layer(x, sink)  # conv + ReLU in one step
                        i += 1
                    name = self.names[i]
            elif isinstance(layer, nn.ReLU) and self.names[i - 1] not in wanted:
                x = torch.relu_(x)  # in place: the conv output is needed by no one else
            else:
                x = layer(x)
            if name in wanted:
                out[name] = x
            i += 1
        return out
