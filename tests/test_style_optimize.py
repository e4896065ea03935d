"""The style loop: yields per iteration, lowers J, pauses/resumes/stops, refuses bad input."""

import threading
import time

import numpy as np
import pytest
import torch

from desktop.errors import Cancelled, FacestyleError
from desktop.style import optimize
from desktop.style.images import resize, rgb_to_yiq
from desktop.style.lbfgs import LBFGS
from desktop.style.optimize import estimate_memory, plan_job, stylize
from desktop.style.settings import StyleSettings
from desktop.style.vgg import preprocess
from desktop.tasks import CancelToken


def make_content(h=48, w=64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (h + w)], axis=2)
    img[h // 3: 2 * h // 3, w // 4: w // 2] = (240, 30, 30)  # a red block
    return img.astype(np.uint8)


def make_style(h=56, w=56, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    stripes = ((np.arange(w)[None, :] // 4) % 2 * 200).astype(np.uint8)
    img = np.stack([stripes.repeat(h, 0), rng.integers(0, 80, (h, w)),
                    255 - stripes.repeat(h, 0)], axis=2)
    return img.astype(np.uint8)


def small(**kw) -> StyleSettings:
    base = {"size": 64, "iterations": 5, "beta": 1e2, "precision": "fp32", "device": "cpu"}
    base.update(kw)
    return StyleSettings(**base)


def test_64px_five_iterations_lower_the_loss_and_yield_every_g():
    reports = list(stylize(make_content(), [make_style()], small()))
    assert [r.iteration for r in reports] == [1, 2, 3, 4, 5]
    assert all(r.total_iterations == 5 for r in reports)
    for r in reports:
        assert r.image.shape == (48, 64, 3) and r.image.dtype == np.uint8
        assert r.total == pytest.approx(r.content + r.style + r.tv, rel=1e-6)
        assert r.seconds > 0 and r.precision == "fp32" and r.device.startswith("CPU")
    assert reports[-1].total < reports[0].total
    assert not np.array_equal(reports[0].image, reports[-1].image)


def test_default_precision_path_also_lowers_the_loss():
    reports = list(stylize(make_content(), [make_style()], small(precision="auto")))
    assert len(reports) == 5 and reports[-1].total < reports[0].total


def test_adam_and_noise_init_are_seeded_and_reproducible():
    s = small(optimizer="adam", lr=5.0, init="noise", seed=3, iterations=3)
    a = [r.image for r in stylize(make_content(), [make_style()], s)]
    b = [r.image for r in stylize(make_content(), [make_style()], s)]
    c = [r.image for r in stylize(make_content(), [make_style()], small(
        optimizer="adam", lr=5.0, init="noise", seed=4, iterations=3))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_multiscale_runs_coarse_to_fine_with_the_same_total():
    s = small(size=256, iterations=6, multiscale=True, stop_when_flat=False)
    reports = list(stylize(make_content(96, 128), [make_style()], s))
    assert [r.scale_index for r in reports] == [0] + [1] * 5
    assert reports[0].image.shape == (96, 128, 3) and reports[-1].image.shape == (192, 256, 3)


def test_coarse_to_fine_is_the_default_and_reports_every_scale():
    assert StyleSettings().multiscale
    s = small(size=512, iterations=12, multiscale=True)
    plan = plan_job((384, 512, 3), s)
    assert plan.scales == [(96, 128), (192, 256), (384, 512)]
    assert plan.iterations == [1, 1, 10]  # a fifteenth (at least 1) per coarser scale
    reports = list(stylize(make_content(96, 128), [make_style()], small(
        size=256, iterations=5, stop_when_flat=False)))
    assert reports[0].scales == [(96, 128, 1), (192, 256, 4)]
    assert [r.size for r in reports] == [(96, 128)] + [(192, 256)] * 4
    assert [r.scale_iteration for r in reports] == [1, 1, 2, 3, 4]


def test_upsampling_g_keeps_the_start_images_detail_and_carries_the_coarse_change():
    content = make_content(96, 128)
    fine, coarse = preprocess(content), preprocess(resize(content, 48, 64))
    # nothing changed at the coarse scale: the fine scale starts from the sharp content
    assert torch.equal(optimize.upsample_g(coarse.clone(), 96, 128, coarse, fine), fine)
    blurred = optimize.upsample_g(coarse, 96, 128)  # without origins: G itself, blurred
    assert (blurred - fine).abs().max() > 20.0  # the red block's edges
    # a change painted at the coarse scale arrives upsampled on top of the sharp content
    change = torch.zeros_like(coarse)
    change[..., 10:20, 20:40] = 30.0
    out = optimize.upsample_g(coarse + change, 96, 128, coarse, fine)
    assert torch.allclose(out - fine, optimize.upsample_g(change, 96, 128), atol=1e-4)
    assert float((out - fine)[..., 24:36, 44:76].mean()) == pytest.approx(30.0, abs=0.5)


def test_each_finer_scale_starts_from_the_content_at_its_own_size(monkeypatch):
    calls = []
    real = optimize.upsample_g
    monkeypatch.setattr(optimize, "upsample_g",
                        lambda g, h, w, a=None, b=None: calls.append((h, w, a, b)) or
                        real(g, h, w, a, b))
    s = small(size=256, iterations=4, multiscale=True, stop_when_flat=False)
    content = make_content(96, 128)
    list(stylize(content, [make_style()], s))
    assert [(h, w) for h, w, _, _ in calls] == [(192, 256)]
    _, _, coarse, fine = calls[0]
    assert torch.equal(coarse, preprocess(resize(content, 96, 128)))
    assert torch.equal(fine, preprocess(resize(content, 192, 256)))
    calls.clear()  # a noise start has no image to keep: G itself is upsampled
    list(stylize(content, [make_style()], small(size=256, iterations=4, multiscale=True,
                                                init="noise", stop_when_flat=False)))
    assert [(a, b) for _, _, a, b in calls] == [(None, None)]


def test_iterations_split_gives_the_full_size_most_and_every_scale_some():
    split = optimize.split_iterations
    assert split(300, 3) == [20, 20, 260] and split(300, 2) == [20, 280]
    assert split(300, 1) == [300]
    assert split(3, 3) == [1, 1, 1] and split(2, 3) == [0, 0, 2]
    for total in range(1, 40):
        for n in (1, 2, 3):
            parts = split(total, n)
            assert sum(parts) == total and parts[-1] >= 1 and parts[-1] >= max(parts)


def test_coarse_scales_measure_j_in_the_output_sizes_units():
    """The content term sums over the content layer's positions, which a coarser scale has
    a quarter of per halving, while the style terms are per position: so at a coarse scale
    alpha is multiplied by the ratio of positions, and J keeps its balance and its units."""
    from desktop.style.vgg import layer_shape, preprocess

    settings = small(size=256, iterations=2, multiscale=True, beta=0.0)
    content = make_content(96, 128)
    plan = plan_job(content.shape, settings)
    net = optimize.get_network(plan.last_layer, settings.pooling, plan.precision)
    coarse = optimize.Problem(net, plan.precision, settings, plan, content, [make_style()],
                              96, 128)
    fine = optimize.Problem(net, plan.precision, settings, plan, content, [make_style()],
                            192, 256)
    _, fh, fw = layer_shape("relu4_2", 192, 256)
    _, ch, cw = layer_shape("relu4_2", 96, 128)
    assert coarse.content_scale == pytest.approx(fh * fw / (ch * cw)) and ch * cw > 0
    assert fine.content_scale == 1.0
    g = preprocess(make_style(96, 128)).requires_grad_(True)
    terms, _ = coarse.evaluate(g)
    from desktop.style.precision import features

    with torch.no_grad():
        a = features(net, g.detach(), ["relu4_2"], plan.precision)["relu4_2"].float()
        c = features(net, preprocess(content), ["relu4_2"], plan.precision)["relu4_2"].float()
    plain = 0.5 * float(((a - c) ** 2).sum())
    assert terms["content"] == pytest.approx(coarse.content_scale * plain, rel=1e-4)


def test_remaining_work_weighs_coarse_iterations_by_their_pixels():
    from desktop.style.settings import IterationReport

    image = np.zeros((96, 128, 3), np.uint8)
    report = IterationReport(iteration=3, total_iterations=30, image=image, content=0,
                             style=0, tv=0, total=0, seconds=0.1, scale_index=0,
                             scales=[(96, 128, 10), (192, 256, 10), (384, 512, 10)],
                             scale_iteration=3)
    assert report.remaining_work() == pytest.approx(7 + 10 * 4 + 10 * 16)
    fine = IterationReport(iteration=25, total_iterations=30, image=image, content=0,
                           style=0, tv=0, total=0, seconds=0.1, scale_index=2,
                           scales=report.scales, scale_iteration=5)
    assert fine.size == (384, 512) and fine.remaining_work() == pytest.approx(5)


def test_preserve_colors_keeps_the_contents_chroma():
    content = make_content()
    r = list(stylize(content, [make_style()], small(preserve_colors=True, iterations=3)))[-1]
    iq_out = rgb_to_yiq(r.image)[..., 1:]
    iq_in = rgb_to_yiq(content)[..., 1:]
    assert np.abs(iq_out - iq_in).mean() < 3.0  # only rounding and clipping differ


def test_several_styles_blend():
    reports = list(stylize(make_content(), [make_style(), make_style(seed=5)[::-1]],
                           small(style_blend=[0.7, 0.3], iterations=2)))
    assert len(reports) == 2
    with pytest.raises(FacestyleError, match="2 style images"):
        list(stylize(make_content(), [make_style(), make_style()], small(style_blend=[1.0])))


def test_pause_resume_and_stop_between_iterations():
    token = CancelToken()
    seen: list[int] = []
    outcome: list[str] = []
    first = threading.Event()

    def consume():
        try:
            for r in stylize(make_content(), [make_style()], small(iterations=50), token):
                seen.append(r.iteration)
                first.set()
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    token.pause()
    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.5)
    assert seen == []  # paused before the first iteration
    token.resume()
    assert first.wait(60)
    token.pause()
    time.sleep(0.3)
    frozen = len(seen)
    time.sleep(0.5)
    assert len(seen) == frozen  # nothing moves while paused
    token.resume()
    deadline = time.monotonic() + 60
    while len(seen) < frozen + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(seen) >= frozen + 2
    token.cancel()
    worker.join(60)
    assert outcome == ["cancelled"] and len(seen) < 50


@pytest.mark.parametrize("content, styles, match", [
    (None, [make_style()], "No content image"),
    (make_content(), [], "No style image"),
    (make_content(), [None], "No style image"),
    (np.zeros((8, 8), np.uint8), [make_style()], "RGB uint8"),
])
def test_missing_or_malformed_images_say_what_is_missing(content, styles, match):
    with pytest.raises(FacestyleError, match=match) as info:
        list(stylize(content, styles, small()))
    assert info.value.hint


@pytest.mark.parametrize("kw, match", [
    ({"content_layer": "relu9_9"}, "not a VGG19"),
    ({"style_layers": {"pool1": 1.0}}, "not a VGG19"),
    ({"style_layers": {"relu1_1": -1.0}}, "non-negative"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"init": "random"}, "init"),
    ({"iterations": 0}, "at least 1"),
    ({"alpha": 0.0, "beta": 0.0}, "nothing to optimise"),
    ({"precision": "fp8"}, "precision"),
])
def test_bad_settings_are_explained(kw, match):
    with pytest.raises(FacestyleError, match=match):
        plan_job((48, 64, 3), small(**kw))


def test_huge_sizes_are_capped_with_a_notice(monkeypatch):
    monkeypatch.setattr(optimize, "available_bytes", lambda device: None)
    plan = plan_job((3000, 4000, 3), small(size=10_000))
    assert max(plan.height, plan.width) == optimize.MAX_SIZE
    assert any("capped" in n for n in plan.notices)


def test_too_big_for_memory_suggests_a_size_that_fits(monkeypatch):
    s = small(size=1024)
    need = estimate_memory(s, (768, 1024, 3))
    monkeypatch.setattr(optimize, "available_bytes", lambda device: need // 3)
    with pytest.raises(FacestyleError, match="memory") as info:
        plan_job((768, 1024, 3), s)
    suggested = int(info.value.hint.split("size ")[1].split(" ")[0])
    assert 32 <= suggested < 1024
    assert estimate_memory(small(size=suggested), (768, 1024, 3)) <= need // 3


def test_memory_estimate_grows_with_size():
    sizes = [estimate_memory(small(size=s), (300, 400, 3)) for s in (128, 256, 512)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_lbfgs_minimises_a_quadratic():
    torch.manual_seed(0)
    m = torch.randn(20, 20)
    a = m @ m.T + 20 * torch.eye(20)
    b = torch.randn(20)
    x = torch.zeros(20)
    opt = LBFGS(history_size=10)
    for _ in range(40):
        if not opt.step(x, a @ x - b):
            break
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-3)


def classic_two_loop(pairs: list[tuple[torch.Tensor, torch.Tensor]], grad: torch.Tensor):
    """-H g by the textbook two-loop recursion, in float64 (Nocedal & Wright, alg. 7.4)."""
    q = -grad.double()
    alphas = []
    for s, y in reversed(pairs):
        s, y = s.double(), y.double()
        a = float(s @ q) / float(y @ s)
        q -= a * y
        alphas.append(a)
    s, y = pairs[-1][0].double(), pairs[-1][1].double()
    r = q * (float(y @ s) / float(y @ y))
    for (s, y), a in zip(pairs, reversed(alphas), strict=True):
        s, y = s.double(), y.double()
        b = float(y @ r) / float(y @ s)
        r += (a - b) * s
    return r


def test_lbfgs_direction_is_the_two_loop_recursion():
    """The inner-product form gives the textbook direction, also after the history wraps."""
    torch.manual_seed(1)
    n = 64
    m = torch.randn(n, n, dtype=torch.float64)
    a = (m @ m.T / n + torch.diag(torch.linspace(0.1, 10.0, n, dtype=torch.float64))).float()
    b = torch.randn(n)
    x = torch.zeros(n)
    opt = LBFGS(history_size=4, first_step=0.5)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    previous = None
    compared = 0
    for _ in range(12):
        grad = a @ x - b
        if previous is not None:
            s, y = x - previous[0], grad - previous[1]
            if float(y @ s) > 1e-10:
                pairs = [*pairs, (s, y)][-4:]
        before = x.clone()
        previous = (before, grad.clone())
        if not opt.step(x, grad):  # remembers the newest pair, then steps along -H g (lr 1)
            break
        if pairs:
            assert opt.pairs_kept == len(pairs)
            expected = classic_two_loop(pairs, grad)
            torch.testing.assert_close((x - before).double(), expected, rtol=1e-4, atol=1e-6)
            compared += 1
    assert compared >= 8  # the history (4 pairs) wrapped around several times


def test_lbfgs_projection_keeps_iterates_in_the_box():
    c = torch.tensor([3.0, -2.0, 0.5, 10.0])
    x = torch.zeros(4)
    opt = LBFGS(history_size=5, project=lambda v: v.clamp_(-1.0, 1.0))
    for _ in range(30):
        if not opt.step(x, 2 * (x - c)):
            break
        assert x.abs().max() <= 1.0
    assert torch.allclose(x, c.clamp(-1.0, 1.0), atol=1e-4)


def test_the_reported_loss_belongs_to_the_image_shown():
    """G stays within valid pixels, so the yielded uint8 image scores what was reported."""
    from desktop.style.vgg import preprocess

    content, style = make_content(), make_style()
    settings = small(beta=1e4, iterations=8)
    last = list(stylize(content, [style], settings))[-1]
    plan = plan_job(content.shape, settings)
    net = optimize.get_network(plan.last_layer, settings.pooling, plan.precision)
    problem = optimize.Problem(net, plan.precision, settings, plan, content, [style],
                               plan.height, plan.width)
    again, _ = problem.evaluate(preprocess(last.image).requires_grad_(True))
    assert again["total"] == pytest.approx(last.total, rel=0.02)


def test_lbfgs_retreat_halves_the_last_step():
    x = torch.zeros(3)
    opt = LBFGS(history_size=3, first_step=1.0)
    opt.step(x, torch.tensor([2.0, -4.0, 0.0]))  # steepest descent, max move 1
    assert torch.allclose(x, torch.tensor([-0.5, 1.0, 0.0]))
    opt.retreat(x)
    assert torch.allclose(x, torch.tensor([-0.25, 0.5, 0.0]))


def test_j_that_stops_improving_ends_the_scale_and_the_job():
    assert not optimize.is_flat([10.0 - i for i in range(30)])  # still falling 1 per step
    flat = [100.0 - i for i in range(20)] + [80.0] * 11
    assert optimize.is_flat(flat) and not optimize.is_flat(flat[:15])
    # a tiny job converges long before 400 iterations: it ends there, flagged
    s = small(size=32, iterations=400, multiscale=False, stop_when_flat=True)
    reports = list(stylize(make_content(24, 32), [make_style()], s))
    assert len(reports) < 400 and reports[-1].flat and not any(r.flat for r in reports[:-1])
    assert optimize.is_flat([r.total for r in reports])
    # switched off, every iteration runs (unless L-BFGS itself can no longer descend)
    s.stop_when_flat, s.iterations = False, len(reports) + 5
    more = list(stylize(make_content(24, 32), [make_style()], s))
    assert len(more) > len(reports) and not any(r.flat for r in more)


def test_warm_up_builds_the_jobs_network_once_and_the_job_reuses_it():
    optimize.release_network()
    settings = small(size=256, iterations=2)
    assert optimize.warm_up(settings, (96, 128, 3))
    built = optimize._network.cache_info()
    assert built.currsize == 1
    list(stylize(make_content(96, 128), [make_style()], settings))
    after = optimize._network.cache_info()
    assert after.misses == built.misses and after.hits > built.hits  # not built again
    # settings no job could run with: nothing is prepared
    assert not optimize.warm_up(small(style_layers={}, alpha=0.0), (96, 128, 3))
