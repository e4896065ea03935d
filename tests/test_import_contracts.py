import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["importlinter"]["contracts"]


def test_core_packages_never_import_qt_face_never_imports_store_and_ui_has_no_cycles():
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists() and not shutil.which("lint-imports"):
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([str(exe) if exe.exists() else "lint-imports", "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Core packages never import Qt KEPT" in proc.stdout
    for contract in contracts():  # every contract was checked, and held
        assert f"{contract['name']} KEPT" in proc.stdout, contract["name"]


def test_the_structural_contracts_are_configured():
    by_type = {}
    for contract in contracts():
        by_type.setdefault(contract["type"], []).append(contract)
    layers = [c["layers"] for c in by_type.get("layers", [])]
    # desktop.face sits below desktop.store: it may never import it
    assert any(ls.index("desktop.store") < ls.index("desktop.face") for ls in layers
               if "desktop.store" in ls and "desktop.face" in ls)
    assert any("desktop.ui" in c["ancestors"] for c in by_type.get("acyclic_siblings", []))


def test_code_is_ruff_clean():
    exe = Path(sys.executable).parent / "ruff"
    if not exe.exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run([str(exe), "check", "desktop", "tests", "bench", "scripts"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
