"""On a CPU without bf16 kernels (AVX2-only, e.g. AMD Zen 2), every bf16 request falls back
to fp32, says so once, and nothing raises oneDNN's CPU-feature RuntimeError.

Two ways to stand in for such a CPU on any machine:

* monkeypatching the capability check (``cpu_bf16_kernels`` -> False), in this process;
* running a child process with oneDNN and ATen capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2
  ATEN_CPU_CAPABILITY=avx2``): there oneDNN itself refuses bf16 exactly as on Zen 2
  (``mkldnn_reorder_conv2d_weight: bf16 path needs the cpu support ...``), so the child
  checks the real failure, not our model of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import desktop.device as device
import desktop.style.conv_relu as conv_relu

ROOT = Path(__file__).resolve().parent.parent
AVX2_CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


@pytest.fixture
def no_bf16(monkeypatch):
    """This process behaves as on a CPU without bf16 kernels; notices start empty."""
    monkeypatch.setattr(device, "cpu_bf16_kernels", lambda: False)
    monkeypatch.setattr(conv_relu, "cpu_bf16_kernels", lambda: False)
    monkeypatch.setattr(device, "_NOTICES", [])
    heard: list[str] = []
    stop = device.on_fallback_notice(heard.append)
    yield heard
    stop()


def test_capability_checks_follow_the_bf16_kernels(no_bf16):
    assert not device.cpu_has_native_bf16()
    assert device.cpu_kind() != "AMX"
    assert device.cpu_precision("auto", torch.device("cpu")) == "fp32"
    assert device.cpu_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="precision"):
        device.cpu_precision("int8", torch.device("cpu"))


def test_detector_bf16_request_runs_fp32_and_says_so_once(no_bf16):
    from desktop.face.detector import FaceDetector

    exact = FaceDetector(device="cpu", precision="fp32")
    asked = FaceDetector(device="cpu", precision="bf16")
    again = FaceDetector(device="cpu", precision="bf16")
    assert asked.precision == again.precision == "fp32"
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    scores_exact, _ = exact.score_map(image, -1.0)
    scores_asked, _ = asked.score_map(image, -1.0)
    np.testing.assert_array_equal(np.asarray(scores_asked), np.asarray(scores_exact))
    assert len(no_bf16) == 1 and "Face detector" in no_bf16[0] and "fp32" in no_bf16[0]
    assert device.fallback_notices() == no_bf16


def test_encoder_bf16_request_runs_fp32(no_bf16):
    from desktop.face.encoder import ChipEmbedder, FaceEncoder

    torch.manual_seed(0)
    encoder = FaceEncoder().eval()
    chips = np.random.default_rng(1).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    asked = ChipEmbedder(encoder, precision="bf16")
    assert asked.precision == "fp32" and asked.dtype == torch.float32
    np.testing.assert_array_equal(asked(chips), ChipEmbedder(encoder, precision="fp32")(chips))
    assert ["Face encoder" in n for n in no_bf16] == [True]


def test_style_job_bf16_request_runs_fp32(no_bf16):
    from desktop.style.optimize import stylize
    from desktop.style.settings import StyleSettings

    rng = np.random.default_rng(2)
    content = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    reports = list(stylize(content, [style], StyleSettings(
        size=64, iterations=2, precision="bf16", multiscale=False)))
    assert [r.precision for r in reports] == ["fp32", "fp32"]
    assert any("Style network" in n for n in no_bf16)


def test_bf16_conv_without_bf16_kernels_takes_torchs_own_convolution(no_bf16):
    """A bf16 tensor reaching the fused conv+ReLU (a caller that bypassed the precision
    rule) is convolved by torch's conv2d instead of oneDNN's bf16 primitive."""
    from desktop.style.conv_relu import FrozenConvReLU

    torch.manual_seed(3)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    layer = FrozenConvReLU(conv).to(torch.bfloat16)
    x = torch.randn(1, 3, 16, 16, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last)
    assert layer._packed_weights(x) is None
    expected = torch.relu(torch.nn.functional.conv2d(x, layer.weight, layer.bias, padding=1))
    torch.testing.assert_close(layer.conv_relu(x), expected)


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from desktop.device import cpu_bf16_kernels, cpu_kind, fallback_notices
    from desktop.face.detector import FaceDetector
    from desktop.face.encoder import ChipEmbedder, FaceEncoder
    from desktop.style.optimize import stylize
    from desktop.style.settings import StyleSettings

    rng = np.random.default_rng(0)
    out = {"kind": cpu_kind(), "bf16_kernels": cpu_bf16_kernels()}
    det = FaceDetector(device="cpu", precision="bf16")
    det.detect(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    emb = ChipEmbedder(FaceEncoder().eval(), precision="bf16")
    emb(rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8))
    content = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    reports = list(stylize(content, [style], StyleSettings(size=56, iterations=2,
                                                           precision="bf16")))
    out.update(detector=det.precision, encoder=emb.precision,
               style=reports[-1].precision, notices=fallback_notices())
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_under_an_avx2_cap_bf16_requests_run_and_nothing_crashes():
    env = {**os.environ, **AVX2_CAP, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=env, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["kind"] == "AVX2" and out["bf16_kernels"] is False
    assert (out["detector"], out["encoder"], out["style"]) == ("fp32", "fp32", "fp32")
    assert [n.split(":")[0] for n in out["notices"]] == [
        "Face detector", "Face encoder", "Style network"]
    assert "RuntimeError" not in proc.stderr


@pytest.mark.slow
def test_cli_says_the_fallback_once_on_stderr(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    for name in ("c.png", "s.png"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / name)
    env = {**os.environ, **AVX2_CAP, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "desktop", "stylize", str(tmp_path / "c.png"),
         str(tmp_path / "s.png"), "-o", str(tmp_path / "g.png"), "--size", "56",
         "--iterations", "2", "--precision", "bf16"],
        capture_output=True, text=True, env=env, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "g.png").is_file()
    notes = [ln for ln in proc.stderr.splitlines() if "bf16 was asked for" in ln]
    assert len(notes) == 1 and "AVX2" in notes[0] and "fp32" in notes[0]
