"""The core calls the tab makes around a job, in one place: the plan check before it
starts (settings, memory) and writing G with its settings (PNG text + JSON sidecar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from desktop.style.optimize import JobPlan, plan_job
from desktop.style.output import read_settings
from desktop.style.output import save_result as _save_result
from desktop.style.settings import StyleSettings

__all__ = ["check_plan", "read_settings", "save_result"]


def check_plan(settings: StyleSettings, content_shape: tuple[int, ...], n_styles: int
               ) -> JobPlan:
    """The job's plan; raises FacestyleError when the settings are invalid or the job will
    not fit in memory (the message suggests a size that fits). Cheap: nothing is computed."""
    return plan_job(content_shape, settings, n_styles)


def save_result(path: Path, image: np.ndarray, settings: StyleSettings,
                extra: dict[str, Any]) -> tuple[Path, Path]:
    """G as PNG with the settings in its text, plus ``<name>.json`` beside it."""
    return _save_result(path, image, settings, extra)
