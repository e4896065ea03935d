from desktop.ui import settings as ui_settings


def test_settings_round_trip_through_the_ini_file(facestyle_home, qapp):
    s = ui_settings.app_settings()
    s.setValue("style/size", 384)
    s.setValue("checkin/camera", "/videos/door.mp4")
    s.setValue("style/preserve_colors", True)
    s.sync()
    assert (facestyle_home / "config" / "settings.ini").is_file()
    again = ui_settings.app_settings()
    assert ui_settings.read(again, "style/size", type_=int) == 384
    assert ui_settings.read(again, "checkin/camera", type_=str) == "/videos/door.mp4"
    assert ui_settings.read(again, "style/preserve_colors", type_=bool) is True


def test_missing_keys_fall_back_to_shipped_defaults(qapp):
    s = ui_settings.app_settings()
    assert ui_settings.read(s, "checkin/tau", type_=float) == 0.36
    assert ui_settings.read(s, "checkin/cooldown_hours", type_=float) == 4.0
    assert ui_settings.read(s, "nothing/here", "fallback") == "fallback"
