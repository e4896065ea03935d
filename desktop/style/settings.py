"""The settings of one style-transfer job, and what each iteration reports.

These two dataclasses are the contract between the optimisation loop
(``desktop.style.optimize``), the Style tab and ``facestyle stylize``: the UI and the CLI
build a :class:`StyleSettings`, the loop yields one :class:`IterationReport` per
iteration. Both round-trip through JSON (presets, PNG metadata, ``--report``).

Objective (course notation):
    J(G) = alpha * J_content(C, G) + beta * sum_l lambda_l * J_style^[l](S, G) + tv * TV(G)
    J_content = 1/2 ||a[l](C) - a[l](G)||^2 at ``content_layer``
    J_style^[l] = 1/(2 n_H n_W n_C)^2 * sum_kk' (G_kk'(S) - G_kk'(G))^2,
    G_kk' = sum_ij a_ijk a_ijk'
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

DEFAULT_STYLE_LAYERS: dict[str, float] = {
    "relu1_1": 0.2,
    "relu2_1": 0.2,
    "relu3_1": 0.2,
    "relu4_1": 0.2,
    "relu5_1": 0.2,
}


@dataclass
class StyleSettings:
    """Everything that decides the result of a job (with the images themselves)."""

    alpha: float = 1.0  # content weight
    beta: float = 5e3  # style weight (tuned on tubingen + starry_night at 512 px)
    content_layer: str = "relu4_2"
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))
    style_blend: list[float] | None = None  # one weight per style image; None = equal
    size: int = 512  # longest side of G, pixels
    iterations: int = 300
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = 1.0  # Adam learning rate (L-BFGS uses its own line search)
    init: Literal["content", "noise", "style"] = "content"
    tv_weight: float = 0.0
    seed: int = 0
    preserve_colors: bool = False
    pooling: Literal["max", "avg"] = "max"
    #: coarse to fine: optimise at 1/4 and 1/2 of the size first (each halving >= 128 px),
    #: upsampling G between scales; each coarser scale gets a fifteenth of ``iterations``
    multiscale: bool = True
    #: end a scale (the job, at the last one) once J stops improving: it fell by less than
    #: ``optimize.FLAT_FRACTION`` over the last ``optimize.FLAT_WINDOW`` iterations
    stop_when_flat: bool = True
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StyleSettings:
        """Build from a dict; unknown keys are ignored so old presets keep loading."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class IterationReport:
    """What the loop yields after each iteration (losses are the *weighted* terms)."""

    iteration: int  # 1-based
    total_iterations: int
    image: np.ndarray  # G as (H, W, 3) uint8 RGB
    content: float  # alpha * J_content
    style: float  # beta * sum_l lambda_l J_style^[l]
    tv: float  # tv_weight * TV(G)
    total: float  # J(G)
    seconds: float  # this iteration's own wall time
    device: str = ""
    precision: str = ""
    scale_index: int = 0  # which coarse-to-fine scale (0 when single scale)
    #: (height, width, iterations) of every scale, coarse to fine; G's size now is
    #: ``scales[scale_index][:2]`` ([] from loops that do not say)
    scales: list[tuple[int, int, int]] = field(default_factory=list)
    scale_iteration: int = 0  # 1-based count within this scale
    #: the last report of a scale that ended because J stopped improving (stop_when_flat)
    flat: bool = False
    notices: list[str] = field(default_factory=list)  # e.g. "Size 4000 px was capped to 2048"
    evaluations: int = 1  # forward+backward passes this iteration took (L-BFGS may halve a step)
    #: CPU threads the job ran on (0: unknown). Float sums split over another number of
    #: threads round differently, so the same settings reproduce G bit for bit only with it.
    threads: int = 0
    #: gamma * J_temporal of a video frame (0 for still images); included in ``total``
    temporal: float = 0.0

    def losses(self) -> dict[str, float]:
        return {"content": self.content, "style": self.style, "tv": self.tv, "total": self.total}

    @property
    def size(self) -> tuple[int, int]:
        """G's (height, width) at this iteration's scale."""
        if self.scales:
            h, w, _ = self.scales[self.scale_index]
            return h, w
        return int(self.image.shape[0]), int(self.image.shape[1])

    def remaining_work(self) -> float:
        """Iterations still to run, weighted by pixels relative to this scale's (a coarser
        iteration costs less): multiplied by the seconds an iteration takes now, an ETA."""
        if not self.scales:
            return float(max(0, self.total_iterations - self.iteration))
        h, w = self.size
        work = float(max(0, self.scales[self.scale_index][2] - self.scale_iteration))
        for sh, sw, n in self.scales[self.scale_index + 1:]:
            work += n * (sh * sw) / float(h * w)
        return work
