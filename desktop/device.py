"""Which torch device and precision to use, and a one-line description for the UI.

The rule everywhere: use CUDA when present, else the CPU; on CPUs with native bf16
(AMX or AVX-512 BF16) the fast paths may run in bf16, each measured against fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import threading
from collections.abc import Callable
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


#: oneDNN's ISA levels, lowest first, as ``ONEDNN_MAX_CPU_ISA`` names them. A cap set in
#: the environment (``ONEDNN_MAX_CPU_ISA=AVX2``) makes oneDNN behave as on a CPU that has
#: nothing above it; the checks below honour it, so an AMX machine can stand in for an
#: AVX2-only one (``ATEN_CPU_CAPABILITY=avx2`` does the same for torch's own kernels).
_ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16",
                "AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16",
                "AVX10_1_512_AMX_FP16", "ALL")


def _onednn_isa_cap() -> int:
    """Rank of the ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) cap; no cap: ``ALL``."""
    value = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
             or "ALL").strip().upper()
    return _ONEDNN_ISAS.index(value) if value in _ONEDNN_ISAS else len(_ONEDNN_ISAS) - 1


@functools.lru_cache(maxsize=1)
def cpu_bf16_kernels() -> bool:
    """True when oneDNN can run bf16 convolutions on this CPU at all: natively (AMX,
    AVX-512 BF16) or emulated (AVX-512BW without BF16, AVX-NE-CONVERT). Where this is
    False (AVX2-only CPUs such as AMD Zen 2), torch's bf16 oneDNN ops raise
    ``RuntimeError: ... bf16 path needs the cpu support ...``; every bf16 request must
    then fall back to fp32 (:func:`cpu_precision`)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _native_bf16_units() -> list[str]:
    """The native bf16 units oneDNN may use here: ``AMX`` and/or ``AVX-512 BF16``."""
    if not cpu_bf16_kernels():
        return []
    flags, cap = cpu_flags(), _onednn_isa_cap()
    units = []
    if "amx_bf16" in flags and cap >= _ONEDNN_ISAS.index("AVX512_CORE_AMX"):
        units.append("AMX")
    if "avx512_bf16" in flags and cap >= _ONEDNN_ISAS.index("AVX512_CORE_BF16"):
        units.append("AVX-512 BF16")
    if not flags:  # non-Linux: oneDNN's answer is all there is
        units.append("bf16")
    return units


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX-BF16 or AVX-512 BF16), the only case
    where ``auto`` picks bf16 on the CPU."""
    return bool(_native_bf16_units())


def cpu_kind() -> str:
    """The CPU class benchmarks and reports name: ``AMX``, ``AVX-512``, ``AVX2`` (or torch's
    capability word on other machines). It follows what torch and oneDNN will use, so a
    machine capped with ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA`` reports its cap."""
    if "AMX" in _native_bf16_units():
        return "AMX"
    capability = cpu_capability().upper()
    if capability.startswith("AVX512"):
        return "AVX-512"
    if capability.startswith("AVX2"):
        return "AVX2"
    return capability or "unknown"


#: ``FACESTYLE_WINOGRAD=1`` / ``=0`` forces fp32 3x3 convolutions onto / off NNPACK's
#: Winograd kernels (benchmarks compare both on one machine); unset: :func:`cpu_kind` decides.
WINOGRAD_ENV = "FACESTYLE_WINOGRAD"


@functools.lru_cache(maxsize=1)
def winograd_conv() -> bool:
    """Whether the style network's fp32 3x3 convolutions run as Winograd transforms
    (NNPACK's F(6x6, 3x3), bundled with torch's CPU builds) instead of oneDNN's direct ones.

    Winograd computes a 6x6 output tile from an 8x8 input tile with 64 multiplications
    per channel pair where the direct convolution takes 324, at the price of transforms
    that read and write the maps (errors about 1e-5 of the largest output, against about
    1e-6). Where oneDNN has only AVX2 kernels its fp32 convolutions run near the cores'
    peak and Winograd's fewer multiplications win: measured on VGG19's layers at 512 px
    (2 cores, AVX2), 1.4x to 2x per convolution, and a 512 px style iteration took 1.15 s
    instead of 1.55 s. With AVX-512 oneDNN is the faster of the two (1.02 s against 1.16 s
    in fp32 on the same machine), and bf16, where there is one, faster still. So: on for
    ``AVX2`` CPUs, off elsewhere, unless :data:`WINOGRAD_ENV` says otherwise.
    """
    override = os.environ.get(WINOGRAD_ENV, "").strip().lower()
    if override in ("0", "off", "no", "false"):
        return False
    try:
        available = bool(torch.backends.nnpack.is_available())  # also initialises NNPACK
    except (AttributeError, RuntimeError):
        available = False
    if not available:
        return False
    return override in ("1", "on", "yes", "true") or cpu_kind() == "AVX2"


#: Fallback notices already given in this process (each is said once).
_NOTICES: list[str] = []
_NOTICE_LOCK = threading.Lock()


def fallback_notices() -> list[str]:
    """The precision fallbacks this process made so far, oldest first (for status bars)."""
    with _NOTICE_LOCK:
        return list(_NOTICES)


def _notice_once(text: str) -> None:
    with _NOTICE_LOCK:
        if text in _NOTICES:
            return
        _NOTICES.append(text)
    logging.getLogger("desktop.device").info(text)
    for listener in list(_NOTICE_LISTENERS):
        with contextlib.suppress(Exception):
            listener(text)


_NOTICE_LISTENERS: list[Callable[[str], None]] = []


def on_fallback_notice(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(text)`` (from whatever thread falls back) for every new fallback
    notice; the CLI prints them to stderr, the window shows them in its status bar.
    Returns a function that stops the calls."""
    _NOTICE_LISTENERS.append(listener)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _NOTICE_LISTENERS.remove(listener)

    return remove


