"""Style presets: a few built in, plus the user's own saved as JSON files.

A preset is a named :class:`~desktop.style.settings.StyleSettings`. The built-in ones are
written as changes from the defaults, so they follow the defaults the style work tunes:

* **Gatys 2015**: the paper's recipe (Gatys, Ecker & Bethge, "A Neural Algorithm of
  Artistic Style"): style from relu1_1..relu5_1 with lambda 0.2 each, content from
  relu4_2, alpha/beta = 1e-3, L-BFGS started from white noise, average pooling. (The
  paper names the conv layers; in its Caffe model ReLU runs in place, so what it reads
  are the relu outputs.)
* **soft**: a light touch: beta a tenth of the default, deep layers weighted more than
  shallow ones, so the photo stays readable and the brush strokes stay gentle.
* **strong style**: beta ten times the default, shallow layers weighted more (texture and
  colour), a little total variation against pixel noise (tv 100: a few per cent of J on
  tubingen x starry_night at 256 px), more iterations.

User presets live in ``user_dirs().config / "style-presets"``, one ``<slug>.json`` each::

    {"format": "facestyle-style-preset", "version": 1, "name": "My look",
     "settings": {...StyleSettings.to_dict()...}}

Applying a preset (:func:`apply_preset`) changes the look, not the machine: the image
size, device and precision the user chose are kept.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from desktop.errors import FacestyleError
from desktop.paths import ensure_writable, user_dirs
from desktop.style.settings import StyleSettings

log = logging.getLogger(__name__)

FORMAT = "facestyle-style-preset"
VERSION = 1
PRESETS_FOLDER = "style-presets"

#: Fields a preset does not change when applied: they describe the machine and the
#: output size, not the look.
MACHINE_FIELDS: tuple[str, ...] = ("size", "device", "precision")

_DEFAULT = StyleSettings()

#: Built-in presets, as changes from the defaults (see the module docstring).
BUILTIN_CHANGES: dict[str, dict[str, Any]] = {
    "Gatys 2015": {
        "alpha": 1.0,
        "beta": 1e3,
        "content_layer": "relu4_2",
        "style_layers": {f"relu{b}_1": 0.2 for b in range(1, 6)},
        "optimizer": "lbfgs",
        "init": "noise",
        "pooling": "avg",
        "tv_weight": 0.0,
        "preserve_colors": False,
    },
    "soft": {
        "alpha": 1.0,
        "beta": _DEFAULT.beta / 10,
        "style_layers": {"relu1_1": 0.05, "relu2_1": 0.1, "relu3_1": 0.2, "relu4_1": 0.3,
                         "relu5_1": 0.35},
        "init": "content",
        "tv_weight": 0.0,
    },
    "strong style": {
        "alpha": 1.0,
        "beta": _DEFAULT.beta * 10,
        "style_layers": {"relu1_1": 0.3, "relu2_1": 0.3, "relu3_1": 0.2, "relu4_1": 0.1,
                         "relu5_1": 0.1},
        "init": "content",
        "tv_weight": 100.0,
        "iterations": max(_DEFAULT.iterations, 500),
    },
}

_FLOAT_FIELDS = ("alpha", "beta", "lr", "tv_weight")
_LAYER_RE = re.compile(r"^(conv|relu)[1-5]_[1-4]$|^pool[1-4]$")
_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("lbfgs", "adam"),
    "init": ("content", "noise", "style"),
    "pooling": ("max", "avg"),
}


class PresetError(FacestyleError):
    """A preset file cannot be read or written, or holds settings that make no sense."""


@dataclass(frozen=True)
class Preset:
    name: str
    settings: StyleSettings
    builtin: bool = False
    path: Path | None = None  # the JSON file of a user preset


def builtin_presets() -> dict[str, StyleSettings]:
    """The built-in presets by name, each a fresh :class:`StyleSettings`."""
    return {name: StyleSettings.from_dict({**_DEFAULT.to_dict(), **json.loads(json.dumps(c))})
            for name, c in BUILTIN_CHANGES.items()}


def presets_dir() -> Path:
    """The folder of user presets (not created here)."""
    return user_dirs().config / PRESETS_FOLDER


def slug(name: str) -> str:
    """A file-name-safe form of a preset name: ``"My look #2"`` -> ``"my-look-2"``."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text[:60] or "preset"


