"""Metrics against hand-computed values, and protocol crops/masks pixel-exactly."""

from __future__ import annotations

import math

import pytest
import torch

from moa_depthclip.evaluation.metrics import compute_metrics
from moa_depthclip.evaluation.protocol import (
    crop_box,
    crop_mask,
    kitti_protocol,
    nyu_protocol,
    synthetic_protocol,
)


def _one(pred: list[float], gt: list[float], mask: list[bool] | None = None) -> dict[str, float]:
    p = torch.tensor(pred).view(1, 1, 1, -1)
    g = torch.tensor(gt).view(1, 1, 1, -1)
    m = torch.ones_like(g, dtype=torch.bool) if mask is None else torch.tensor(mask).view(1, 1, 1, -1)
    return {k: float(v[0]) for k, v in compute_metrics(p, g, m).items()}


def test_metrics_hand_computed() -> None:
    # d = (1, 2, 3.8), d* = (2, 2, 2): ratios max(d/g, g/d) = (2, 1, 1.9)
    m = _one([1.0, 2.0, 3.8], [2.0, 2.0, 2.0])
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == pytest.approx(1 / 3)  # 1.9 > 1.25^2 = 1.5625
    assert m["delta3"] == pytest.approx(2 / 3)  # 1.9 < 1.25^3 = 1.953125 < 2
    assert m["abs_rel"] == pytest.approx((0.5 + 0 + 0.9) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 2 + 0 + 1.8**2 / 2) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 1.8**2) / 3))
    e = [math.log(0.5), 0.0, math.log(1.9)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in e) / 3))
    assert m["log10"] == pytest.approx((math.log10(2) + math.log10(1.9)) / 3)
    mean_e, mean_e2 = sum(e) / 3, sum(x * x for x in e) / 3
    assert m["silog"] == pytest.approx(100 * math.sqrt(mean_e2 - mean_e**2))


def test_silog_is_scale_invariant_and_zero_for_perfect() -> None:
    gt = [1.0, 2.0, 3.0, 5.0]
    perfect = _one(gt, gt)
    assert perfect["rmse"] == 0 and perfect["abs_rel"] == 0 and perfect["delta1"] == 1
    scaled = _one([2 * v for v in gt], gt)
    assert scaled["silog"] == pytest.approx(0.0, abs=1e-5)
    assert scaled["rmse_log"] == pytest.approx(math.log(2))


def test_mask_excludes_pixels_and_empty_image_is_nan() -> None:
    m = _one([1.0, 100.0], [1.0, 0.0], [True, False])
    assert m["rmse"] == 0 and m["delta1"] == 1
    empty = _one([1.0], [1.0], [False])
    assert all(math.isnan(v) for v in empty.values())


def test_per_image_in_a_batch() -> None:
    pred = torch.tensor([[1.0, 1.0], [2.0, 2.0]]).view(2, 1, 1, 2)
    gt = torch.tensor([[1.0, 1.0], [1.0, 1.0]]).view(2, 1, 1, 2)
    m = compute_metrics(pred, gt, torch.ones_like(gt, dtype=torch.bool))
    assert m["abs_rel"].tolist() == pytest.approx([0.0, 1.0])


def test_eigen_crop_exact_at_nyu_resolution() -> None:
    mask = crop_mask("eigen", 480, 640)
    assert int(mask.sum()) == (471 - 45) * (601 - 41)
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    assert (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])) == (45, 470, 41, 600)


def test_garg_crop_exact_at_kitti_resolution() -> None:
    assert crop_box("garg", 375, 1242) == (153, 371, 44, 1197)
    mask = crop_mask("garg", 375, 1242)
    assert int(mask.sum()) == (371 - 153) * (1197 - 44)
    assert not mask[152].any() and mask[153, 44] and not mask[153, 43] and not mask[371].any()


def test_no_crop_and_scaled_eigen_crop() -> None:
    assert bool(crop_mask(None, 7, 9).all())
    assert crop_box("eigen", 240, 320) == (22, 236, 20, 300)


def test_protocol_valid_range_clamp_and_resize() -> None:
    protocol = nyu_protocol(crop=None)
    target = torch.full((1, 1, 4, 4), 5.0)
    target[0, 0, 0, 0] = 0.0  # invalid
    target[0, 0, 0, 1] = 12.0  # beyond 10 m
    pred = torch.full((1, 1, 2, 2), 20.0)
    pred[0, 0, 1, 1] = float("nan")
    out, mask = protocol.prepare(pred, target)
    assert out.shape == target.shape
    assert int(mask.sum()) == 14
    assert float(out.max()) == 10.0 and float(out.min()) >= 1e-3


def test_describe_states_options() -> None:
    text = nyu_protocol(flip=True).describe()
    assert "Eigen crop" in text and "flip averaging" in text and "10" in text
    assert "Garg crop" in kitti_protocol().describe() and "80" in kitti_protocol().describe()
    assert "no crop" in synthetic_protocol().describe()
    with pytest.raises(ValueError):
        nyu_protocol(crop="middle")
