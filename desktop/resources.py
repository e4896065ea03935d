"""Files under ``resources/``: icons, style sheets and the default settings.

In a source checkout (and an editable install) the folder sits beside the package; in a
PyInstaller build it is unpacked under ``sys._MEIPASS``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any


def resources_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """The path of a file under ``resources/`` (it may not exist)."""
    return resources_dir().joinpath(*parts)


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    path = resource_path("default_settings.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def default_settings() -> dict[str, Any]:
    """The shipped defaults (a fresh copy), grouped by section: ``checkin``, ``style``..."""
    return json.loads(json.dumps(_defaults()))


def default(section: str, key: str, fallback: Any = None) -> Any:
    return _defaults().get(section, {}).get(key, fallback)
