"""Can Qt open a window here? A check that runs before Qt does, without importing Qt.

When Qt cannot load its platform plugin it prints "no Qt platform plugin could be
initialized" and aborts the process, which names neither the missing library nor the fix.
On Linux the usual cause is a desktop without some of the X11 client libraries the xcb
plugin links to (``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``, ...): the
PySide6 wheel carries Qt itself but relies on the system for those.

:func:`check` finds the plugin Qt will pick (``QT_QPA_PLATFORM``, else ``xcb`` when
``DISPLAY`` is set, else ``wayland`` when ``WAYLAND_DISPLAY`` is), asks the dynamic linker
(``ldd``) which of its shared libraries cannot be found, and names the Debian/Ubuntu
packages that provide them, as one ``apt-get install`` line. ``facestyle doctor`` prints
the result; ``facestyle`` (the window) prints it instead of Qt's abort.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Shared library (soname) -> the Debian/Ubuntu package that provides it, for the libraries
#: Qt's xcb and wayland plugins link to that a minimal desktop may lack.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}

#: Plugins that need no display and no system library beyond what the wheel carries.
HEADLESS_PLUGINS = ("offscreen", "minimal")

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


@dataclass
class PlatformCheck:
    """What :func:`check` found. ``problem`` is None when Qt should start."""

    plugin: str | None  # the platform plugin Qt will use (None: it cannot pick one)
    plugin_path: Path | None = None
    missing: list[str] = field(default_factory=list)  # sonames the linker cannot find
    problem: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def apt_line(self) -> str | None:
        """``sudo apt-get install -y PKG ...`` for the missing libraries (None: none missing)."""
        packages = missing_packages(self.missing)
        return f"sudo apt-get install -y {' '.join(packages)}" if packages else None

    def summary(self) -> str:
        """One line for ``doctor``: the plugin and whether it loads."""
        if self.plugin is None:
            return "none (no display)"
        if self.missing:
            return f"{self.plugin} (cannot load: {', '.join(self.missing)} missing)"
        return f"{self.plugin} (loads)" if self.ok else f"{self.plugin} ({self.problem})"


def missing_packages(sonames: list[str]) -> list[str]:
    """Debian/Ubuntu packages for ``sonames``, in order, each once; a library the table
    does not know is named as ``<soname> (find its package with apt-file search)``."""
    out: list[str] = []
    for name in sonames:
        package = DEBIAN_PACKAGES.get(name, f"<package with {name}>")
        if package not in out:
            out.append(package)
    return out


def chosen_plugin(env: Mapping[str, str] | None = None) -> str | None:
    """The platform plugin Qt will try first, as Qt decides on Linux: ``QT_QPA_PLATFORM``
    (its first entry), else ``xcb`` with ``DISPLAY``, else ``wayland`` with
    ``WAYLAND_DISPLAY``; None when there is no display at all. Other systems: their own
    native plugin (``cocoa``, ``windows``), which needs no check."""
    env = os.environ if env is None else env
    explicit = env.get("QT_QPA_PLATFORM", "").strip()
    if explicit:
        return re.split(r"[;:]", explicit, maxsplit=1)[0].strip() or None
    if sys.platform == "darwin":
        return "cocoa"
    if sys.platform.startswith("win"):
        return "windows"
    if env.get("DISPLAY"):
        return "xcb"
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return None


def plugins_dir() -> Path | None:
    """PySide6's ``Qt/plugins/platforms`` folder, found without importing PySide6."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for sub in ("Qt/plugins/platforms", "plugins/platforms"):
            folder = Path(root) / sub
            if folder.is_dir():
                return folder
    return None


def run_ldd(path: Path) -> str:
    """``ldd path``'s output ('' where ldd is not available)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ""
    try:
        return subprocess.run([ldd, str(path)], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def not_found(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as ``=> not found``, in order, each once."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def _x11_display_reachable(display: str) -> bool | None:
    """Whether a local X display's socket exists (None: not a local display; unknown)."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display.strip())
    if not match:
        return None
    return Path(f"/tmp/.X11-unix/X{match.group(1)}").exists()


def check(env: Mapping[str, str] | None = None, folder: Path | None = None,
          ldd: Callable[[Path], str] = run_ldd) -> PlatformCheck:
    """Whether Qt can load the platform plugin it will pick (see the module doc)."""
    env = os.environ if env is None else env
    plugin = chosen_plugin(env)
    if plugin is None:
        return PlatformCheck(
            None, problem="No display: neither DISPLAY nor WAYLAND_DISPLAY is set, so the "
            "window has nowhere to open.",
            hint="Start facestyle from a desktop session, or render the window to a file "
            "with 'facestyle gui --screenshot out.png' (QT_QPA_PLATFORM=offscreen).")
    if not sys.platform.startswith("linux") or plugin in HEADLESS_PLUGINS:
        return PlatformCheck(plugin)
    folder = folder if folder is not None else plugins_dir()
    if folder is None:
        return PlatformCheck(plugin, problem="PySide6 is not installed.",
                             hint="Run 'make run' (or pip install -e .) to install it.")
    path = folder / f"libq{plugin}.so"
    if not path.is_file():
        known = sorted(p.name.removeprefix("libq").removesuffix(".so")
                       for p in folder.glob("libq*.so"))
        return PlatformCheck(plugin, path, problem=f"Qt has no platform plugin {plugin!r}.",
                             hint=f"Set QT_QPA_PLATFORM to one of: {', '.join(known)}.")
    # the plugin, and the Qt library that carries the xcb integration
    missing = not_found(ldd(path))
    if plugin == "xcb":
        qpa = folder.parent.parent / "lib" / "libQt6XcbQpa.so.6"
        if qpa.is_file():
            missing = list(dict.fromkeys([*missing, *not_found(ldd(qpa))]))
    result = PlatformCheck(plugin, path, missing)
    if missing:
        result.problem = (f"Qt's {plugin} platform plugin cannot load: this system lacks "
                          f"{', '.join(missing)}.")
        result.hint = f"Install them with: {result.apt_line()}"
        return result
    if plugin == "xcb" and _x11_display_reachable(env.get("DISPLAY", "")) is False:
        result.problem = f"The X display {env.get('DISPLAY')} is not running."
        result.hint = ("Check DISPLAY (echo $DISPLAY), or render the window to a file with "
                       "'facestyle gui --screenshot out.png'.")
    return result
