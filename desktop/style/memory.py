"""How much memory a style job needs, how much the machine has, and a size that fits.

:func:`job_bytes` models a job's peak (bytes above what the process used before it),
calibrated against peaks measured with ``/proc/self/status`` VmHWM on tubingen +
starry_night (bf16 at 256/512/768 px and fp32 at 256 px, 52 L-BFGS iterations so the
history is full; the model is 0-15% above each measurement):

* a fixed 100 MB (allocator slack, oneDNN scratch buffers);
* the network's weights down to the deepest layer, twice (each conv keeps its kernel and
  the transposed kernel of its backward pass), 2 bytes a value in bf16, 4 in fp32;
* ``ACTIVATION_FACTOR`` times the activations of every layer down to the deepest one
  (conv and relu counted separately) in the network's format: what the backward pass
  keeps plus its transient gradients;
* the content layer's activation in fp32, and its gradient;
* the image G, its gradient and a few work vectors (4), plus the optimiser's
  ``2 * history`` image-sized fp32 vectors (L-BFGS's s and y pairs).
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from desktop.style.vgg import LAYER_INDEX, LAYER_NAMES, layer_shape
from desktop.style.vgg_weights import CONV_CHANNELS, KERNEL_SIZE

#: Fixed overhead of a running job beyond the tensors (allocator slack, oneDNN scratch).
BASE_BYTES = 100 * 2**20
#: Multiplier on the summed activations for what the backward pass keeps and creates.
ACTIVATION_FACTOR = 2.0


def weight_bytes(last_layer: str, bytes_per_value: int) -> int:
    """Bytes of the conv weights and biases from conv1_1 down to ``last_layer``."""
    total = 0
    for name in LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]:
        if name in CONV_CHANNELS:
            c_in, c_out = CONV_CHANNELS[name]
            total += (c_in * c_out * KERNEL_SIZE * KERNEL_SIZE + c_out) * bytes_per_value
    return total


def job_bytes(height: int, width: int, last_layer: str, content_layer: str | None,
              bytes_per_value: int, history: int) -> int:
    """Estimated peak bytes of one scale of a job on a ``height x width`` image."""
    activations = 0
    for name in LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]:
        c, h, w = layer_shape(name, height, width)
        activations += c * h * w
    content = 0
    if content_layer:
        c, h, w = layer_shape(content_layer, height, width)
        content = c * h * w
    image = 3 * height * width
    return int(BASE_BYTES
               + 2 * weight_bytes(last_layer, bytes_per_value)
               + ACTIVATION_FACTOR * activations * bytes_per_value
               + 2 * content * 4
               + image * 4 * (4 + 2 * history))


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new job on ``device`` in bytes, or None where it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return available_ram()


def available_ram() -> int | None:
    """Available system RAM in bytes (MemAvailable on Linux), None if unknown."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    if sys.platform == "win32":
        class MemoryStatus(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong),
                        ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong),
                        ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("sullAvailExtendedVirtual", ctypes.c_ulonglong)]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullAvailPhys)
        return None
    try:  # other Unix: free pages (an underestimate on macOS, which caches freely)
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
