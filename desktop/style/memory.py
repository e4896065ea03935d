"""How much memory a style job needs, how much the machine has, and a size that fits.

:func:`estimate_memory` is a model of a job's peak (bytes), calibrated against measured
peaks (``bench/style_speed.py`` prints estimate and measurement side by side):

* the network's weights down to the deepest layer (4 bytes fp32, 2 bytes bf16 a value);
* per layer down to the deepest one, the activation kept for the backward pass and its
  gradient, in the network's format, times a factor for the temporaries of the
  backward pass;
* an fp32 copy of each style/content layer's activation (losses run in fp32) and its
  gradient;
* the image G, its gradient, and L-BFGS's history: ``2 * history * 3 H W`` fp32 values.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from desktop.style.vgg import LAYER_INDEX, LAYER_NAMES, layer_shape
from desktop.style.vgg_weights import CONV_CHANNELS, KERNEL_SIZE

#: Fixed overhead of a running job beyond the tensors (allocator slack, oneDNN scratch).
BASE_BYTES = 150 * 2**20
#: Multiplier on the kept activations for the backward pass's temporaries.
BACKWARD_FACTOR = 2.5


def weight_bytes(last_layer: str, bytes_per_value: int) -> int:
    total = 0
    for name in LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]:
        if name in CONV_CHANNELS:
            c_in, c_out = CONV_CHANNELS[name]
            total += (c_in * c_out * KERNEL_SIZE * KERNEL_SIZE + c_out) * bytes_per_value
    return total


def job_bytes(height: int, width: int, last_layer: str, loss_layers: list[str],
              bytes_per_value: int, history_size: int) -> int:
    """Estimated peak bytes for one scale of a job on a ``height x width`` image."""
    activations = 0
    for name in LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]:
        c, h, w = layer_shape(name, height, width)
        activations += c * h * w
    loss_values = 0
    for name in set(loss_layers):
        c, h, w = layer_shape(name, height, width)
        loss_values += c * h * w + c * c
    image = 3 * height * width
    return int(BASE_BYTES
               + weight_bytes(last_layer, bytes_per_value)
               + activations * bytes_per_value * BACKWARD_FACTOR
               + loss_values * 4 * 2
               + image * 4 * (4 + 2 * history_size))


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
