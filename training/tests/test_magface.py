"""MagLinear / MagLoss against values worked out by hand on 2-D features.

Weights are the identity (class 0 = x axis, class 1 = y axis), so for x = a *
(0.6, 0.8) the cosines are 0.6 and 0.8 and sines 0.8 and 0.6; the target
logit is cos(theta + m) = cos*cos(m) - sin*sin(m), with m from the norm.
"""
import math

import pytest
import torch

from training.magface import ArcFaceLinear, MagLinear, MagLoss, build_head, linear_margin


def head(easy_margin=True):
    h = MagLinear(2, 2, easy_margin=easy_margin)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    return h


def test_margin_is_linear_between_l_a_and_u_a():
    assert linear_margin(torch.tensor(10.0)).item() == pytest.approx(0.45)
    assert linear_margin(torch.tensor(110.0)).item() == pytest.approx(0.80)
    assert linear_margin(torch.tensor(60.0)).item() == pytest.approx(0.625)


@pytest.mark.parametrize("norm, clamped, target_logits", [
    # |x| = 5 is below l_a = 10: clamped to 10, margin l_m = 0.45.
    (5.0, 10.0, (0.1922958341, 0.4593783614)),
    # |x| = 60: margin 0.625, half way.
    (60.0, 60.0, (0.0185000534, 0.2977121318)),
    # |x| = 200 is above u_a = 110: clamped, margin u_m = 0.8.
    (200.0, 110.0, (-0.1558608471, 0.1269517129)),
])
def test_maglinear_margin_and_clamping(norm, clamped, target_logits):
    x = torch.tensor([[0.6, 0.8]]) * norm
    (cos_theta, cos_theta_m), x_norm = head()(x)
    assert x_norm.item() == pytest.approx(clamped)
    assert cos_theta[0].tolist() == pytest.approx([64 * 0.6, 64 * 0.8], rel=1e-5)
    assert cos_theta_m[0].tolist() == pytest.approx([64 * v for v in target_logits], rel=1e-5, abs=1e-4)


def test_easy_margin_leaves_negative_cosines_alone():
    x = torch.tensor([[-6.0, 8.0]])  # cos = -0.6 to class 0
    (_, easy), _ = head(easy_margin=True)(x)
    assert easy[0, 0].item() == pytest.approx(64 * -0.6, rel=1e-5)
    # Without it the margin applies while theta + m < pi (cos > cos(pi - m) = -0.9004).
    (_, hard), _ = head(easy_margin=False)(x)
    assert hard[0, 0].item() == pytest.approx(64 * -0.8882406887, rel=1e-5)
    # Past that, MagFace's fallback: cos - sin(pi - m) * m = -0.95 - 0.43497 * 0.45.
    x = torch.tensor([[-0.95, math.sqrt(1 - 0.95 ** 2)]]) * 10
    (_, hard), _ = head(easy_margin=False)(x)
    assert hard[0, 0].item() == pytest.approx(64 * -1.1457344904, rel=1e-5)


def test_magloss_by_hand():
    h, loss_fn = head(), MagLoss()
    logits, x_norm = h(torch.tensor([[3.0, 4.0]]))
    total, loss_id, loss_g = loss_fn(logits, torch.tensor([1]), x_norm)
    # Target 1 takes the margin logit 64 * 0.45938, class 0 the plain 64 * 0.6:
    # CE = logsumexp(38.4, 29.40) - 29.40 = 8.99991.
    assert loss_id.item() == pytest.approx(8.9999082982, rel=1e-5)
    # g(10) = 10 / 110^2 + 1 / 10.
    assert loss_g.item() == pytest.approx(0.1008264463, rel=1e-6)
    assert total.item() == pytest.approx(12.5288339180, rel=1e-5)


def test_regulariser_is_smallest_at_u_a():
    g = MagLoss().g(torch.tensor([10.0, 50.0, 110.0, 111.0]))
    assert g.tolist() == pytest.approx([0.1008264463, 0.0241322314, 0.0181818182, 0.0181825627], rel=1e-5)
    assert int(g.argmin()) == 2


def test_arcface_option_has_a_constant_margin():
    h = ArcFaceLinear(2, 2)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    for norm in (5.0, 60.0, 200.0):
        (_, m), _ = h(torch.tensor([[0.6, 0.8]]) * norm)
        assert m[0, 1].item() == pytest.approx(64 * 0.4144107263, rel=1e-5)
    _, loss = build_head("arcface", 2, 2)
    assert loss.lambda_g == 0.0


def test_gradients_flow_to_weights_and_features():
    torch.manual_seed(0)
    h, loss_fn = build_head("magface", 8, 5)
    x = (torch.randn(4, 8) * 20).requires_grad_()
    total, _, _ = loss_fn(*h(x)[:1], torch.tensor([0, 1, 2, 3]), h(x)[1])
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert h.weight.grad.abs().sum() > 0
