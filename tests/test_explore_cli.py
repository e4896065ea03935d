"""``facestyle explore``: top-patches JSON and sheet, visualize, conv-shape, layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from explore_helpers import write_folder
from PIL import Image

from desktop.cli import main


def test_top_patches_writes_sorted_json_and_a_sheet(tmp_path, capsys):
    write_folder(tmp_path / "imgs", [(60, 80), (64, 64), (60, 80), (50, 90)])
    out_json, out_png = tmp_path / "top.json", tmp_path / "sheet.png"
    code = main(["explore", "top-patches", str(tmp_path / "imgs"), "--layer", "relu2_1",
                 "--units", "0-3,10", "--top", "3", "--json", str(out_json), "--sheet",
                 str(out_png), "--precision", "fp32", "--device", "cpu", "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "relu2_1: 128 units, receptive field 10 px, stride 2 px; 4 images" in text
    doc = json.loads(out_json.read_text())
    assert doc["receptive_field"]["size"] == 10 and doc["top_k"] == 3
    assert [u["unit"] for u in doc["units"]] == [0, 1, 2, 3, 10]
    for unit in doc["units"]:
        values = [e["activation"] for e in unit["top"]]
        assert values == sorted(values, reverse=True) and len(values) == 3
        assert len({e["image"] for e in unit["top"]}) == 3  # one per image by default
        for e in unit["top"]:
            x0, y0, x1, y1 = e["box"]
            assert (x1 - x0, y1 - y0) == (10, 10)
            assert e["image"].endswith(".png") and len(e["position"]) == 2
    sheet = np.asarray(Image.open(out_png))
    assert sheet.shape[1] > 4 * 30 and sheet.shape[2] == 3

    # again: from the cache, same JSON
    again = tmp_path / "again.json"
    assert main(["explore", "top-patches", str(tmp_path / "imgs"), "--layer", "relu2_1",
                 "--units", "0-3,10", "--top", "3", "--json", str(again), "--precision",
                 "fp32", "--device", "cpu", "--quiet"]) == 0
    assert "from the cache" in capsys.readouterr().out
    assert json.loads(again.read_text())["units"] == doc["units"]


def test_top_patches_without_outputs_prints_each_unit(tmp_path, capsys):
    write_folder(tmp_path, [(40, 40), (40, 40)])
    assert main(["explore", "top-patches", str(tmp_path), "--layer", "relu1_1", "--units",
                 "5", "--precision", "fp32", "--quiet"]) == 0
    assert "unit 5: max" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["explore", "top-patches", "/no/such/folder"], "is not a folder"),
    (["explore", "top-patches", ".", "--gallery"], "--network encoder"),
    (["explore", "top-patches", ".", "--layer", "relu9_9", "--quiet"], "has no layer"),
    (["explore", "top-patches", ".", "--units", "600-700"], "units 0 to 255"),
    (["explore", "top-patches", ".", "--json", "/no/such/dir/x.json"], "does not exist"),
    (["explore", "conv-shape", "--dims", "2", "--input", "3", "--filter", "5"],
     "larger than the padded input"),
])
def test_bad_requests_get_one_plain_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_gallery_without_a_database_says_what_to_do(tmp_path, capsys):
    code = main(["explore", "top-patches", "--gallery", "--network", "encoder", "--db",
                 str(tmp_path / "none.sqlite3"), "--quiet"])
    assert code == 2
    assert "facestyle:" in capsys.readouterr().err


def test_conv_shape_prints_the_formula_and_torchs_answer(capsys):
    assert main(["explore", "conv-shape", "--dims", "1", "--input", "14", "--filter", "5",
                 "--filters", "16"]) == 0
    out = capsys.readouterr().out
    assert "floor((14 + 2·0 - 5) / 1) + 1 = 10" in out
    assert "Conv1d gives (16, 10): agrees" in out
    assert main(["explore", "conv-shape", "--dims", "3", "--input", "16,112,112",
                 "--channels", "3", "--filter", "3", "--stride", "1,2,2", "--padding", "1",
                 "--filters", "8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == doc["torch_output"] == [8, 16, 56, 56] and doc["agree"]
    assert doc["parameters"] == (27 * 3 + 1) * 8


def test_layers_lists_fields(capsys):
    assert main(["explore", "layers", "--network", "vgg19", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"layer": "relu1_1", "units": 64, "receptive_field": 3, "stride": 1,
                       "start": -1, "note": ""}
    assert main(["explore", "layers", "--network", "encoder"]) == 0
    assert "level0" in capsys.readouterr().out


def test_visualize_saves_a_png_with_its_settings(tmp_path, capsys):
    out = tmp_path / "unit.png"
    assert main(["explore", "visualize", "--layer", "relu2_1", "--unit", "7", "--steps", "4",
                 "--size", "48", "--precision", "fp32", "-o", str(out), "--quiet"]) == 0
    assert "after 4 steps" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.size == (48, 48)
        saved = json.loads(img.text["facestyle-explore"])
    assert saved["layer"] == "relu2_1" and saved["unit"] == 7 and saved["steps"] == 4


@pytest.mark.parametrize("command", ["top-patches", "visualize"])
def test_help_states_defaults_and_no_empty_ones(command, capsys):
    with pytest.raises(SystemExit):
        main(["explore", command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert "(default: vgg19)" in text
