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
``conv2d`` + in-place ReLU otherwise, bit-identical). Where oneDNN's op is used, both
kernels are also pre-packed into its blocked layout, once per input shape.

On CPUs whose best oneDNN kernels are AVX2 (no AVX-512), fp32 convolutions run as
Winograd transforms instead (NNPACK, see :func:`desktop.device.winograd_conv`): fewer
multiplications where the direct kernels are already at the cores' peak.
"""

from __future__ import annotations

from collections.abc import Hashable

import torch
import torch.nn.functional as F
from torch import nn

from desktop.device import cpu_bf16_kernels, onednn_fused_conv_available, winograd_conv
from desktop.style.scratch import work_like

_FUSED_DTYPES = (torch.float32, torch.bfloat16)
_PAD = [1, 1]
_ONE = [1, 1]
_TWO = [2, 2]
_ZERO = [0, 0]


#: The smallest map (H x W positions) whose convolutions go through NNPACK's Winograd.
#: NNPACK transforms all ``C_in x C_out`` kernels on every call (about 12 ms for a 512 x 512
#: layer on two AVX2 cores, whatever the map's size), which only pays where the map is
#: large. Measured per layer, forward and adjoint, on 2 AVX2 cores (emulated): 3,072
#: positions and more, Winograd wins (512 channels at 64x48: 42 against 72 ms; 128 at
#: 64x48: 3.3 against 4.4 ms); at 768 the direct kernels win (512 channels at 32x24: 18.1
#: against 19.1 ms; 256 at 32x24: 4.4 against 5.4) and below that by far (512 at 16x12:
#: 4.9 against 13.4 ms). So a 128 px scale's evaluation takes half as long.
WINOGRAD_MIN_POSITIONS = 1536


def _winograd_applies(x: torch.Tensor) -> bool:
    """Whether ``x`` (an input or a gradient map) goes through NNPACK's Winograd kernels:
    fp32 NCHW on the CPU, where :func:`~desktop.device.winograd_conv` chose them, with at
    least :data:`WINOGRAD_MIN_POSITIONS` positions."""
    return (x.dtype == torch.float32 and x.device.type == "cpu" and x.dim() == 4
            and x.shape[2] * x.shape[3] >= WINOGRAD_MIN_POSITIONS
            and x.is_contiguous() and winograd_conv())


def _winograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
              ) -> torch.Tensor:
    """3x3, stride 1, padding 1 convolution of NCHW fp32 ``x`` as NNPACK's Winograd.

    NNPACK runs on a thread pool of its own, which torch creates at the first such call
    in the process with the *calling* thread's ``torch.get_num_threads()`` and which keeps
    that size and the caller's OS priority for good: measured on 2 AVX2 cores, a pool first
    made by a one-thread caller stayed at one thread (a 128-channel 192x256 convolution
    100-170 ms instead of 45-60 ms) after ``set_num_threads(2)``. So the first caller must
    be a job thread with the threads (and priority) every later job should have: in the
    app, every network job runs on a lowered thread with every core."""
    return torch._nnpack_spatial_convolution(x, weight, bias, _PAD)


class GradientSink:
    """A gradient for an activation that the next layer's backward adds in its own pass.

    A loss on an activation (style or content) and the next layer both send it a gradient,
    which autograd would sum in a separate pass over the full map (at relu1_1 on 256x192
    about 3.7 ms of a 70 ms iteration, memory-bound). Instead, the network hands the next
    fused layer a sink and tags the activation with it (``grad_sink``); the loss's backward
    (it runs first: the loss nodes are the newest in the graph) leaves its gradient in the
    sink, and the layer's adjoint convolution adds it while writing its output (oneDNN's
    in-place "add" post-op). Should the order ever differ, the loss returns its gradient to
    autograd as usual: :attr:`consumed` tells it the layer has already gone.
    """

    __slots__ = ("consumed", "pending")

    def __init__(self) -> None:
        self.pending: torch.Tensor | None = None
        self.consumed = False

    def deposit(self, grad: torch.Tensor) -> bool:
        """Leave ``grad`` for the layer; False (keep it for autograd) if the layer has gone.

        Several losses on one activation (a style and the content loss) add up here.
        """
        if self.consumed:
            return False
        if self.pending is None:
            self.pending = grad
        elif grad.shape == self.pending.shape and grad.dtype == self.pending.dtype:
            self.pending = self.pending.add_(grad)
        else:
            return False
        return True

    def take(self) -> torch.Tensor | None:
        """The deposited gradient (once); marks the sink consumed."""
        grad, self.pending, self.consumed = self.pending, None, True
        return grad


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
        self._packed: tuple[torch.Tensor, torch.Tensor] | None = None
        self._packed_key: tuple | None = None

    def _apply(self, fn, recurse=True):
        self._packed, self._packed_key = None, None  # device/dtype/layout change: repack
        return super()._apply(fn, recurse)

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution alone (plain autograd), for when its pre-ReLU output is wanted."""
        return F.conv2d(x, self.weight, self.bias, padding=1)

    def _packed_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """W and W^T in oneDNN's own layout for inputs shaped like ``x`` (None: not on CPU).

        Packed once per input shape (one shape kept: a job's size), so oneDNN does not
        re-lay-out the kernels on every call (a fifth of the conv time at 256 px in bf16).
        """
        if not (x.device.type == "cpu" and x.dtype in _FUSED_DTYPES
                and x.dtype == self.weight.dtype and onednn_fused_conv_available()):
            return None
        if x.dtype == torch.bfloat16 and not cpu_bf16_kernels():
            return None  # AVX2-only CPU: oneDNN refuses bf16 here; torch's own conv2d works
        key = (tuple(x.shape), x.dtype)
        if self._packed_key != key:
            reorder = torch.ops.mkldnn._reorder_convolution_weight
            size = list(x.shape)
            out_size = [size[0], self.weight.shape[0], *size[2:]]
            self._packed = (reorder(self.weight, _PAD, _ONE, _ONE, 1, size),
                            reorder(self.weight_t, _PAD, _ONE, _ONE, 1, out_size))
            self._packed_key = key
        return self._packed

    def conv_relu(self, x: torch.Tensor) -> torch.Tensor:
        if _winograd_applies(x):
            return torch.relu_(_winograd(x, self.weight, self.bias))
        packed = self._packed_weights(x)
        if packed is not None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, packed[0], self.bias, _PAD, _ONE, _ONE, 1, "relu", [], "")
        return torch.relu_(F.conv2d(x, self.weight, self.bias, padding=1))

    def adjoint(self, grad: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """``W^T * grad`` (``+ add``): the gradient with respect to the convolution's input.

        ``add`` (the input's shape) is summed in place while the convolution writes its
        output, where oneDNN can (same dtype, channels_last); otherwise in a separate pass.
        """
        if _winograd_applies(grad):
            out = _winograd(grad, self.weight_t, None)
            return out if add is None else out.add_(add)
        packed = self._packed_weights_for_grad(grad)
        if packed is not None:
            channels_last = torch.channels_last
            if add is not None and add.dtype == grad.dtype and add.is_contiguous(
                    memory_format=channels_last) and grad.is_contiguous(
                    memory_format=channels_last):
                return torch.ops.mkldnn._convolution_pointwise_.binary(
                    add, grad, packed, None, _PAD, _ONE, _ONE, 1, "add", 1.0, None, [], "")
            out = torch.ops.mkldnn._convolution_pointwise(
                grad, packed, None, _PAD, _ONE, _ONE, 1, "none", [], "")
        else:
            out = F.conv2d(grad, self.weight_t, None, padding=1)
        return out if add is None else out.add_(add)

    def _packed_weights_for_grad(self, grad: torch.Tensor) -> torch.Tensor | None:
        key = ((grad.shape[0], self.weight.shape[1], *grad.shape[2:]), grad.dtype)
        if self._packed_key != key or self._packed is None:
            return None  # the forward of the same shape packs both
        return self._packed[1]

    def forward(self, x: torch.Tensor, sink: GradientSink | None = None) -> torch.Tensor:
        return _ConvReLUFunction.apply(x, self, sink)

    def forward_pooled(self, x: torch.Tensor, sink: GradientSink | None = None
                       ) -> torch.Tensor:
        """``maxpool2x2(relu(conv(x)))`` in one step (see :class:`_ConvReLUPoolFunction`)."""
        return _ConvReLUPoolFunction.apply(x, self, sink)


def _take(sink: GradientSink | None) -> torch.Tensor | None:
    return sink.take() if sink is not None else None


_HALF_FLOATS = (torch.bfloat16, torch.float16)


def relu_masked(grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``grad . [y > 0]`` (ReLU's backward, given its output ``y >= 0``), laid out like ``y``.

    Written into work space (:func:`~desktop.style.scratch.work_like`): use it up before
    the backward step returns. For bf16 and fp16 the comparison runs on the int16 view of
    the same bits, where ``y <= 0`` holds for exactly the values ``<= 0`` (+0, -0, the
    negatives; only a NaN with its sign bit set differs, and a NaN fails the job anyway)
    and the kept gradients are copied bit for bit: the same result as the float kernel,
    which converts each element to fp32 and back. Measured in a 256 px bf16 job: the 13
    masks of an iteration took 3.6 ms instead of 6.2 ms, the iteration 65 ms instead of 68.
    """
    if grad.dtype != y.dtype:
        return torch.ops.aten.threshold_backward(grad, y, 0)
    out = work_like("relu mask", y)
    if y.dtype in _HALF_FLOATS:
        grad, y, bits = grad.view(torch.int16), y.view(torch.int16), out.view(torch.int16)
    else:
        bits = out
    torch.ops.aten.threshold_backward.grad_input(grad, y, 0, grad_input=bits)
    return out


class _ConvReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: FrozenConvReLU,  # type: ignore[override]
                sink: GradientSink | None = None) -> torch.Tensor:
        y = layer.conv_relu(x)
        ctx.layer = layer
        ctx.sink = sink
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        grad = relu_masked(grad_y, y)  # dJ/dy . [y > 0], in y's layout
        return ctx.layer.adjoint(grad, _take(ctx.sink)), None, None


class MaxPool2x2(nn.Module):
    """2x2, stride 2 max pooling whose backward pass is an unpooling.

    The gradient of max pooling sends each output gradient to the input position that
    held the maximum. ``max_unpool2d`` with the pooling's own indices does exactly that
    (bit-identical to autograd's ``max_pool2d_with_indices_backward``, ties resolved the
    same way since the same indices are used) and, measured on channels_last bf16 maps,
    2.5 times faster, and on both threads.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MaxPoolFunction.apply(x)


class _MaxPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y, indices = F.max_pool2d_with_indices(x, 2, 2)
        ctx.save_for_backward(indices)
        ctx.input_size = tuple(x.shape[2:])
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        (indices,) = ctx.saved_tensors
        return F.max_unpool2d(grad_y, indices, 2, 2, output_size=ctx.input_size)


def _max_pool_2x2(y: torch.Tensor, role: Hashable) -> tuple[torch.Tensor, torch.Tensor]:
    """2x2 max pooling of ``y`` and its argmax indices, the indices in work space.

    The indices (int64, as large as ``y`` in bf16) are read only by this layer's own
    backward step, which runs before the layer's next forward; ``role`` names the layer.
    """
    out_size = (*y.shape[:2], y.shape[2] // 2, y.shape[3] // 2)
    z = y.new_empty(0)  # fresh (it is the layer's output); the op sizes and lays it out
    indices = work_like(role, y, out_size, torch.int64)
    return torch._C._nn.max_pool2d_with_indices(y, _TWO, _TWO, _ZERO, _ONE, False,
                                                out=(z, indices))


def _unpool(grad: torch.Tensor, indices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """2x2 max pooling's backward: ``grad`` sent to the positions in ``indices``, into work
    space of the pooling input's size (see :func:`relu_masked`); laid out like ``grad``."""
    out = work_like("unpool", grad, (*grad.shape[:2], *size))
    return torch._C._nn.max_unpool2d(grad, indices, list(size), out=out)


class _ConvReLUPoolFunction(torch.autograd.Function):
    """``z = maxpool2x2(relu(conv(x)))`` with the ReLU's mask applied *after* the pooling.

    z takes each window's largest ReLU output, so the ReLU derivative at the position that
    wins is ``[z > 0]``; every other position gets no gradient from the pooling anyway.
    Masking the (four times smaller) pooled gradient is therefore exact, and the full-size
    ReLU output need not be kept for the backward pass at all.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: FrozenConvReLU,  # type: ignore[override]
                sink: GradientSink | None = None) -> torch.Tensor:
        y = layer.conv_relu(x)
        z, indices = _max_pool_2x2(y, ("pool indices", layer))
        ctx.layer = layer
        ctx.sink = sink
        ctx.input_size = tuple(y.shape[2:])
        ctx.save_for_backward(z, indices)
        return z

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):  # type: ignore[override]
        z, indices = ctx.saved_tensors
        grad = relu_masked(grad_z, z)  # dJ/dz . [z > 0]
        grad = _unpool(grad, indices, ctx.input_size)
        return ctx.layer.adjoint(grad, _take(ctx.sink)), None, None
