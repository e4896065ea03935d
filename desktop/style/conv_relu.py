"""``relu(conv(x))`` for VGG's frozen 3x3 convolutions, as one autograd step that is cheap on CPUs.

Style transfer differentiates with respect to the *image*, never the weights, so each
conv+ReLU pair needs just

    forward:   y = relu(W * x + b)
    backward:  dJ/dx = W^T * (dJ/dy . [y > 0])

where ``W^T *`` (the adjoint of a stride-1, padding-1 3x3 convolution) is itself a
convolution, with the kernel's in/out axes swapped and its taps flipped:
``W^T[i, o, u, v] = W[o, i, 2-u, 2-v]``. :class:`FrozenConvReLU` precomputes that kernel once,
so both passes are plain forward convolutions. Measured on an AMX CPU in bf16 this avoids
what autograd's generic convolution backward does on every call (re-laying out the
weights for "backward data", the slowest part for the 512-channel layers) and the separate
ReLU pass (oneDNN fuses it into the forward convolution when its fused op is present; plain
``conv2d`` + in-place ReLU otherwise, bit-identical).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_FUSED_DTYPES = (torch.float32, torch.bfloat16)
_PAD = [1, 1]
_ONE = [1, 1]


def _fused_op_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(
            torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


class FrozenConvReLU(nn.Module):
    """A 3x3, padding 1 convolution followed by ReLU, with frozen weights and no weight grads."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1):
            raise ValueError("FrozenConvReLU handles 3x3, stride 1, padding 1 convolutions")
        self.register_buffer("weight", conv.weight.detach().clone())
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None
                             else torch.zeros(conv.out_channels))
        # W^T: in/out swapped, taps flipped; the adjoint convolution's kernel.
        self.register_buffer("weight_t", self.weight.transpose(0, 1).flip(2, 3).contiguous())

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution alone (plain autograd), for when its pre-ReLU output is wanted."""
        return F.conv2d(x, self.weight, self.bias, padding=1)

    def conv_relu(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype in _FUSED_DTYPES and _fused_op_available():
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, _PAD, _ONE, _ONE, 1, "relu", [], "")
        return torch.relu_(F.conv2d(x, self.weight, self.bias, padding=1))

    def adjoint(self, grad: torch.Tensor) -> torch.Tensor:
        """``W^T * grad``: the gradient with respect to the convolution's input."""
        return F.conv2d(grad, self.weight_t, None, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ConvReLUFunction.apply(x, self)


class _ConvReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: FrozenConvReLU) -> torch.Tensor:  # type: ignore[override]
        y = layer.conv_relu(x)
        ctx.layer = layer
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad_y, y, 0)  # dJ/dy . [y > 0]
        if not grad.is_contiguous(memory_format=torch.channels_last) and \
                y.is_contiguous(memory_format=torch.channels_last):
            grad = grad.contiguous(memory_format=torch.channels_last)
        return ctx.layer.adjoint(grad), None
