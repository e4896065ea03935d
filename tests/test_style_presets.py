"""Style presets: built-ins, save/load round trip, bad files, applying."""

import json

import pytest

from desktop.paths import user_dirs
from desktop.style import presets
from desktop.style.presets import (
    PresetError,
    apply_preset,
    builtin_presets,
    delete_preset,
    read_preset,
    save_preset,
    user_presets,
)
from desktop.style.settings import StyleSettings


def test_builtins_are_valid_and_differ_in_the_way_their_names_say():
    built = builtin_presets()
    assert list(built) == ["Gatys 2015", "soft", "strong style"]
    for settings in built.values():
        presets.validate(settings)
    gatys, soft, strong = built["Gatys 2015"], built["soft"], built["strong style"]
    assert gatys.alpha / gatys.beta == pytest.approx(1e-3)
    assert gatys.init == "noise" and gatys.optimizer == "lbfgs"
    assert gatys.content_layer == "relu4_2"
    assert gatys.style_layers == {f"relu{b}_1": 0.2 for b in range(1, 6)}
    default = StyleSettings()
    assert soft.beta < default.beta < strong.beta
    # soft leans on deep layers, strong style on shallow ones
    assert soft.style_layers["relu5_1"] > soft.style_layers["relu1_1"]
    assert strong.style_layers["relu1_1"] > strong.style_layers["relu5_1"]
    built["soft"].style_layers["relu1_1"] = 99.0  # a fresh copy each call
    assert builtin_presets()["soft"].style_layers["relu1_1"] != 99.0


def test_a_saved_preset_reads_back_equal():
    settings = StyleSettings(alpha=2.5, beta=3e5, content_layer="conv4_2",
                             style_layers={"relu1_1": 0.5, "conv3_1": 0.25},
                             style_blend=[0.7, 0.3], size=384, iterations=123,
                             optimizer="adam", lr=3.0, init="style", tv_weight=1e-4, seed=42,
                             preserve_colors=True, pooling="avg", multiscale=True,
                             device="cpu", precision="fp32")
    path = save_preset("My look #2", settings)
    assert path == user_dirs().config / "style-presets" / "my-look-2.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == "facestyle-style-preset" and doc["name"] == "My look #2"
    loaded = read_preset(path)
    assert loaded.name == "My look #2" and not loaded.builtin
    assert loaded.settings == settings
    # saving under the same name replaces it
    save_preset("My look #2", StyleSettings(alpha=9.0))
    mine, problems = user_presets()
    assert [p.name for p in mine] == ["My look #2"] and problems == []
    assert mine[0].settings.alpha == 9.0


def test_all_presets_lists_builtins_then_the_users_sorted():
    save_preset("zebra", StyleSettings())
    save_preset("Apple", StyleSettings())
    names = [p.name for p in presets.all_presets()]
    assert names == ["Gatys 2015", "soft", "strong style", "Apple", "zebra"]


def test_names_that_cannot_be_saved():
    with pytest.raises(PresetError, match="name"):
        save_preset("   ", StyleSettings())
    with pytest.raises(PresetError, match="built-in"):
        save_preset("SOFT", StyleSettings())
    with pytest.raises(PresetError, match="alpha"):
        save_preset("neg", StyleSettings(alpha=-1.0))


def test_broken_files_are_reported_and_do_not_hide_the_others():
    folder = presets.presets_dir()
    save_preset("good", StyleSettings(beta=5.0))
    (folder / "not-json.json").write_text("{oops")
    (folder / "other.json").write_text(json.dumps({"format": "something else"}))
    bad = {"format": presets.FORMAT, "version": 1, "name": "bad",
           "settings": {"alpha": "lots", "optimizer": "sgd", "style_layers": {"relu9_9": 1}}}
    (folder / "bad.json").write_text(json.dumps(bad))
    found, problems = user_presets()
    assert [p.name for p in found] == ["good"]
    text = " | ".join(p.message for p in problems)
    assert "not valid JSON" in text and "not a facestyle style preset" in text
    assert "alpha must be a number" in text and "optimizer must be one of" in text
    assert "relu9_9" in text


def test_integers_written_by_hand_load_as_floats():
    folder = presets.presets_dir()
    folder.mkdir(parents=True)
    doc = {"format": presets.FORMAT, "version": 1, "name": "hand",
           "settings": {"alpha": 1, "beta": 1000, "unknown_future_key": True}}
    (folder / "hand.json").write_text(json.dumps(doc))
    preset = read_preset(folder / "hand.json")
    assert preset.settings.beta == 1000.0 and isinstance(preset.settings.beta, float)


def test_delete_removes_only_user_presets():
    save_preset("temp", StyleSettings())
    assert delete_preset("temp") is True
    assert delete_preset("temp") is False
    assert user_presets()[0] == []
    with pytest.raises(PresetError, match="built-in"):
        delete_preset("Gatys 2015")


def test_applying_a_preset_keeps_the_machine_and_the_blend():
    current = StyleSettings(size=256, device="cpu", precision="fp32", style_blend=[0.2, 0.8],
                            alpha=7.0)
    result = apply_preset(current, builtin_presets()["strong style"])
    assert (result.size, result.device, result.precision) == (256, "cpu", "fp32")
    assert result.style_blend == [0.2, 0.8]
    assert result.beta == builtin_presets()["strong style"].beta
    assert result.alpha == 1.0


def test_slug():
    assert presets.slug("Café au lait!") == "cafe-au-lait"
    assert presets.slug("///") == "preset"
