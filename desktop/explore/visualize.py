"""Feature visualisation: an image that one unit (or a whole channel) responds to strongly.

Gradient ascent on the image x maximises the objective

* ``channel``: the channel's mean activation over the whole map, or
* ``unit``: the activation of the one position at the map's centre (one neuron, with the
  receptive field of :class:`~desktop.explore.receptive_field.Geometry`),

taken before the layer's ReLU where the network allows (VGG19's ``reluX_Y`` is
maximised through ``convX_Y``: a unit that is silent on the starting grey image would
otherwise get no gradient at all; where it fires the two are the same).

Plain ascent on pixels gives high-frequency noise that the network loves and people cannot
read; three regularisers (as in Olah et al., "Feature Visualization", Distill 2017, and
the lucid/lucent libraries) make the images readable:

* **Parameterisation** (``fourier``): x is not stored as pixels but as its 2D Fourier
  spectrum, each frequency f scaled by 1 / max(|f|, 1/n) (a 1/f spectrum like natural
  images'), so every step of gradient descent changes low frequencies as easily as high
  ones; ``pixels`` keeps plain pixels for comparison.
* **Decorrelated colour**: the three channels optimised are uncorrelated colour
  components, mixed into RGB by the square root of ImageNet's colour covariance
  (:data:`COLOR_SQRT_COVARIANCE`), then squashed to 0..1 by a sigmoid.
* **Transformation robustness** (``transforms``): every step sees the image padded,
  shifted by a few pixels, scaled by 0.9-1.1 and rotated by up to 10 degrees, at random;
  only features that survive all of these are kept.

:func:`visualize` is a generator: it yields a :class:`VisReport` (the current image, the
objective) after every step, so the Explore tab shows the image live, like the Style
tab's G. Adam, learning rate 0.05, 256 steps by default.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desktop.errors import FacestyleError
from desktop.explore.networks import ExploreNetwork, open_network
from desktop.tasks import CancelToken

OBJECTIVES = ("channel", "unit")
PARAMETERISATIONS = ("fourier", "pixels")
#: The square root of ImageNet's RGB colour covariance (from its eigen-decomposition;
#: columns are the decorrelated components), as lucid uses it.
COLOR_SQRT_COVARIANCE = np.array([[0.26, 0.09, 0.02],
                                  [0.27, 0.00, -0.05],
                                  [0.27, -0.09, 0.03]], np.float32)
#: Transformation robustness: padding (grey), first and last jitter in pixels, scales,
#: rotations in degrees (as lucid's standard transforms).
PAD, JITTER_FIRST, JITTER_LAST = 12, 8, 4
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ANGLES = tuple(range(-10, 11))


@dataclass(frozen=True)
class VisSettings:
    """What to visualise and how (sizes in pixels)."""

    network: str = "vgg19"
    layer: str = "relu4_1"
    unit: int = 0
    objective: str = "channel"
    steps: int = 256
    size: int = 224
    lr: float = 0.05
    seed: int = 0
    parameterisation: str = "fourier"
    decorrelate: bool = True
    transforms: bool = True
    device: str = "auto"
    precision: str = "auto"

    def check(self) -> VisSettings:
        """``self``, or a FacestyleError naming the bad setting."""
        if self.objective not in OBJECTIVES:
            raise FacestyleError(f"Unknown objective {self.objective!r}.",
                                 f"Use {' or '.join(OBJECTIVES)}.")
        if self.parameterisation not in PARAMETERISATIONS:
            raise FacestyleError(f"Unknown parameterisation {self.parameterisation!r}.",
                                 f"Use {' or '.join(PARAMETERISATIONS)}.")
        if self.steps < 1 or not 32 <= self.size <= 1024 or self.lr <= 0:
            raise FacestyleError("Steps must be at least 1, the size 32 to 1024 px and the "
                                 "learning rate above 0.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VisReport:
    """The state after one step: the image (H, W, 3) RGB uint8 and the objective."""

    step: int
    steps: int
    image: np.ndarray
    objective: float
    seconds: float
    device: str = ""


class ImageParameterisation(nn.Module):
    """The optimised image: ``forward()`` gives (1, 3, H, W) RGB in 0..1.

    ``fourier``: x = irfft2(spectrum * scale) / 4 with scale = 1 / max(|f|, 1 / max(H, W))
    (frequencies in cycles per pixel); ``pixels``: x itself. Then, with ``decorrelate``,
    each pixel's three values are mixed by :data:`COLOR_SQRT_COVARIANCE` (normalised so
    its largest column has norm 1); finally ``sigmoid`` maps to 0..1."""

    def __init__(self, height: int, width: int, parameterisation: str = "fourier",
                 decorrelate: bool = True, generator: torch.Generator | None = None,
                 std: float = 0.01) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.fourier = parameterisation == "fourier"
        if self.fourier:
            fy = torch.fft.fftfreq(height).view(-1, 1)
            fx = torch.fft.rfftfreq(width).view(1, -1)
            freq = torch.sqrt(fx * fx + fy * fy)
            scale = 1.0 / torch.clamp(freq, min=1.0 / max(height, width))
            self.register_buffer("scale", scale.view(1, 1, *scale.shape, 1))
            shape = (1, 3, height, width // 2 + 1, 2)
        else:
            shape = (1, 3, height, width)
        self.param = nn.Parameter(torch.randn(shape, generator=generator) * std)
        mix = COLOR_SQRT_COVARIANCE / np.linalg.norm(COLOR_SQRT_COVARIANCE, axis=0).max()
        self.register_buffer("mix", torch.from_numpy(mix) if decorrelate else torch.eye(3))

    def forward(self) -> torch.Tensor:
        if self.fourier:
            spectrum = torch.view_as_complex((self.param * self.scale).contiguous())
            x = torch.fft.irfftn(spectrum, s=(self.height, self.width), norm="ortho") / 4.0
        else:
            x = self.param
        x = torch.einsum("ij,njhw->nihw", self.mix, x)
        return torch.sigmoid(x)


def random_transform(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Pad with grey, jitter, scale, rotate, jitter again (see the module docstring)."""
    x = F.pad(x, (PAD,) * 4, value=0.5)
    x = _jitter(x, JITTER_FIRST, rng)
    scale = float(rng.choice(SCALES))
    angle = math.radians(float(rng.choice(ANGLES)))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return _jitter(x, JITTER_LAST, rng)