def validate(settings: StyleSettings) -> StyleSettings:
    """Raise :class:`PresetError` when a field has the wrong type or an impossible value."""
    problems: list[str] = []
    for name in _FLOAT_FIELDS:
        value = getattr(settings, name)
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            problems.append(f"{name} must be a number of 0 or more, not {value!r}")
    for name, low in (("size", 16), ("iterations", 1)):
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{name} must be a whole number of at least {low}, not {value!r}")
    if not isinstance(settings.seed, int) or isinstance(settings.seed, bool):
        problems.append(f"seed must be a whole number, not {settings.seed!r}")
    for name, allowed in _CHOICES.items():
        if getattr(settings, name) not in allowed:
            problems.append(f"{name} must be one of {', '.join(allowed)}")
    if not isinstance(settings.content_layer, str) or not _LAYER_RE.match(settings.content_layer):
        problems.append(f"content_layer {settings.content_layer!r} is not a VGG19 layer")
    layers = settings.style_layers
    if not isinstance(layers, dict) or not layers:
        problems.append("style_layers must name at least one layer with a weight")
    else:
        for layer, weight in layers.items():
            if not isinstance(layer, str) or not _LAYER_RE.match(layer):
                problems.append(f"style layer {layer!r} is not a VGG19 layer")
            elif not _is_number(weight) or not math.isfinite(weight) or weight < 0:
                problems.append(f"the weight of {layer} must be a number of 0 or more")
    blend = settings.style_blend
    if blend is not None and (
        not isinstance(blend, list) or not all(_is_number(w) and w >= 0 for w in blend)
    ):
        problems.append("style_blend must be a list of weights of 0 or more")
    for name in ("preserve_colors", "multiscale", "stop_when_flat"):
        if not isinstance(getattr(settings, name), bool):
            problems.append(f"{name} must be true or false")
    if problems:
        raise PresetError("These style settings are not valid: " + "; ".join(problems) + ".")
    return settings


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _settings_from(data: Any, where: str) -> StyleSettings:
    if not isinstance(data, dict):
        raise PresetError(f"{where} holds no style settings.")
    known = {f.name for f in fields(StyleSettings)}
    settings = StyleSettings.from_dict({k: v for k, v in data.items() if k in known})
    # JSON written by hand may say 1 where a float is meant.
    settings = replace(settings, **{n: _float(getattr(settings, n)) for n in _FLOAT_FIELDS})
    try:
        return validate(settings)
    except PresetError as exc:
        raise PresetError(f"{where}: {exc.message}", "Fix or delete the file.") from None


def _float(value: Any) -> Any:
    return float(value) if _is_number(value) else value


def to_json(name: str, settings: StyleSettings) -> str:
    """The JSON text of a preset file."""
    doc = {"format": FORMAT, "version": VERSION, "name": name, "settings": settings.to_dict()}
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def read_preset(path: str | Path) -> Preset:
    """Read one preset file.

    Raises:
        PresetError: unreadable, not JSON, not a preset, or settings out of range.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"The preset file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"Cannot read the preset file {path}: {exc}") from None
    except ValueError as exc:
        raise PresetError(f"The preset file {path} is not valid JSON ({exc}).",
                          "Fix or delete the file.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PresetError(f"{path} is not a facestyle style preset.")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        name = path.stem
    return Preset(name.strip(), _settings_from(doc.get("settings"), str(path)), False, path)


def save_preset(name: str, settings: StyleSettings, folder: Path | None = None) -> Path:
    """Save ``settings`` as the user preset ``name`` (replacing one of the same name).

    Raises:
        PresetError: an empty name, a built-in name, invalid settings, or a folder that
            cannot be written.
    """
    name = name.strip()
    if not name:
        raise PresetError("Give the preset a name.")
    if name.casefold() in {b.casefold() for b in BUILTIN_CHANGES}:
        raise PresetError(f"“{name}” is a built-in preset.", "Choose another name.")
    validate(settings)
    folder = folder or presets_dir()
    try:
        ensure_writable(folder)
    except FacestyleError as exc:
        raise PresetError(exc.message, exc.hint) from None
    path = folder / f"{slug(name)}.json"
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(to_json(name, settings), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise PresetError(f"Cannot save the preset to {path}: {exc.strerror or exc}") from None
    return path


def user_presets(folder: Path | None = None) -> tuple[list[Preset], list[PresetError]]:
    """The user's presets sorted by name, and the problems of files that could not be read
    (a broken file never hides the others)."""
    folder = folder or presets_dir()
    presets: list[Preset] = []
    problems: list[PresetError] = []
    if not folder.is_dir():
        return presets, problems
    for path in sorted(folder.glob("*.json")):
        try:
            presets.append(read_preset(path))
        except PresetError as exc:
            log.warning("skipping preset %s: %s", path, exc.message)
            problems.append(exc)
    presets.sort(key=lambda p: p.name.casefold())
    return presets, problems


def all_presets(folder: Path | None = None) -> list[Preset]:
    """Built-in presets first (in their fixed order), then the user's own."""
    builtin = [Preset(n, s, True) for n, s in builtin_presets().items()]
    return builtin + user_presets(folder)[0]


def delete_preset(name: str, folder: Path | None = None) -> bool:
    """Delete the user preset ``name``; False when there was none. Built-ins cannot go."""
    if name.casefold() in {b.casefold() for b in BUILTIN_CHANGES}:
        raise PresetError(f"“{name}” is a built-in preset and cannot be deleted.")
    for preset in user_presets(folder)[0]:
        if preset.name == name and preset.path is not None:
            try:
                preset.path.unlink()
            except OSError as exc:
                raise PresetError(f"Cannot delete {preset.path}: {exc.strerror or exc}") from None
            return True
    return False


def apply_preset(current: StyleSettings, preset: StyleSettings) -> StyleSettings:
    """``preset``'s look with ``current``'s machine fields (:data:`MACHINE_FIELDS`) and
    ``current``'s style blend (which depends on how many style images are loaded)."""
    keep = {name: getattr(current, name) for name in MACHINE_FIELDS}
    keep["style_blend"] = current.style_blend
    data = {**preset.to_dict(), **keep}
    return StyleSettings.from_dict(json.loads(json.dumps(data)))
