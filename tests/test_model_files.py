import pytest

from desktop import model_files
from desktop.errors import ModelFileError


def test_models_are_found_without_importing_their_package():
    import sys

    for model in model_files.all_model_files():
        assert model.found, model.describe()
        assert model.size > 100_000
    assert "face_recognition_models" not in sys.modules


def test_missing_package_names_file_package_and_fix(monkeypatch):
    monkeypatch.setattr(model_files, "package_dir", lambda package: None)
    with pytest.raises(ModelFileError) as info:
        model_files.require(model_files.FACE_DETECTOR)
    err = info.value
    assert model_files.FACE_DETECTOR in err.message
    assert "face_recognition_models" in err.hint and "pip install" in err.hint


def test_truncated_file_is_reported(monkeypatch, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / model_files.FACE_ENCODER).write_bytes(b"\0" * 100)
    monkeypatch.setattr(model_files, "package_dir", lambda package: tmp_path)
    with pytest.raises(ModelFileError, match="truncated"):
        model_files.require(model_files.FACE_ENCODER)
