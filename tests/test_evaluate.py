"""evaluate() end to end, report writers, the constant baseline, and the evaluate / make-synthetic CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from moa_depthclip.baselines.constant import ConstantDepth
from moa_depthclip.cli.main import main
from moa_depthclip.data.statistics import median_valid_depth
from moa_depthclip.data.synthetic import SyntheticScenes
from moa_depthclip.evaluation.protocol import nyu_protocol, synthetic_protocol
from moa_depthclip.evaluation.report import markdown_table, write_csv, write_json
from moa_depthclip.evaluation.runner import evaluate
from moa_depthclip.model.outputs import DepthOutput


class _Oracle(nn.Module):
    """Returns a fixed depth map resized to the input: checks resizing and flip bookkeeping."""

    def __init__(self, depth: torch.Tensor) -> None:
        super().__init__()
        self.depth = depth
        self.sizes: list[tuple[int, int]] = []

    def forward(self, images: torch.Tensor) -> DepthOutput:
        assert images.shape[-2] % 32 == 0 and images.shape[-1] % 32 == 0
        self.sizes.append(tuple(images.shape[-2:]))
        out = nn.functional.interpolate(self.depth, size=images.shape[-2:], mode="nearest")
        return DepthOutput(depth=out.expand(images.shape[0], 1, -1, -1))


class _Listed(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict], skipped: list[str] | None = None) -> None:
        self.samples, self.skipped = samples, skipped or []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


def test_constant_model_contract() -> None:
    model = ConstantDepth(2.5)
    out = model(torch.rand(2, 3, 64, 96))
    assert out.depth.shape == (2, 1, 64, 96) and float(out.depth.min()) == 2.5 == float(out.depth.max())
    with pytest.raises(ValueError):
        ConstantDepth(0.0)


def test_median_valid_depth_ignores_invalid() -> None:
    depth = torch.tensor([[[0.0, 1.0, 2.0, 3.0, 0.0]]])
    dataset = _Listed([{"image": torch.zeros(3, 1, 5), "depth": depth, "name": "a"}])
    assert median_valid_depth(dataset) == pytest.approx(2.0)


def test_evaluate_constant_on_synthetic() -> None:
    dataset = SyntheticScenes(4, 48, 64, seed=0, split="test")
    result = evaluate(ConstantDepth(3.0), dataset, synthetic_protocol(), batch_size=3, progress=False)
    assert [r["name"] for r in result.rows] == [f"synthetic_test_{i:06d}" for i in range(4)]
    assert result.counts == {
        "images": 4,
        "evaluated": 4,
        "skipped_no_valid_pixels": 0,
        "skipped_no_ground_truth": 0,
        "masked_invalid_depth_pixels": 0,
    }
    # The mean is the mean over images of per-image values.
    assert result.mean["rmse"] == pytest.approx(np.mean([r["rmse"] for r in result.rows]))
    depth = dataset[0]["depth"]
    expected = float(((depth - 3.0) ** 2).mean().sqrt())
    assert result.rows[0]["rmse"] == pytest.approx(expected, rel=1e-5)
    assert "no crop" in result.protocol


def test_perfect_prediction_flip_and_skips() -> None:
    gt = torch.linspace(1.0, 5.0, 30 * 40).view(1, 1, 30, 40)
    empty = torch.zeros(1, 30, 40)
    samples = [
        {"image": torch.rand(3, 30, 40), "depth": gt[0], "name": "good"},
        {"image": torch.rand(3, 30, 40), "depth": empty, "name": "empty"},
    ]
    model = _Oracle(gt.flip(-1))  # flipped pass of a mirrored map gives the map back
    result = evaluate(
        model,
        _Listed(samples, ["no_gt"]),
        nyu_protocol(crop=None, resize_mode="nearest"),
        flip=True,
        progress=False,
    )
    assert model.sizes == [(32, 32), (32, 32)]  # 30x40 -> multiple of 32, plus the flipped pass
    assert result.counts["evaluated"] == 1 and result.skipped == ["empty", "no_gt"]
    assert result.counts["skipped_no_ground_truth"] == 1
    assert "flip averaging" in result.protocol


def test_writers(tmp_path: Path) -> None:
    dataset = SyntheticScenes(2, 32, 32, seed=0, split="test")
    results = [
        evaluate(ConstantDepth(v), dataset, synthetic_protocol(), progress=False, model_name=f"c{v}")
        for v in (2, 3)
    ]
    write_json(tmp_path / "m.json", results)
    write_csv(tmp_path / "p.csv", results)
    table = markdown_table(results)
    payload = json.loads((tmp_path / "m.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["c2", "c3"]
    rows = list(csv.DictReader((tmp_path / "p.csv").read_text().splitlines()))
    assert len(rows) == 4 and set(rows[0]) >= {"model", "name", "delta1", "silog"}
    assert "| c2 |" in table and "| c3 |" in table and "Protocol: synthetic protocol" in table


def test_cli_evaluate_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    code = main(
        ["evaluate", "--dataset", "synthetic", "--num", "3", "--train-num", "3", "--height", "32", "--width", "48",
         "--model", "constant", "--model", "constant:2.0", "--no-progress", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "constant (train median" in printed and "constant (2 m)" in printed and "Protocol:" in printed
    assert {p.name for p in out.iterdir()} == {"metrics.json", "per_image.csv", "results.md"}
    assert len(json.loads((out / "metrics.json").read_text())["results"]) == 2


def test_cli_evaluate_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--dataset", "nyu-mat", "--no-progress"]) == 2
    assert "--mat" in capsys.readouterr().err
    args = ["evaluate", "--dataset", "nyu-mat", "--mat", str(tmp_path / "x.mat"), "--splits", "s.mat"]
    assert main(args) == 2
    assert "x.mat" in capsys.readouterr().err
    assert main(["evaluate", "--num", "1", "--model", "no-such-model", "--no-progress"]) == 2


def test_cli_make_synthetic(tmp_path: Path) -> None:
    code = main(["make-synthetic", "--out", str(tmp_path), "--num", "2", "--height", "32", "--width", "48",
                 "--split", "val", "--preview", "2"])  # fmt: skip
    assert code == 0
    assert (tmp_path / "val_files.txt").read_text().count("\n") == 2
    assert (tmp_path / "val" / "rgb_00001.jpg").is_file() and (
        tmp_path / "val" / "sync_depth_00001.png"
    ).is_file()
    assert (tmp_path / "val_preview.png").is_file()


def test_layout_prior_is_the_per_pixel_geometric_mean():
    from moa_depthclip.baselines.layout_prior import LayoutPriorDepth, mean_depth_map

    top = torch.tensor([[1.0, 1.0], [4.0, 0.0]])  # one invalid pixel
    bottom = torch.tensor([[4.0, 1.0], [1.0, 0.0]])
    dataset = [{"depth": top[None]}, {"depth": bottom[None]}]
    prior = mean_depth_map(dataset)
    torch.testing.assert_close(prior, torch.tensor([[2.0, 1.0], [2.0, 2.0]]))  # never valid -> median
    out = LayoutPriorDepth(prior)(torch.rand(3, 3, 4, 4)).depth
    assert out.shape == (3, 1, 4, 4) and (out > 0).all()
