"""Saving a generated image G with the settings that made it (PNG text + JSON sidecar).

``save_result("out.png", g, settings)`` writes

* ``out.png``: G, with PNG ``tEXt`` chunks ``Software`` (facestyle and version),
  ``facestyle.settings`` (the :class:`StyleSettings` as JSON) and
  ``facestyle.extra`` (anything else given, as JSON: iteration, losses, inputs...);
* ``out.json``: ``{"settings": {...}, **extra}``, the same facts for people and scripts.

:func:`read_settings` recovers the settings from such a PNG (or its sidecar), so a saved
result can be re-run or loaded as a preset. The CLI and the Style tab both save through
here.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from desktop import __version__
from desktop.errors import FacestyleError
from desktop.imageio import save_png
from desktop.style.settings import StyleSettings

SETTINGS_KEY = "facestyle.settings"
EXTRA_KEY = "facestyle.extra"


def sidecar_path(path: str | Path) -> Path:
    """``out.png`` -> ``out.json``."""
    return Path(path).with_suffix(".json")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` to a new file beside ``path``, then rename it over ``path``.

    The temporary file is created by ``write`` itself, so it gets the user's usual
    permissions (umask), unlike ``tempfile.mkstemp``'s private 0600.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_result(path: str | Path, image: np.ndarray, settings: StyleSettings,
                extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write G (``(H, W, 3)`` RGB uint8) as PNG with its settings, plus a JSON sidecar.

    Returns the PNG and sidecar paths. Files are written whole or not at all.

    Raises:
        FacestyleError: the folder does not exist or cannot be written.
    """
    png = Path(path)
    if png.suffix.lower() != ".png":
        png = png.with_suffix(png.suffix + ".png") if png.suffix else png.with_suffix(".png")
    sidecar = sidecar_path(png)
    extra = _json_safe(dict(extra or {}))
    text = {
        "Software": f"facestyle {__version__}",
        SETTINGS_KEY: settings.to_json(),
        EXTRA_KEY: json.dumps(extra, sort_keys=True),
    }
    doc = {"settings": settings.to_dict(), **extra}
    try:
        if not png.parent.is_dir():
            raise FileNotFoundError(f"folder {png.parent} does not exist")
        _atomic_write(png, lambda tmp: save_png(tmp, np.ascontiguousarray(image), text))
        _atomic_write(sidecar, lambda tmp: Path(tmp).write_text(
            json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"))
    except OSError as exc:
        raise FacestyleError(f"Cannot save {png}: {exc.strerror or exc}",
                             "Choose a folder you can write to.") from exc
    return png, sidecar


def _png_text(png: Path) -> dict[str, str]:
    """The PNG's text chunks (``{}`` when it is not a readable PNG)."""
    try:
        with Image.open(png) as img:
            return dict(getattr(img, "text", {}) or img.info)
    except (OSError, ValueError):
        return {}


def _sidecar_doc(png: Path) -> dict[str, Any]:
    """The JSON sidecar beside ``png`` (or ``png`` itself when it is the .json), else ``{}``."""
    try:
        doc = json.loads(sidecar_path(png).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read_result(path: str | Path) -> tuple[StyleSettings, dict[str, Any]]:
    """The settings saved with a result, and the other facts saved with it (iteration,
    losses, device, threads...; ``{}`` when none). Each comes from the PNG's text, else
    from its sidecar; the PNG and the sidecar are each read once at most.

    Raises:
        FacestyleError: neither holds facestyle settings.
    """
    png = Path(path)
    text = _png_text(png)
    doc: dict[str, Any] | None = None
    settings = None
    if SETTINGS_KEY in text:
        with contextlib.suppress(ValueError):  # unreadable: the sidecar may have them
            settings = StyleSettings.from_dict(json.loads(text[SETTINGS_KEY]))
    if settings is None:
        doc = _sidecar_doc(png)
        try:
            settings = StyleSettings.from_dict(doc["settings"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FacestyleError(f"{png} holds no facestyle settings.",
                                 "Pick an image saved by facestyle, or its .json file.") from exc
    extra: Any = None
    if EXTRA_KEY in text:
        try:
            extra = json.loads(text[EXTRA_KEY])
            extra = extra if isinstance(extra, dict) else {}
        except ValueError:
            extra = None
    if extra is None:
        doc = _sidecar_doc(png) if doc is None else doc
        extra = {k: v for k, v in doc.items() if k != "settings"}
    return settings, extra


def read_settings(path: str | Path) -> StyleSettings:
    """The settings saved with a result: from the PNG's text, else from its sidecar.

    Raises:
        FacestyleError: neither holds facestyle settings.
    """
    return read_result(path)[0]
