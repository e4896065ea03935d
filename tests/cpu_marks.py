"""Marks for tests of CPU-specific fast paths.

A test of a bf16 oneDNN path runs where the CPU has bf16 kernels (AMX, AVX-512) and skips
with the reason where it does not (AVX2-only CPUs such as AMD Zen 2), where every bf16
request falls back to fp32 instead; ``tests/test_cpu_fallback.py`` checks that fallback
on every machine, by forcing "no bf16" and by running under an AVX2 cap.
"""

from __future__ import annotations

import pytest

from desktop.device import cpu_bf16_kernels, cpu_kind

needs_bf16_kernels = pytest.mark.skipif(
    not cpu_bf16_kernels(),
    reason=f"this {cpu_kind()} CPU has no bf16 kernels: bf16 requests fall back to fp32 "
    "here (tests/test_cpu_fallback.py checks that)")
