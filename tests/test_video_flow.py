"""Optical flow, warping, the reliability mask and the temporal loss of video style transfer."""

import cv2
import numpy as np
import pytest
import torch

from desktop.style import flow as flows
from desktop.style.temporal import TemporalLoss, TemporalTerm, long_term_weights


def texture(h: int, w: int, seed: int = 0, blur: float = 1.5) -> np.ndarray:
    """Smooth random colour texture (uint8 RGB): something flow can lock onto."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` with its content moved by (dx, dy) pixels: out(p) = image(p - (dx, dy))."""
    h, w = image.shape[:2]
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("dx,dy", [(3.0, -2.0), (2.5, 1.25)])
def test_warp_maps_a_shifted_image_back_within_interpolation_error(dx, dy):
    a = texture(80, 96, blur=2.5)
    b = shifted(a, dx, dy)
    forward = np.zeros((80, 96, 2), np.float32)
    forward[..., 0], forward[..., 1] = dx, dy  # a -> b: content at p is at p + (dx, dy)
    inner = np.s_[6:-6, 6:-6]
    back = flows.warp(b, forward)  # b sampled at p + flow = a
    err = np.abs(back.astype(float) - a.astype(float))[inner]
    assert err.mean() < 0.6 and err.max() <= 6  # bilinear against cubic: a grey level or so
    forth = flows.warp(a, -forward)  # a sampled at p - flow = b
    assert np.abs(forth.astype(float) - b.astype(float))[inner].mean() < 0.6
    # a wrong flow is far off: the test can fail
    assert np.abs(flows.warp(b, -forward).astype(float) - a)[inner].mean() > 5


@pytest.mark.parametrize("method", flows.METHODS)
def test_estimated_flow_finds_the_shift_and_warps_back(method):
    a = texture(96, 128, blur=2.0)
    b = shifted(a, 2.0, -1.5)
    forward = flows.flow_between(a, b, method)
    inner = np.s_[12:-12, 12:-12]
    assert np.median(forward[inner][..., 0]) == pytest.approx(2.0, abs=0.25)
    assert np.median(forward[inner][..., 1]) == pytest.approx(-1.5, abs=0.25)
    back = flows.warp(b, forward)
    assert np.abs(back.astype(float) - a.astype(float))[inner].mean() < 3.0


def test_mask_flags_the_disoccluded_band_behind_a_moving_square():
    h, w, side, step = 96, 128, 32, 6
    background = texture(h, w, seed=1)
    square = texture(side, side, seed=2, blur=1.0)
    x0, y0 = 40, 32
    frame1, frame2 = background.copy(), background.copy()
    frame1[y0:y0 + side, x0:x0 + side] = square
    frame2[y0:y0 + side, x0 + step:x0 + step + side] = square  # moved right by 6 px
    pair = flows.pair(frame1, frame2)
    mask = pair.mask
    band = mask[y0 + 3:y0 + side - 3, x0:x0 + step]  # hidden in frame 1, seen in frame 2
    assert (band == 0).mean() >= 0.8, f"only {(band == 0).mean():.0%} of the band flagged"
    far = np.ones((h, w), bool)
    far[y0 - 12:y0 + side + 12, x0 - 12:x0 + step + side + 12] = False
    assert mask[far].mean() >= 0.95  # the static background is trusted
    # and the square itself, which moved consistently, mostly too
    assert mask[y0 + 6:y0 + side - 6, x0 + step + 6:x0 + step + side - 6].mean() >= 0.8


def test_mask_flags_content_entering_at_the_border():
    a = texture(64, 96, seed=3)
    b = shifted(a, 6.0, 0.0)  # moves right: the left 6 columns of b are new
    forward = np.zeros((64, 96, 2), np.float32)
    forward[..., 0] = 6.0
    mask = flows.reliability(forward, -forward)
    assert (mask[:, :6] == 0).all() and (mask[:, 7:] == 1).all()
    assert b.shape == a.shape


