import json
import subprocess
import sys

from desktop.model_files import FACE_ENCODER, VGG19_WEIGHTS, all_model_files


def doctor(*args, env_home):
    env = {"FACESTYLE_HOME": str(env_home), "PATH": "/usr/bin:/bin", "HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, "-m", "desktop", "doctor", "--no-cameras", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_doctor_reports_every_model_file(tmp_path):
    out = doctor("--json", env_home=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["problems"] == []
    for model in all_model_files():
        assert model.found
        assert str(model.path) in report["models"][model.name]
    assert FACE_ENCODER in report["models"] and VGG19_WEIGHTS in report["models"]
    assert "torch" in report and report["torch"]["device"].startswith(("CPU", "CUDA"))


def test_doctor_fails_clearly_when_home_is_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = doctor(env_home=blocker / "home")
    assert out.returncode != 0
    assert "Cannot write to" in out.stdout
    assert str(blocker / "home") in out.stdout
