"""Work tensors that a job's evaluations reuse instead of allocating afresh each time.

A style job evaluates J and dJ/dG hundreds of times on tensors of the same shapes. Some
intermediates are as large as the biggest activation (64 channels at full resolution:
25 MB at 512 px in bf16) and live for one step of the backward pass: the ReLU-masked
gradient that an adjoint convolution reads at once, the unpooled gradient of a max pool,
a style loss's gradient, a max pool's argmax indices. Allocated afresh each time, maps
that large come back from the C library as new pages (thousands of page faults per
iteration at 512 px); reused, they do not. Measured at 512 px on tubingen + starry_night,
alternating blocks of iterations within one job: 200 ms an iteration with reuse against
225 ms without. Small ones are better fresh (see :data:`MIN_BYTES`).

:class:`Scratch` keeps one growing buffer per *role*; :func:`work_like` hands out a view
of it shaped like a given tensor when a scratch is active on this thread
(:meth:`Scratch.active`), and a fresh tensor otherwise, so code that never activates one
(tests, the target computation, other callers) behaves exactly as before.

Rules the callers keep, so that a reused buffer is never overwritten while still needed:

* a role names one use that is alive at most once at a time: the mask and the unpooled
  gradient are used up by the same layer's backward step (layers run one at a time, so
  every layer shares these two); a style loss's gradient lives until the layer that made
  its activation has read it (the layer above adds its own gradient into it first), and
  a pool's indices until their layer's backward step, so those roles name the loss or
  the layer;
* a job's graph is evaluated and differentiated once before the next evaluation starts;
* a scratch belongs to one job on one thread and is dropped with it (the job's
  :class:`~desktop.style.optimize.Problem`, one per scale).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import torch

_current = threading.local()

#: Smaller work tensors are allocated fresh each time: the allocator hands those back
#: from memory that is still in cache, which a buffer reused an iteration later is not
#: (measured at 256 px: reusing 6 MB maps made an iteration 1-1.5 ms slower, not faster).
MIN_BYTES = 8 * 2**20


class Scratch:
    """Reusable work buffers, one per role, for one job's evaluations (see module doc)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[Hashable, torch.dtype, torch.device], torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return sum(b.numel() * b.element_size() for b in self._buffers.values())

    def take(self, role: Hashable, shape: torch.Size | tuple[int, ...], dtype: torch.dtype,
             device: torch.device, channels_last: bool = False) -> torch.Tensor:
        """An uninitialised dense tensor (channels_last if asked), reused per role.

        Tensors under :data:`MIN_BYTES` are freshly allocated instead.
        """
        n = math.prod(shape)
        if n * dtype.itemsize < MIN_BYTES:
            return _fresh(shape, dtype, device, channels_last)
        key = (role, dtype, device)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < n:
            self._buffers.pop(key, None)  # let the old one go before the larger one
            buffer = self._buffers[key] = torch.empty(n, dtype=dtype, device=device)
        flat = buffer[:n]
        if channels_last:
            b, c, h, w = shape
            return flat.view(b, h, w, c).permute(0, 3, 1, 2)
        return flat.view(shape)

    @contextmanager
    def active(self) -> Iterator[Scratch]:
        """Make this the scratch that :func:`work_like` uses on this thread, for the block."""
        previous = getattr(_current, "scratch", None)
        _current.scratch = self
        try:
            yield self
        finally:
            _current.scratch = previous


def work_like(role: Hashable, like: torch.Tensor,
              shape: torch.Size | tuple[int, ...] | None = None,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uninitialised work space with ``like``'s device and layout, and its shape and dtype
    unless given: from the active :class:`Scratch`, else freshly allocated.

    The layout is channels_last when ``like`` is channels_last-contiguous (and not also
    plain contiguous), plain contiguous otherwise. How long the tensor may live: see the
    module doc.
    """
    shape = like.shape if shape is None else shape
    dtype = like.dtype if dtype is None else dtype
    channels_last = (like.dim() == 4 and len(shape) == 4 and not like.is_contiguous()
                     and like.is_contiguous(memory_format=torch.channels_last))
    scratch = getattr(_current, "scratch", None)
    if scratch is None:
        return _fresh(shape, dtype, like.device, channels_last)
    return scratch.take(role, shape, dtype, like.device, channels_last)


def _fresh(shape: torch.Size | tuple[int, ...], dtype: torch.dtype, device: torch.device,
           channels_last: bool) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=device,
                       memory_format=torch.channels_last if channels_last
                       else torch.contiguous_format)
