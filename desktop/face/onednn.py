"""oneDNN convolutions with pre-packed kernels and fused ReLU / sums, for CPU inference.

Shared by the face encoder and detector (frozen weights, no autograd). The style loop has
its own variant with an adjoint backward (:mod:`desktop.style.conv_relu`).
"""

from __future__ import annotations

import torch
from torch import nn


class PackedConv:
    """A frozen ``nn.Conv2d`` run by oneDNN with its kernel laid out once, in oneDNN's own
    blocked format, optionally fused with what follows it: ``relu(conv(x))`` or
    ``relu(conv(x) + other)``.

    For CPU inference in fp32 or bf16 on channels_last maps, with the weights in the
    input's dtype. PyTorch's ``conv2d`` re-lays out each kernel on every call, and at
    batch 1 it takes its generic (im2col) kernel for most of the encoder's layers; this
    path does neither, and the fused ReLU and sum save passes over memory. The kernel is
    packed for the first input's shape; other shapes reuse it (oneDNN converts if it must;
    measured on the encoder's batch sizes and the detector's frame sizes: same results,
    no slower).
    """

    def __init__(self, conv: nn.Conv2d, relu: bool = False) -> None:
        self.weight = conv.weight.detach()
        self.bias = conv.bias.detach() if conv.bias is not None else None
        self.padding = list(conv.padding)  # type: ignore[arg-type]
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self._packed: torch.Tensor | None = None

    def _kernel(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed is None:
            self._packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups,
                list(x.shape))
        return self._packed

    def __call__(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """``conv(x)`` (then ``+ add``, then ReLU when fused): (N, C, H, W) channels_last."""
        kernel = self._kernel(x)
        if add is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, kernel, self.bias, self.padding, self.stride, self.dilation, self.groups,
                "relu" if self.relu else "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, add, kernel, self.bias, self.padding, self.stride, self.dilation, self.groups,
            "add", 1.0, "relu" if self.relu else None, [], "")
