"""Work space reused across a job's evaluations, and the ReLU mask of the backward pass."""

import threading

import pytest
import torch

from desktop.style import scratch as scratch_module
from desktop.style.conv_relu import relu_masked
from desktop.style.losses import build_objective, gram_matrix
from desktop.style.scratch import Scratch, work_like
from desktop.style.vgg import VGG19Features

CL = torch.channels_last


@pytest.fixture
def no_floor(monkeypatch):
    """Let every work tensor, however small, come from the scratch."""
    monkeypatch.setattr(scratch_module, "MIN_BYTES", 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("grad_layout", ["channels_last", "nchw", "expanded"])
def test_relu_mask_is_threshold_backward_bit_for_bit(dtype, grad_layout):
    torch.manual_seed(0)
    y = torch.relu(torch.randn(1, 8, 5, 7)).to(dtype).contiguous(memory_format=CL)
    y[0, 0, 0, :3] = torch.tensor([0.0, -0.0, 1e-30]).to(dtype)  # +0, -0, tiny (or 0)
    if grad_layout == "expanded":
        grad = torch.tensor(2.5, dtype=dtype).expand(y.shape)
    else:
        grad = torch.randn(1, 8, 5, 7).to(dtype)
        grad[0, 1, 1, 1] = -0.0
        if grad_layout == "channels_last":
            grad = grad.contiguous(memory_format=CL)
    expected = torch.ops.aten.threshold_backward(grad, y, 0)
    got = relu_masked(grad, y)
    assert got.dtype == dtype and got.shape == y.shape
    assert got.is_contiguous(memory_format=CL)  # laid out like y, whatever grad is
    same_bits = torch.int16 if dtype.itemsize == 2 else torch.int32
    assert torch.equal(got.contiguous().view(same_bits), expected.contiguous().view(same_bits))
    assert (got[y <= 0] == 0).all() and torch.equal(got[y > 0], grad.expand(y.shape)[y > 0])


def test_relu_mask_of_a_gradient_in_another_dtype_is_promoted_like_autograd():
    y = torch.relu(torch.randn(1, 2, 3, 3)).to(torch.bfloat16)
    grad = torch.randn(1, 2, 3, 3)
    got = relu_masked(grad, y)
    assert got.dtype == torch.float32
    assert torch.equal(got, torch.ops.aten.threshold_backward(grad, y, 0))


def test_a_role_reuses_its_buffer_and_roles_do_not_share(no_floor):
    scratch = Scratch()
    like = torch.empty(1, 4, 6, 5).contiguous(memory_format=CL)
    with scratch.active():
        a = work_like("a", like)
        a2 = work_like("a", like)
        b = work_like("b", like)
        smaller = work_like("a", like, (1, 2, 3, 5))
        wider = work_like("a", like, (1, 8, 6, 5), torch.int64)
    assert a.data_ptr() == a2.data_ptr() == smaller.data_ptr()
    assert b.data_ptr() != a.data_ptr()
    assert a.shape == like.shape and a.stride() == like.stride()  # channels_last
    assert smaller.shape == (1, 2, 3, 5) and smaller.is_contiguous(memory_format=CL)
    assert wider.dtype == torch.int64 and wider.shape == (1, 8, 6, 5)
    assert scratch.nbytes == 4 * 6 * 5 * 4 * 2 + 8 * 6 * 5 * 8  # a and b in fp32, int64 a


def test_small_work_tensors_are_fresh_and_large_ones_reused(monkeypatch):
    monkeypatch.setattr(scratch_module, "MIN_BYTES", 1000)
    scratch = Scratch()
    with scratch.active():
        small = [work_like("r", torch.empty(10, 10)) for _ in range(2)]  # 400 bytes
        large = [work_like("r", torch.empty(20, 20)) for _ in range(2)]  # 1600 bytes
    assert small[0].data_ptr() != small[1].data_ptr()
    assert large[0].data_ptr() == large[1].data_ptr()
    assert scratch.nbytes == 1600


def test_work_space_is_fresh_outside_an_active_scratch_and_on_other_threads(no_floor):
    like = torch.empty(3, 4)
    assert work_like("r", like).data_ptr() != work_like("r", like).data_ptr()
    outer, inner = Scratch(), Scratch()
    seen = []
    with outer.active():
        with inner.active():
            work_like("r", like)
        mine = work_like("r", like)
        thread = threading.Thread(target=lambda: seen.append(work_like("r", like)))
        thread.start()
        thread.join()
        again = work_like("r", like)
    assert inner.nbytes == outer.nbytes == 48  # one buffer each: nesting restored outer
    assert again.data_ptr() == mine.data_ptr()
    assert seen[0].data_ptr() != mine.data_ptr()  # the other thread has no scratch active


@pytest.mark.parametrize("dtype, channels_last", [(torch.float32, False),
                                                  (torch.bfloat16, True)])
def test_gradients_through_reused_work_space_are_the_fresh_ones_bit_for_bit(
        no_floor, dtype, channels_last):
    """Several evaluations with one scratch (every work tensor reused, two style losses
    on maps of one shape whose gradients are alive at once) give exactly the gradients
    of evaluations that allocate everything afresh."""
    style_layers = {"relu1_1": 0.3, "relu2_1": 0.3, "relu3_1": 0.2, "relu3_2": 0.2}
    layers = [*style_layers, "relu3_2"]
    net = VGG19Features("relu3_2", fused=True).to(dtype)
    if channels_last:
        net = net.to(memory_format=CL)

    def prepare(t):
        t = t.to(dtype)
        return t.contiguous(memory_format=CL) if channels_last else t

    torch.manual_seed(3)
    target_x = torch.rand(1, 3, 32, 40) * 255 - 120
    with torch.no_grad():
        targets = net(prepare(target_x), layers)
    objective = build_objective(1.0, 0.05, "relu3_2", targets["relu3_2"].float(),
                                style_layers,
                                {n: gram_matrix(targets[n]) * 0.7 for n in style_layers}, 0.0)
    images = [torch.rand(1, 3, 32, 40) * 255 - 120 for _ in range(3)]

    def gradient(x0):
        x = x0.clone().requires_grad_(True)
        objective(net(prepare(x), layers), x).total.backward()
        return x.grad

    fresh = [gradient(x) for x in images]
    scratch = Scratch()
    with scratch.active():
        reused = [gradient(x) for x in (*images, images[0])]
    assert scratch.nbytes > 0
    for got, expected in zip(reused, [*fresh, fresh[0]], strict=True):
        assert torch.equal(got, expected)


def test_a_jobs_evaluations_share_one_scratch(no_floor):
    """Problem.evaluate runs the network with the job's scratch active (where the 512 px
    speed comes from), and repeated evaluations give the same J and gradient."""
    import numpy as np

    from desktop.style import optimize
    from desktop.style.settings import StyleSettings

    rng = np.random.default_rng(0)
    content = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    style = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    settings = StyleSettings(size=48, precision="fp32", device="cpu")
    plan = optimize.plan_job(content.shape, settings)
    net = optimize.get_network(plan.last_layer, settings.pooling, plan.precision)
    problem = optimize.Problem(net, plan.precision, settings, plan, content, [style],
                               plan.height, plan.width)
    x = optimize.initial_image(settings, content, [style], plan.style_blend, plan.height,
                               plan.width).requires_grad_(True)
    first, grad = problem.evaluate(x)
    grad = grad.clone()
    held = problem.scratch.nbytes
    again, grad_again = problem.evaluate(x)
    assert held > 0 and problem.scratch.nbytes == held  # reused, not grown
    assert again == first and torch.equal(grad_again, grad)