def bf16_fallback_text(what: str) -> str:
    return (f"{what}: bf16 was asked for, but this CPU ({cpu_kind()}) has no bf16 "
            "kernels; running in fp32 instead.")


def cpu_precision(requested: str, device: torch.device | None = None, what: str = "Network"
                  ) -> str:
    """The precision a CPU-or-CUDA network really runs in for ``requested``
    (``auto``/``fp32``/``bf16``): ``auto`` is bf16 where the hardware computes it natively
    (CUDA with bf16, AMX, AVX-512 BF16), else fp32; an explicit ``bf16`` on a CPU without
    bf16 kernels (AVX2-only) falls back to fp32 and says so once (:func:`fallback_notices`)."""
    device = device or pick_device()
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {requested!r}")
    if device.type == "cuda":
        if requested == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return requested
    if requested == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if requested == "bf16" and not cpu_bf16_kernels():
        _notice_once(bf16_fallback_text(what))
        return "fp32"
    return requested


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
    units = [u for u in _native_bf16_units() if u != "bf16"]
    if units:
        extras.append("AMX bf16" if units[0] == "AMX" else units[0])
    threads = torch.get_num_threads()
    extras.append(f"{threads} thread{'' if threads == 1 else 's'}")
    return f"CPU ({', '.join(extras)})"


def machine_line() -> str:
    """One line every benchmark prints beside its figures: the CPU kind, the threads torch
    uses and the device, e.g. ``cpu_kind=AMX threads=2 device=CPU (AVX512, AMX bf16, ...)``."""
    return (f"cpu_kind={cpu_kind()} threads={torch.get_num_threads()} "
            f"cores={os.cpu_count()} device={describe_device()}")


def system_summary() -> dict[str, str]:
    """Versions and hardware facts for the About dialog and ``facestyle doctor``."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": describe_device(),
        "cuda_available": str(torch.cuda.is_available()),
        "cpu_capability": cpu_capability(),
        "cpu_kind": cpu_kind(),
        "cpu_native_bf16": str(cpu_has_native_bf16()),
        "cpu_bf16_kernels": str(cpu_bf16_kernels()),
        "cpu_count": str(os.cpu_count()),
    }
    if torch.cuda.is_available():
        info["cuda"] = str(torch.version.cuda)
    return info
