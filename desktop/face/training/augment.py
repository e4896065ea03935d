"""Training-time augmentation of aligned chips, batched on the training device.

Each chip of a batch gets, independently: a horizontal flip (p = 0.5), a small similarity
jitter (rotation, scale, shift, as dlib's own ``jitter_image`` does), a colour change
(brightness, contrast, saturation) and, sometimes, a Gaussian blur. Inputs and outputs are
float (N, 3, H, W) tensors of RGB values in 0..255, the encoder's input convention.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Augmentation:
    """Strength of each augmentation; ``Augmentation.off()`` disables all of them."""

    flip: float = 0.5  # probability of a horizontal flip
    rotate_deg: float = 5.0  # rotation drawn from [-r, r] degrees
    scale: float = 0.05  # zoom drawn from [1 - s, 1 + s]
    shift: float = 0.03  # translation drawn from [-t, t], as a fraction of the side
    brightness: float = 0.2  # gain drawn from [1 - b, 1 + b]
    contrast: float = 0.2  # contrast around the chip's mean, [1 - c, 1 + c]
    saturation: float = 0.2  # blend with grey, [1 - s, 1 + s]
    blur: float = 0.2  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.4, 1.2)  # its sigma in pixels

    @classmethod
    def off(cls) -> Augmentation:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def to_dict(self) -> dict:
        return asdict(self)


def _uniform(n: int, half_width: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) * 2 - 1) * half_width


def _jitter(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    angle = _uniform(n, math.radians(aug.rotate_deg), gen, x.device)
    zoom = 1 + _uniform(n, aug.scale, gen, x.device)
    tx = _uniform(n, 2 * aug.shift, gen, x.device)  # grid units span 2 per side
    ty = _uniform(n, 2 * aug.shift, gen, x.device)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
    )  # (N, 2, 3): output grid -> input grid
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _colour(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    gain = (1 + _uniform(n, aug.brightness, gen, x.device)).view(shape)
    contrast = (1 + _uniform(n, aug.contrast, gen, x.device)).view(shape)
    saturation = (1 + _uniform(n, aug.saturation, gen, x.device)).view(shape)
    x = x * gain
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - grey) * saturation + grey
    return x


def _gaussian_kernels(sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    """(M,) sigmas to (M, 2r+1) normalised 1-D Gaussian kernels."""
    t = torch.arange(-radius, radius + 1, device=sigmas.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None, :] / sigmas[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def _blur(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    chosen = torch.rand(n, generator=gen, device=x.device) < aug.blur
    if not bool(chosen.any()):
        return x
    lo, hi = aug.blur_sigma
    idx = torch.nonzero(chosen).squeeze(1)
    sig = lo + torch.rand(len(idx), generator=gen, device=x.device) * (hi - lo)
    radius = max(1, math.ceil(3 * hi))
    k = _gaussian_kernels(sig, radius).repeat_interleave(c, dim=0)  # (m*c, 2r+1)
    sub = x[idx].reshape(1, len(idx) * c, h, w)
    sub = F.pad(sub, (radius, radius, radius, radius), mode="replicate")
    sub = F.conv2d(sub, k[:, None, None, :], groups=len(idx) * c)
    sub = F.conv2d(sub, k[:, None, :, None], groups=len(idx) * c)
    out = x.clone()
    out[idx] = sub.reshape(len(idx), c, h, w)
    return out


def augment(x: torch.Tensor, aug: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Augment a float (N, 3, H, W) batch in 0..255; returns a new tensor, clamped to 0..255.

    ``gen`` is a ``torch.Generator`` on ``x``'s device, so a fixed seed gives the same
    augmentations on every run.
    """
    x = x.float()
    if aug.flip > 0:
        flip = torch.rand(x.shape[0], generator=gen, device=x.device) < aug.flip
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if aug.rotate_deg > 0 or aug.scale > 0 or aug.shift > 0:
        x = _jitter(x, aug, gen)
    if aug.brightness > 0 or aug.contrast > 0 or aug.saturation > 0:
        x = _colour(x, aug, gen)
    if aug.blur > 0:
        x = _blur(x, aug, gen)
    return x.clamp(0, 255)


def chips_to_tensor(chips, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 chips (numpy) to a float (N, 3, H, W) tensor in 0..255."""
    if isinstance(chips, torch.Tensor):
        t = chips
    else:
        arr = np.asarray(chips)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    return t.to(device).permute(0, 3, 1, 2).float()
