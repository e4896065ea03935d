from pathlib import Path

import pytest

from desktop.errors import UserDirError
from desktop.paths import ensure_user_dirs, ensure_writable, user_dirs


def test_facestyle_home_overrides_every_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTYLE_HOME", str(tmp_path / "portable"))
    dirs = user_dirs()
    for folder in (dirs.data, dirs.cache, dirs.logs, dirs.config):
        assert folder.parent == tmp_path / "portable"
    made = ensure_user_dirs()
    assert all(Path(p).is_dir() for p in made.as_dict().values())


def test_platform_folders_follow_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("FACESTYLE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dirs = user_dirs()
    assert dirs.data == tmp_path / "share" / "facestyle"
    assert dirs.cache == tmp_path / "cache" / "facestyle"


def test_unwritable_folder_names_the_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UserDirError) as info:
        ensure_writable(blocker / "data")
    assert str(blocker / "data") in info.value.message
    assert "FACESTYLE_HOME" in info.value.hint
