"""Paired bootstrap verdicts and depth correlations on hand-made examples whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moa_depthclip.evaluation.statistics import (
    compare_rows,
    comparison_table,
    depth_correlations,
    paired_bootstrap,
    verdict,
)


def test_clearly_better_model_is_better_on_both_directions() -> None:
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.2, 0.4, 40)
    improved = reference - 0.05 + rng.normal(0, 0.005, 40)  # lower AbsRel on every image
    result = paired_bootstrap(improved, reference, "abs_rel")
    assert result.verdict == "better"
    assert result.high < 0 and result.low < result.difference < result.high
    assert result.difference == pytest.approx(improved.mean() - reference.mean())
    # δ1 is higher-is-better: the same numbers read as "worse" for the lower one
    assert paired_bootstrap(improved, reference, "delta1").verdict == "worse"
    assert paired_bootstrap(reference, improved, "delta1").verdict == "better"


def test_identical_and_noisy_models_are_level() -> None:
    values = np.linspace(0.1, 0.5, 30)
    same = paired_bootstrap(values, values, "abs_rel")
    assert same.verdict == "level" and same.difference == 0 and same.low == same.high == 0
    rng = np.random.default_rng(2)
    noisy = values + rng.normal(0, 0.05, 30)
    noisy -= noisy.mean() - values.mean()  # mean difference exactly zero, large per-image noise
    assert paired_bootstrap(noisy, values, "abs_rel").verdict == "level"


def test_bootstrap_is_reproducible_and_checks_its_input() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(25), rng.random(25)
    assert paired_bootstrap(a, b, "rmse") == paired_bootstrap(a, b, "rmse")
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap(a, b[:-1], "rmse")
    with pytest.raises(ValueError, match="at least 2"):
        paired_bootstrap([0.1], [0.2], "rmse")
    assert verdict(-0.2, -0.1, higher_is_better=False) == "better"
    barely = paired_bootstrap(np.full(20, 0.5) + np.linspace(0, 1e-4, 20), np.full(20, 0.5), "delta1")
    assert barely.verdict == "better" and "+0.0000" in barely.describe()  # the deciding bound is shown
    assert verdict(-0.2, 0.1, higher_is_better=False) == "level"


def test_compare_rows_pairs_by_name_and_table_states_verdicts() -> None:
    rows_b = [{"name": f"s{i}", "abs_rel": 0.3 + 0.01 * i, "delta1": 0.5} for i in range(10)]
    rows_a = [
        {"name": f"s{i}", "abs_rel": 0.2 + 0.01 * i, "delta1": 0.6 + 0.001 * i} for i in reversed(range(10))
    ]
    comparisons = compare_rows(rows_a, rows_b)
    assert comparisons["abs_rel"].difference == pytest.approx(-0.1)
    assert comparisons["abs_rel"].verdict == "better" and comparisons["delta1"].verdict == "better"
    table = comparison_table([("model", "floor", comparisons)])
    assert "| model | floor | -0.100 [-0.100, -0.100] | better |" in table
    with pytest.raises(ValueError, match="fewer than 2"):
        compare_rows(rows_a, [{"name": "other", "abs_rel": 1.0, "delta1": 0.0}])


def test_depth_correlations_separate_fixed_maps_from_image_readers() -> None:
    rng = np.random.default_rng(4)
    layout = torch.linspace(1, 3, 12).reshape(3, 4)
    targets = [layout * float(s) + torch.tensor(rng.normal(0, 0.05, (3, 4))) for s in rng.uniform(0.5, 2, 16)]
    reader = depth_correlations([t * 1.1 for t in targets], targets)  # reads scale and layout
    assert reader.scale == pytest.approx(1.0) and reader.structure == pytest.approx(1.0)
    fixed = depth_correlations([layout] * len(targets), targets)  # the same map for every image
    assert math.isnan(fixed.scale) and fixed.structure > 0.9
    constant = depth_correlations([torch.full((3, 4), 2.0)] * len(targets), targets)
    assert math.isnan(constant.structure)
    flipped = depth_correlations([t.flip(0) for t in targets], targets)
    assert flipped.structure < 0 and flipped.images == 16


def test_evaluate_prints_paired_comparison_vs_first_model(tmp_path, capsys) -> None:
    from moa_depthclip.cli.main import main

    out = tmp_path / "results"
    code = main(
        ["evaluate", "--dataset", "synthetic", "--num", "6", "--train-num", "3", "--height", "32", "--width", "48",
         "--model", "constant:2.5", "--model", "constant:2.5", "--model", "constant:40", "--no-progress",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Paired comparison vs the first model" in printed
    section = printed.split("Paired comparison vs the first model")[1]
    comparison_rows = [line for line in section.splitlines() if line.startswith("| constant (")]
    assert len(comparison_rows) == 2
    same, far = comparison_rows
    assert same.count("level") == 2  # identical models
    assert "worse" in far  # 40 m everywhere (clamped to 10 m) is far worse than 2.5 m on rooms
    assert "Paired comparison" in (out / "results.md").read_text()