def _jitter(x: torch.Tensor, d: int, rng: np.random.Generator) -> torch.Tensor:
    """A crop ``d`` pixels smaller in each direction, at a random offset: a shift of up to
    ``d`` pixels."""
    dy, dx = (int(v) for v in rng.integers(0, d + 1, size=2))
    h, w = x.shape[2] - d, x.shape[3] - d
    return x[:, :, dy:dy + h, dx:dx + w]


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in 0..1 -> (H, W, 3) uint8."""
    return (rgb.detach()[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()


def visualize(settings: VisSettings, network: ExploreNetwork | None = None,
              cancel: CancelToken | None = None) -> Iterator[VisReport]:
    """Gradient ascent on the image for ``settings`` (see the module docstring), yielding
    a :class:`VisReport` after every step; returns the last one.

    Raises:
        FacestyleError: a bad setting, layer or unit.
    """
    settings.check()
    network = network or open_network(settings.network, settings.device, settings.precision)
    info = network.layer(settings.layer)
    if not 0 <= settings.unit < info.channels:
        raise FacestyleError(f"Unit {settings.unit} does not exist: {info.name} has units "
                             f"0 to {info.channels - 1}.")
    model, device, _ = network.gradient_model()
    size = network.input_size or settings.size
    generator = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    image = ImageParameterisation(size, size, settings.parameterisation,
                                  settings.decorrelate, generator).to(device)
    optimizer = torch.optim.Adam(image.parameters(), lr=settings.lr)
    started = time.monotonic()
    device_text = network.describe_run()
    report = None
    for step in range(1, settings.steps + 1):
        if cancel is not None:
            cancel.checkpoint()
        optimizer.zero_grad(set_to_none=True)
        rgb = image()
        x = random_transform(rgb, rng) if settings.transforms else rgb
        if network.input_size and x.shape[-1] != network.input_size:
            x = F.interpolate(x, size=(network.input_size,) * 2, mode="bilinear",
                              align_corners=False)
        acts = model(x, [info.name])[info.name][0, settings.unit]
        if settings.objective == "channel":
            objective = acts.mean()
        else:
            objective = acts[acts.shape[0] // 2, acts.shape[1] // 2]
        (-objective).backward()
        optimizer.step()
        with torch.no_grad():
            shown = to_uint8(image())
        report = VisReport(step, settings.steps, shown, float(objective.detach()),
                           time.monotonic() - started, device_text)
        yield report
    return report
