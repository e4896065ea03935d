"""How the VGG network runs: device, number format and memory layout.

Choices (``StyleSettings.precision``):

* ``fp32``: float32 weights and activations, NCHW. The reference path.
* ``bf16``: on the CPU, bfloat16 weights and activations in channels_last layout, so
  oneDNN runs the convolutions on AMX / AVX-512 BF16 units; on CUDA, autocast to bf16
  with channels_last.
* ``auto``: bf16 on CPUs with native bf16 (AMX or AVX-512 BF16) and on CUDA devices that
  support it, else fp32.

Whatever the network's format, the image G, its gradient, the optimiser state, the Gram
matrices and the losses stay fp32 (:mod:`desktop.style.losses` casts activations up
before any sum), which is what keeps bf16's quality cost small; see
``bench/style_speed.py`` for the measured speed and quality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from desktop.device import cpu_precision, describe_device, pick_device, winograd_conv
from desktop.errors import FacestyleError

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Precision:
    """Resolved run mode: ``name`` is ``fp32`` or ``bf16``."""

    name: str
    device: torch.device

    @property
    def weight_dtype(self) -> torch.dtype:
        """Dtype of the network's weights (CUDA bf16 keeps fp32 weights under autocast)."""
        return torch.bfloat16 if self.name == "bf16" and self.device.type == "cpu" else \
            torch.float32

    @property
    def channels_last(self) -> bool:
        return self.name == "bf16"

    @property
    def fused(self) -> bool:
        """Run conv+ReLU pairs as :class:`~desktop.style.conv_relu.FrozenConvReLU` (CPU)."""
        return self.device.type == "cpu"

    @property
    def autocast(self) -> bool:
        return self.name == "bf16" and self.device.type == "cuda"

    def describe(self) -> str:
        """The device line, e.g. ``CPU (AVX2, 2 threads, Winograd)`` (its fp32 convolutions
        as Winograd transforms, :func:`~desktop.device.winograd_conv`)."""
        text = describe_device(self.device)
        if self.winograd and text.endswith(")"):
            text = text[:-1] + ", Winograd)"
        return text

    @property
    def winograd(self) -> bool:
        """Whether the network's 3x3 convolutions run as NNPACK's Winograd (fp32, CPU)."""
        return self.name == "fp32" and self.device.type == "cpu" and winograd_conv()


def resolve_precision(pref: str, device: torch.device) -> Precision:
    """Turn ``auto|fp32|bf16`` into a concrete :class:`Precision` for ``device``."""
    if pref not in PRECISIONS:
        raise FacestyleError(f"Unknown precision {pref!r}.", "Use auto, fp32 or bf16.")
    return Precision(cpu_precision(pref, device, what="Style network"), device)


def resolve(device_pref: str, precision_pref: str) -> Precision:
    """Device and precision from the settings' strings (``auto`` picks CUDA when present)."""
    return resolve_precision(precision_pref, pick_device(device_pref))


def prepare_network(net: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """Move ``net`` to the device, dtype and memory layout ``precision`` calls for."""
    net = net.to(device=precision.device, dtype=precision.weight_dtype)
    if precision.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def network_input(x: torch.Tensor, precision: Precision) -> torch.Tensor:
    """The fp32 image ``x`` (1, 3, H, W) cast for the network (differentiably)."""
    memory_format = torch.channels_last if precision.channels_last else torch.preserve_format
    return x.to(dtype=precision.weight_dtype, memory_format=memory_format)  # one copy at most


@contextlib.contextmanager
def running(precision: Precision) -> Iterator[None]:
    """Context for the network's forward pass (CUDA autocast when asked)."""
    if precision.autocast:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def features(net: torch.nn.Module, x: torch.Tensor, layers: Iterable[str],
             precision: Precision) -> dict[str, torch.Tensor]:
    """Activations of ``x`` at ``layers``, computed in ``precision``."""
    with running(precision):
        return net(network_input(x, precision), layers)
