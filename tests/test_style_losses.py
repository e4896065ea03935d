"""The course's loss definitions, checked against values worked out by hand."""

import pytest
import torch

from desktop.style.losses import (
    ContentLoss,
    StyleLoss,
    TVLoss,
    build_objective,
    gram_matrix,
    style_gram_target,
)

# One image, n_C = 2 channels, n_H = 1, n_W = 2:
#   channel 0: [1, 2], channel 1: [3, 4]
A = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])


def test_gram_is_sum_over_positions_of_channel_products():
    g = gram_matrix(A)
    # G_00 = 1*1 + 2*2 = 5, G_01 = 1*3 + 2*4 = 11, G_11 = 9 + 16 = 25
    assert g.tolist() == [[5.0, 11.0], [11.0, 25.0]]
    assert g.dtype == torch.float32


def test_gram_is_fp32_for_bf16_activations():
    g = gram_matrix(A.to(torch.bfloat16))
    assert g.dtype == torch.float32 and g.tolist() == [[5.0, 11.0], [11.0, 25.0]]


def test_content_loss_is_half_squared_distance():
    target = torch.tensor([[[[0.0, 2.0]], [[3.0, 1.0]]]])
    # diffs 1, 0, 0, 3 -> 1/2 * (1 + 9) = 5
    assert ContentLoss(target)(A).item() == pytest.approx(5.0)
    assert ContentLoss(A)(A).item() == 0.0


@pytest.mark.parametrize("channels_last", [False, True])
def test_content_loss_gradient_is_a_minus_target_and_leaves_a_alone(channels_last):
    torch.manual_seed(0)
    a = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    target = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
        target = target.contiguous(memory_format=torch.channels_last)
    loss = ContentLoss(target)
    loss.target = target  # keep fp64 for gradcheck
    x = a.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss(t), (x,))
    x.grad = None
    (3.0 * loss(x)).backward()
    assert torch.allclose(x.grad, 3.0 * (a - target)) and torch.equal(x.detach(), a)
    assert loss(a).item() == pytest.approx(0.5 * float(((a - target) ** 2).sum()))


def test_style_loss_uses_the_course_normalisation():
    target = torch.tensor([[4.0, 11.0], [11.0, 22.0]])
    # G(A) - target = [[1, 0], [0, 3]] -> sum of squares 10; (2 n_H n_W n_C)^2 = (2*1*2*2)^2 = 64
    assert StyleLoss(target)(A).item() == pytest.approx(10.0 / 64.0)


def test_tv_sums_squared_neighbour_differences():
    img = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])
    # vertical: (3-0)^2 + (1-1)^2 = 9; horizontal: (1-0)^2 + (1-3)^2 = 5
    assert TVLoss()(img).item() == pytest.approx(14.0)


def test_style_targets_rescale_to_g_pixels_and_blend():
    s1 = {"l": A}  # 2 pixels
    s2 = {"l": torch.cat([A, A], dim=3)}  # 4 pixels: Gram doubles
    # rescaled to 2 pixels both give G(A); a 0.25/0.75 blend of equal targets is G(A)
    target = style_gram_target([s1, s2], "l", [0.25, 0.75], n_pixels=2)
    assert torch.allclose(target, gram_matrix(A))
    zero = {"l": torch.zeros_like(A)}
    half = style_gram_target([s1, zero], "l", [0.5, 0.5], n_pixels=2)
    assert torch.allclose(half, 0.5 * gram_matrix(A))


def test_objective_reads_alpha_content_plus_beta_weighted_styles():
    content_target = torch.zeros_like(A)  # J_content = 1/2 (1+4+9+16) = 15
    targets = {"a": torch.zeros(2, 2), "b": gram_matrix(A)}  # J_a = (25+121+121+625)/64
    j_a = (25 + 121 + 121 + 625) / 64.0
    obj = build_objective(alpha=2.0, beta=10.0, content_layer="c",
                          content_target=content_target,
                          style_layers={"a": 0.5, "b": 0.25}, style_targets=targets,
                          tv_weight=0.0)
    terms = obj({"c": A, "a": A, "b": A}, torch.zeros(1, 3, 4, 4))
    assert terms.content.item() == pytest.approx(2.0 * 15.0)
    assert terms.style.item() == pytest.approx(10.0 * (0.5 * j_a + 0.25 * 0.0))
    assert terms.tv.item() == 0.0
    assert terms.total.item() == pytest.approx(30.0 + 5.0 * j_a)


def test_zero_weights_drop_terms_and_tv_is_weighted():
    obj = build_objective(alpha=0.0, beta=1.0, content_layer="c", content_target=None,
                          style_layers={"a": 0.0}, style_targets={}, tv_weight=0.5)
    assert obj.content is None and obj.style is None
    img = torch.tensor([[[[0.0, 2.0]]]])
    assert obj({}, img).total.item() == pytest.approx(0.5 * 4.0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_style_loss_gradient_is_gatys_eq6(channels_last):
    torch.manual_seed(0)
    a = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
    target = torch.rand(3, 3, dtype=torch.float64) * 5
    target = target + target.T
    loss = StyleLoss(target)
    loss.target = target  # keep fp64 for gradcheck
    assert torch.autograd.gradcheck(lambda x: loss(x), (a.requires_grad_(True),))
    # and equal to autograd through the plain formula
    x = a.detach().clone().requires_grad_(True)
    f = x.reshape(3, -1)
    plain = ((f @ f.T - target) ** 2).sum() / (2 * 4 * 5 * 3) ** 2
    plain.backward()
    y = a.detach().clone().requires_grad_(True)
    loss(y).backward()
    assert torch.allclose(x.grad, y.grad) and torch.allclose(loss(a), plain)
