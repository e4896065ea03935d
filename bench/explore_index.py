"""Explore index speed: images per second at 512 px for one VGG19 layer.

Reference (same run, same images, same batches, same original VGG19 weights): the plain
torchvision structure, ``torchvision.models.vgg19().features`` cut after the layer,
fp32, NCHW, under ``torch.no_grad``, each batch reduced to every unit's maximum (what a
top-k index needs at the least).

Ours: :class:`desktop.explore.networks.VGGNetwork` (oneDNN's fused conv + ReLU on
pre-packed weights, no pooling indices, bf16 in channels_last where
:func:`desktop.device.cpu_precision` allows, fp32 elsewhere) with the index's running
top-k (k = 9); also forced to fp32, to show what the number format and what the rest
bring. Then the whole index (:func:`desktop.explore.index.index_layers`, decoding the
files on a helper thread, no cache) over ``--folder`` at the same size.

Usage: ``python bench/explore_index.py [--layer relu3_1] [--size 512] [--batch 2]
[--images 8] [--rounds 3] [--folder ../shared/data]``. Prints the machine line
(``desktop.device.machine_line()``) first. Emulate an AVX2-only CPU with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import desktop  # noqa: E402

desktop.use_openmp_default_wait()  # headless and compute-bound, like the CLI

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from desktop.device import machine_line  # noqa: E402
from desktop.explore.index import IndexSettings, images_per_second, index_layers  # noqa: E402
from desktop.explore.networks import VGGNetwork  # noqa: E402
from desktop.explore.sources import ImageFolderSource  # noqa: E402
from desktop.explore.topk import RunningTopK  # noqa: E402
from desktop.style.vgg import CAFFE_MEAN_BGR, LAYER_NAMES  # noqa: E402
from desktop.style.vgg_weights import load_vgg19_weights  # noqa: E402

DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def reference_network(layer: str) -> nn.Sequential:
    """torchvision's VGG19 ``features`` with the original weights, cut after ``layer``."""
    from torchvision.models import vgg19

    features = vgg19(weights=None).features
    weights = load_vgg19_weights()
    convs = [name for name in LAYER_NAMES if name.startswith("conv")]
    keep = LAYER_NAMES.index(layer) + 1
    modules = list(features)[:keep]
    with torch.no_grad():
        for module, name in zip((m for m in modules if isinstance(m, nn.Conv2d)), convs,
                                strict=False):
            kernel, bias = weights[name]
            module.weight.copy_(torch.from_numpy(kernel))
            module.bias.copy_(torch.from_numpy(bias))
    return nn.Sequential(*modules).eval()


def caffe_input(batch: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).flip(1).float()
    return (x - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)).contiguous()


def test_images(count: int, size: int) -> np.ndarray:
    """``count`` photos from the shared data (or textured noise when absent), each
    centre-cropped and resized to ``size`` x ``size * 3/4``."""
    import cv2

    from desktop.imageio import load_rgb

    h, w = size * 3 // 4, size
    files = sorted(DATA.rglob("*.jpg"))[:count] if DATA.is_dir() else []
    out = []
    rng = np.random.default_rng(0)
    for n in range(count):
        if n < len(files):
            image = load_rgb(files[n])
            out.append(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
        else:
            out.append(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return np.stack(out)


def timed(run, batches: list[np.ndarray], rounds: int) -> float:
    """Median images per second over ``rounds`` passes (after one warm-up batch)."""
    run(batches[0])
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        rates.append(sum(len(b) for b in batches) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layer", default="relu3_1")
    p.add_argument("--size", type=int, default=512, help="longest side (images are 4:3)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--images", type=int, default=8, help="images per timed pass")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--folder", type=Path, default=DATA,
                   help="folder for the whole-index figure (skipped when absent)")
    args = p.parse_args()

    print(machine_line())
    images = test_images(args.images, args.size)
    batches = [images[i:i + args.batch] for i in range(0, len(images), args.batch)]
    print(f"{args.layer}, {images.shape[2]} x {images.shape[1]} px, batches of {args.batch}, "
          f"{len(images)} images per pass, median of {args.rounds} passes")

    reference = reference_network(args.layer)

    def run_reference(batch: np.ndarray) -> None:
        with torch.no_grad():
            reference(caffe_input(batch)).amax(dim=(2, 3))

    ours = VGGNetwork("cpu", "auto")
    ours_fp32 = VGGNetwork("cpu", "fp32")
    channels = ours.layer(args.layer).channels

    def runner(net: VGGNetwork):
        top = RunningTopK(channels, 9)

        def run(batch: np.ndarray) -> None:
            top.update(net.features(batch, [args.layer])[args.layer], list(range(len(batch))))

        return run

    ref_rate = timed(run_reference, batches, args.rounds)
    fp32_rate = timed(runner(ours_fp32), batches, args.rounds)
    ours_rate = timed(runner(ours), batches, args.rounds)
    print(f"{'reference (torchvision structure, fp32)':44} {ref_rate:7.2f} images/s")
    print(f"{'ours, fp32':44} {fp32_rate:7.2f} images/s  {fp32_rate / ref_rate:5.2f}x")
    print(f"{'ours, ' + ours.precision + ' (auto, the default)':44} {ours_rate:7.2f} images/s  "
          f"{ours_rate / ref_rate:5.2f}x")

    if args.folder.is_dir():
        source = ImageFolderSource(args.folder, args.size)
        index = index_layers(source, ours, [args.layer], IndexSettings(), use_cache=False)
        index = index[args.layer]
        used = int((index.sizes[:, 0] >= 0).sum())
        print(f"{'whole index, ' + str(used) + ' files of ' + args.folder.name:44} "
              f"{images_per_second(index):7.2f} images/s  (decoding included; "
              f"{index.precision})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
