"""Which torch device and precision to use, and a one-line description for the UI.

The rule everywhere: use CUDA when present, else the CPU; on CPUs with native bf16
(AMX or AVX-512 BF16) the fast paths may run in bf16, each measured against fp32.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Literal

import torch

DevicePref = Literal["auto", "cpu", "cuda"]


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def onednn_fused_conv_available() -> bool:
    """Whether this torch has oneDNN's fused convolution op (CPU builds normally do); the
    face networks and the style loop run their CPU convolutions on it when it is there."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(
            torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX-BF16 or AVX-512 BF16)."""
    flags = cpu_flags()
    if flags:
        return bool({"amx_bf16", "avx512_bf16"} & flags)
    try:  # non-Linux: ask oneDNN
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_device(pref: str = "auto") -> torch.device:
    """``auto`` gives CUDA when available, else CPU. Asking for CUDA without one raises."""
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        from desktop.errors import FacestyleError

        raise FacestyleError(
            "CUDA was requested but no CUDA device is available.",
            "Use --device cpu, or auto to pick the best device present.",
        )
    return torch.device(pref)


def cpu_capability() -> str:
    """torch's view of the CPU's vector ISA, e.g. ``AVX512``."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # pragma: no cover - very old torch
        return "unknown"


def describe_device(device: torch.device | None = None) -> str:
    """A short line for status bars and reports, e.g. ``CPU (AVX512, AMX bf16, 2 threads)``."""
    device = device or pick_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA: {torch.cuda.get_device_name(index)}"
    extras = [cpu_capability()]
    flags = cpu_flags()
    if "amx_bf16" in flags:
        extras.append("AMX bf16")
    elif "avx512_bf16" in flags:
        extras.append("AVX-512 bf16")
    threads = torch.get_num_threads()
    extras.append(f"{threads} thread{'' if threads == 1 else 's'}")
    return f"CPU ({', '.join(extras)})"


def system_summary() -> dict[str, str]:
    """Versions and hardware facts for the About dialog and ``facestyle doctor``."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": describe_device(),
        "cuda_available": str(torch.cuda.is_available()),
        "cpu_capability": cpu_capability(),
        "cpu_native_bf16": str(cpu_has_native_bf16()),
        "cpu_count": str(os.cpu_count()),
    }
    if torch.cuda.is_available():
        info["cuda"] = str(torch.version.cuda)
    return info
