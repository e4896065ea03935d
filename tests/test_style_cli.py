"""``facestyle stylize`` end to end on small images, and the result files it writes."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from desktop.commands.stylize import parse_style_layers
from desktop.style.optimize import stylize
from desktop.style.output import read_settings, save_result
from desktop.style.settings import StyleSettings


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(content)
    style = tmp_path / "style.jpg"
    stripes = np.zeros((48, 48, 3), np.uint8)
    stripes[:, ::6] = (250, 200, 20)
    Image.fromarray(stripes).save(style)
    gray16 = tmp_path / "gray16.png"  # a 16-bit grayscale style goes through load_rgb
    Image.fromarray((rng.integers(0, 65535, (32, 32))).astype(np.uint16)).save(gray16)
    return content, style, gray16


def test_stylize_writes_png_sidecar_and_a_valid_report(tmp_path, images, capsys):
    content, style, gray16 = images
    out, report = tmp_path / "g.png", tmp_path / "report.json"
    rc = main(["stylize", str(content), str(style), str(gray16), "-o", str(out),
               "--size", "48", "--iterations", "3", "--beta", "100", "--style-blend", "0.7,0.3",
               "--style-layers", "relu1_1:0.5,relu2_1:0.5", "--seed", "2",
               "--precision", "fp32", "--report", str(report), "--quiet"])
    assert rc == 0
    doc = json.loads(report.read_text())
    assert set(doc) >= {"settings", "device", "precision", "iterations"}
    assert doc["precision"] == "fp32" and doc["device"].startswith("CPU")
    assert doc["settings"]["style_layers"] == {"relu1_1": 0.5, "relu2_1": 0.5}
    assert doc["settings"]["style_blend"] == [0.7, 0.3]
    rows = doc["iterations"]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert set(r) == {"iteration", "seconds", "content", "style", "tv", "total"}
        assert r["seconds"] > 0
        assert r["total"] == pytest.approx(r["content"] + r["style"] + r["tv"], rel=1e-6)
    assert rows[-1]["total"] < rows[0]["total"]
    g = np.asarray(Image.open(out))
    assert g.shape == (34, 48, 3)
    saved = read_settings(out)
    assert saved.to_dict() == StyleSettings.from_dict(doc["settings"]).to_dict()
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["iteration"] == 3 and sidecar["precision"] == "fp32"


def test_cli_and_library_give_the_same_image(tmp_path, images):
    content, style, _ = images
    out = tmp_path / "cli.png"
    assert main(["stylize", str(content), str(style), "-o", str(out), "--size", "40",
                 "--iterations", "2", "--init", "noise", "--seed", "7", "--quiet"]) == 0
    settings = read_settings(out)
    from desktop.imageio import load_rgb

    last = list(stylize(load_rgb(content), [load_rgb(style)], settings))[-1]
    np.testing.assert_array_equal(np.asarray(Image.open(out)), last.image)


def test_threads_option_sets_the_thread_count_and_reproduces_that_run(tmp_path, images):
    """``--threads 1`` paints what the library paints on one thread (the Style tab's count
    on a 2-core machine), and gives the process's threads back to no one else: it is the
    whole run's setting."""
    import torch

    from desktop.imageio import load_rgb

    content, style, _ = images
    out = tmp_path / "one.png"
    before = torch.get_num_threads()
    try:
        assert main(["stylize", str(content), str(style), "-o", str(out), "--size", "48",
                     "--iterations", "6", "--threads", "1", "--quiet"]) == 0
        assert torch.get_num_threads() == 1
        last = list(stylize(load_rgb(content), [load_rgb(style)], read_settings(out)))[-1]
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), last.image)
    assert main(["stylize", str(content), str(style), "-o", str(out), "--threads", "-1"]) == 2