def test_disocclusion_and_motion_boundary_rules_use_the_papers_thresholds():
    forward = np.zeros((8, 8, 2), np.float32)
    backward = np.zeros((8, 8, 2), np.float32)
    backward[2, 2] = (0.6, 0.0)  # |w~ + w^|^2 = 0.36 <= 0.01*0.36 + 0.5: consistent
    backward[5, 5] = (0.8, 0.0)  # 0.64 > 0.5064: not
    bad = flows.disoccluded(forward, backward)
    assert not bad[2, 2] and bad[5, 5]
    smooth = np.zeros((8, 8, 2), np.float32)
    smooth[:, 4:, 0] = 0.04  # a step of 0.04: gradient^2 0.0016 <= 0.01*0.0016 + 0.002
    assert not flows.motion_boundaries(smooth).any()
    smooth[:, 4:, 0] = 1.0  # a step of 1: a boundary at the step only
    edge = flows.motion_boundaries(smooth)
    assert edge[:, 3].all() and not edge[:, :3].any() and not edge[:, 5:].any()


def test_warping_error_is_zero_for_consistent_outputs_and_grows_with_flicker():
    a = texture(48, 64, seed=4)
    b = shifted(a, 1.0, 0.0)
    pair = flows.pair(a, b)
    still = flows.warping_error(a, flows.warp(a, pair.backward), pair)
    noisy = np.clip(b.astype(int) + np.random.default_rng(0).integers(-20, 20, b.shape), 0,
                    255).astype(np.uint8)
    assert still < 1e-4 < flows.warping_error(a, noisy, pair)


# -- the temporal loss ---------------------------------------------------------------------

def test_temporal_loss_is_the_weighted_mean_square_over_d():
    x = torch.zeros(1, 3, 2, 2)
    targets = torch.ones(2, 3, 2, 2) * torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    weights = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])
    loss = TemporalLoss(targets, weights)
    # frame 1: 3 weighted pixels x 3 channels x 1^2; frame 2: 1 pixel x 3 x 2^2; D = 12
    assert loss(x).item() == pytest.approx((9 + 12) / 12)


def test_temporal_gradient_matches_autograd():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64) * 20
    targets = torch.randn(2, 3, 5, 6, dtype=torch.float64) * 20
    weights = torch.rand(2, 1, 5, 6, dtype=torch.float64)
    weights[0, 0, 1:3] = 0  # a masked band
    loss = TemporalLoss(targets, weights)
    loss.targets, loss.weights = targets, weights  # keep fp64 for gradcheck
    assert torch.autograd.gradcheck(lambda t: loss(t), (x.clone().requires_grad_(True),))
    ours = x.clone().requires_grad_(True)
    (7.0 * loss(ours)).backward()
    plain = x.clone().requires_grad_(True)
    (7.0 * (weights * (plain - targets) ** 2).sum() / (3 * 5 * 6)).backward()
    assert torch.allclose(ours.grad, plain.grad)
    assert float(ours.grad[0, :, 1:3].abs().max()) > 0  # the other frame still pulls there


def test_long_term_weights_tie_each_pixel_to_its_nearest_visible_frame():
    c1 = np.array([[1, 0, 0, 1]], np.float32)
    c2 = np.array([[1, 1, 0, 0]], np.float32)
    c4 = np.array([[1, 1, 1, 0]], np.float32)
    w1, w2, w4 = long_term_weights([c1, c2, c4])
    assert w1.tolist() == [[1, 0, 0, 1]]
    assert w2.tolist() == [[0, 1, 0, 0]]
    assert w4.tolist() == [[0, 0, 1, 0]]


def test_temporal_term_builds_a_scaled_loss_at_any_size_and_nothing_for_gamma_0():
    warped = np.full((20, 30, 3), 100, np.uint8)
    mask = np.ones((20, 30), np.float32)
    term = TemporalTerm(5.0, [warped], [mask])
    module = term.at(10, 15, torch.device("cpu"))
    x = torch.zeros(1, 3, 10, 15)
    from desktop.style.vgg import preprocess

    target = preprocess(np.full((10, 15, 3), 100, np.uint8))
    expected = 5.0 * float(((x - target) ** 2).mean())
    assert module(x).item() == pytest.approx(expected, rel=1e-5)
    assert TemporalTerm(0.0, [warped], [mask]).at(10, 15, torch.device("cpu")) is None
    with pytest.raises(ValueError):
        TemporalTerm(1.0, [warped], [])
