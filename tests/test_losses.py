"""Every loss term against a value worked out by hand, and gradients on masked pixels."""

from __future__ import annotations

import math

import pytest
import torch

from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.training.losses import (
    TERMS,
    CompositeLoss,
    LossConfig,
    bin_cross_entropy,
    gradient_loss,
    l1_loss,
    masked_ssim,
    pool_depth,
    silog_loss,
    ssim_loss,
    valid_mask,
)


def _maps(pred: list[list[float]], gt: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = torch.tensor(pred, dtype=torch.float64)[None, None]
    t = torch.tensor(gt, dtype=torch.float64)[None, None]
    return p, t, valid_mask(t)


def test_silog_matches_hand_value() -> None:
    # g = log(pred) - log(gt) on the three valid pixels = (1, 0, 0); the invalid pixel is ignored.
    pred, gt, mask = _maps([[math.e, 1.0], [1.0, 5.0]], [[1.0, 1.0], [1.0, 0.0]])
    expected = 10 * math.sqrt(1 / 3 - 0.85 * (1 / 3) ** 2 + 1e-8)
    assert silog_loss(pred, gt, mask).item() == pytest.approx(expected, rel=1e-9)
    # An image without valid pixels contributes 0 to the batch mean.
    pred2 = torch.cat([pred, pred])
    gt2 = torch.cat([gt, torch.zeros_like(gt)])
    assert silog_loss(pred2, gt2, valid_mask(gt2)).item() == pytest.approx(expected / 2, rel=1e-9)


def test_silog_is_per_image_scale_invariant_at_lambda_one() -> None:
    gt = torch.rand(2, 1, 4, 4, dtype=torch.float64) + 0.5
    scaled = gt * torch.tensor([2.0, 0.3], dtype=torch.float64).view(2, 1, 1, 1)
    assert silog_loss(scaled, gt, valid_mask(gt), lam=1.0).item() < 2e-3


def test_l1_matches_hand_value() -> None:
    pred, gt, mask = _maps([[2.0, 1.0], [0.5, 5.0]], [[1.0, 1.0], [1.0, 0.0]])
    assert l1_loss(pred, gt, mask).item() == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_gradient_matches_hand_value() -> None:
    # R = log pred - log gt = [[0, 1, 3], [0, 0, (invalid)]].
    gt = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    residual = [[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]]
    pred = [[math.exp(r) for r in row] for row in residual]
    p, t, m = _maps(pred, gt)
    # scale 1: x pairs |1|, |2|, |0|; y pairs |0|, |1| -> 4 / 5
    assert gradient_loss(p, t, m, scales=1).item() == pytest.approx(0.8)
    # scale 2 (stride 2): the row [0, 3] -> one x pair of 3
    assert gradient_loss(p, t, m, scales=2).item() == pytest.approx(0.8 + 3.0)


def test_ssim_single_pixel_windows_match_formula() -> None:
    # window 1: mean = value, variance = covariance = 0, so SSIM = (2xy + c1) / (x^2 + y^2 + c1)
    pred, gt, mask = _maps([[5.0, 7.0]], [[2.5, 0.0]])
    x, y, c1 = 0.5, 0.25, 0.01**2
    expected = (1 - (2 * x * y + c1) / (x * x + y * y + c1)) / 2
    assert ssim_loss(pred, gt, mask, max_depth=10.0, window=1).item() == pytest.approx(expected)


def test_ssim_matches_explicit_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 1, 5, 6, generator=generator, dtype=torch.float64)
    gt = torch.rand(1, 1, 5, 6, generator=generator, dtype=torch.float64)
    gt[0, 0, 1, 2] = 0.0
    gt[0, 0, 4, :3] = 0.0
    mask = valid_mask(gt)
    ssim = masked_ssim(pred, gt, mask, window=3)
    c1, c2 = 0.01**2, 0.03**2
    for i in range(5):
        for j in range(6):
            xs, ys = [], []
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    a, b = i + di, j + dj
                    if 0 <= a < 5 and 0 <= b < 6 and mask[0, 0, a, b] > 0:
                        xs.append(float(pred[0, 0, a, b]))
                        ys.append(float(gt[0, 0, a, b]))
            if not xs:
                continue
            n = len(xs)
            mx, my = sum(xs) / n, sum(ys) / n
            vx = sum(v * v for v in xs) / n - mx * mx
            vy = sum(v * v for v in ys) / n - my * my
            cov = sum(u * v for u, v in zip(xs, ys, strict=True)) / n - mx * my
            value = (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            assert float(ssim[0, 0, i, j]) == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert ssim_loss(gt * 10, gt * 10, mask, window=3).item() == pytest.approx(0.0, abs=1e-9)


def test_pool_depth_averages_valid_pixels_only() -> None:
    depth = torch.tensor([[1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])[None, None]
    pooled = pool_depth(depth, (1, 2))
    assert pooled.flatten().tolist() == [2.0, 0.0]


def test_bin_cross_entropy_matches_hand_value() -> None:
    edges = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    # Left 2x2 cell: valid depths 1.5 (one invalid) -> bin 1; right cell: all invalid -> ignored.
    target = torch.tensor([[1.5, 1.5, 0.0, 0.0], [0.0, 1.5, 0.0, 0.0]])[None, None]
    logits = torch.zeros(1, 4, 1, 2)
    logits[0, 1, 0, 0] = math.log(2.0)
    logits[0, :, 0, 1] = torch.tensor([5.0, -3.0, 2.0, 1.0])
    assert bin_cross_entropy(logits, target, edges).item() == pytest.approx(-math.log(2 / 5), rel=1e-6)


def _fake_output(depth: torch.Tensor, logits: torch.Tensor) -> DepthOutput:
    return DepthOutput(
        depth=depth, depth_bins=depth, depth_reg=depth, bin_logits=logits, aux_loss=torch.tensor(0.25)
    )


def test_composite_total_is_weighted_sum_and_terms_are_reported() -> None:
    torch.manual_seed(0)
    config = LossConfig(max_depth=4.0)
    edges = torch.linspace(0.0, 4.0, 9)
    loss = CompositeLoss(config, edges)
    depth = torch.rand(2, 1, 16, 16) * 3 + 0.5
    target = torch.rand(2, 1, 16, 16) * 3 + 0.5
    total, terms = loss(_fake_output(depth, torch.randn(2, 8, 4, 4)), target)
    assert set(terms) == set(TERMS)
    expected = sum(getattr(config, name) * value for name, value in terms.items())
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["load_balance"].item() == pytest.approx(0.25)


@pytest.mark.parametrize("term", TERMS[:-1])
def test_gradients_are_finite_and_zero_on_invalid_pixels(term: str) -> None:
    torch.manual_seed(1)
    weights = {name: 0.0 for name in TERMS}
    weights[term] = 1.0
    config = LossConfig(**weights, max_depth=4.0)
    loss = CompositeLoss(config, torch.linspace(0.0, 4.0, 9))
    target = torch.rand(2, 1, 16, 16) * 3 + 0.5
    target[:, :, :8, :4] = 0.0  # a missing region (whole 4x4 logit cells)
    target[1, :, 10, 10] = float("nan")  # a corrupt pixel
    depth = (torch.rand(2, 1, 16, 16) * 3 + 0.5).requires_grad_(True)
    depth_reg = (torch.rand(2, 1, 16, 16) * 3 + 0.5).requires_grad_(True)
    logits = torch.randn(2, 8, 4, 4, requires_grad=True)
    output = DepthOutput(depth=depth, depth_bins=depth, depth_reg=depth_reg, bin_logits=logits)
    total, _ = loss(output, target)
    assert torch.isfinite(total)
    total.backward()
    invalid = ~(target > 1e-3)  # NaN compares False, so it is invalid too
    for tensor in (depth, depth_reg):
        grad = tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)
        assert torch.isfinite(grad).all()
        assert (grad[invalid] == 0).all()
    if term == "ce":
        assert torch.isfinite(logits.grad).all()
        assert (logits.grad[:, :, :2, :1] == 0).all()
    used = {"ce": logits.grad, "reg_l1": depth_reg.grad}.get(term, depth.grad)
    assert used.abs().sum() > 0


def test_perfect_prediction_has_finite_gradient() -> None:
    target = torch.rand(1, 1, 8, 8) + 0.5
    depth = target.clone().requires_grad_(True)
    total, terms = CompositeLoss(LossConfig(ce=0.0))(DepthOutput(depth=depth), target)
    total.backward()
    assert torch.isfinite(depth.grad).all()
    assert terms["l1"].item() == 0.0