def test_settings_option_repeats_a_saved_run_and_options_override_it(tmp_path, images,
                                                                     capsys):
    """``--settings RESULT`` takes the saved settings and thread count: the same G again,
    without repeating any option; an option given beside it wins."""
    import torch

    content, style, _ = images
    first, again, shorter = (tmp_path / f"{n}.png" for n in ("first", "again", "shorter"))
    before = torch.get_num_threads()
    try:
        assert main(["stylize", str(content), str(style), "-o", str(first), "--size", "40",
                     "--iterations", "5", "--init", "noise", "--seed", "11", "--beta", "300",
                     "--style-layers", "relu1_1:1,relu2_1:0.5", "--threads", "1",
                     "--preserve-colors", "--quiet"]) == 0
        assert json.loads(first.with_suffix(".json").read_text())["threads"] == 1
        torch.set_num_threads(before)
        assert main(["stylize", str(content), str(style), "-o", str(again),
                     "--settings", str(first), "--quiet"]) == 0
        assert torch.get_num_threads() == 1  # the saved run's count
        assert main(["stylize", str(content), str(style), "-o", str(shorter),
                     "--settings", str(first.with_suffix(".json")), "--iterations", "2",
                     "--no-preserve-colors", "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(first)))
    assert read_settings(again) == read_settings(first) and read_settings(again).preserve_colors
    saved = read_settings(shorter)
    assert saved.iterations == 2 and saved.seed == 11 and saved.beta == 300
    assert not saved.preserve_colors
    assert saved.style_layers == {"relu1_1": 1.0, "relu2_1": 0.5} and saved.init == "noise"
    assert json.loads(shorter.with_suffix(".json").read_text())["iteration"] == 2
    # painted on more threads than this machine has cores: capped, and said
    sidecar = json.loads(first.with_suffix(".json").read_text())
    sidecar["threads"] = 4096
    first.with_suffix(".json").write_text(json.dumps(sidecar))
    capsys.readouterr()
    try:
        assert main(["stylize", str(content), str(style), "-o", str(again), "--settings",
                     str(first.with_suffix(".json")), "--iterations", "1", "--quiet"]) == 0
        assert torch.get_num_threads() <= (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)
    assert "painted on 4096 threads" in capsys.readouterr().err
    assert main(["stylize", str(content), str(style), "-o", str(again),
                 "--settings", str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain)
    assert main(["stylize", str(content), str(style), "-o", str(again),
                 "--settings", str(plain)]) == 2
    assert "holds no facestyle settings" in capsys.readouterr().err


def test_bad_inputs_give_messages_not_tracebacks(tmp_path, images, capsys):
    content, style, _ = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["stylize", str(content), str(broken), "-o", str(tmp_path / "o.png")]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert main(["stylize", str(tmp_path / "none.png"), str(style), "-o",
                 str(tmp_path / "o.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["stylize", str(content), str(style), "-o", str(tmp_path / "no/dir/o.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
                 "--content-layer", "relu7_1"]) == 2
    assert "not a VGG19" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stylize", str(content), "-o", str(tmp_path / "o.png")])  # no style


def test_style_layer_option_parsing():
    assert parse_style_layers("relu1_1:0.2, relu2_1") == {"relu1_1": 0.2, "relu2_1": 1.0}


def test_save_result_writes_whole_files_and_reports_unwritable_folders(tmp_path):
    img = np.zeros((4, 5, 3), np.uint8)
    png, sidecar = save_result(tmp_path / "x.png", img, StyleSettings(beta=3.0),
                               {"iteration": np.int64(9)})
    assert read_settings(png).beta == 3.0 and read_settings(sidecar).beta == 3.0
    assert json.loads(sidecar.read_text())["iteration"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.png"]
    from desktop.errors import FacestyleError

    with pytest.raises(FacestyleError, match="Cannot save"):
        save_result(tmp_path / "missing" / "x.png", img, StyleSettings())


def test_coarse_to_fine_and_stop_when_flat_are_on_unless_switched_off():
    import argparse

    from desktop.commands import stylize as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())

    def settings(*extra: str):
        args = ["stylize", "c.jpg", "s.jpg", "-o", "g.png", *extra]
        return command.settings_from_args(parser.parse_args(args))

    default = settings()
    assert default.multiscale and default.stop_when_flat
    off = settings("--no-multiscale", "--no-stop-when-flat")
    assert not off.multiscale and not off.stop_when_flat
    # a saved run's choice is kept unless the option is given
    base = StyleSettings(multiscale=False, stop_when_flat=False)
    plain = parser.parse_args(["stylize", "c.jpg", "s.jpg", "-o", "g.png"])
    kept = command.settings_from_args(plain, base)
    assert not kept.multiscale and not kept.stop_when_flat
    given = command.settings_from_args(parser.parse_args(
        ["stylize", "c.jpg", "s.jpg", "-o", "g.png", "--stop-when-flat"]), base)
    assert given.stop_when_flat and not given.multiscale


def test_stylize_video_paints_a_shots_first_frame_coarse_to_fine_by_default_like_the_tab():
    from desktop.cli import build_parser
    from desktop.commands.stylize import settings_from_args

    parser = build_parser()
    base = ["stylize-video", "in.mp4", "style.jpg", "-o", "out.mp4"]
    assert settings_from_args(parser.parse_args(base)).multiscale == StyleSettings().multiscale
    assert settings_from_args(parser.parse_args([*base, "--multiscale"])).multiscale
    assert not settings_from_args(parser.parse_args([*base, "--no-multiscale"])).multiscale
