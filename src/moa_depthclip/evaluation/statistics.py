"""Is one model really better than another on these scenes? Paired statistics over per-image metrics.

Two models scored on the same images give paired numbers: the per-image difference removes the
variation between images (a hard scene is hard for both) and leaves what separates the models.
``paired_bootstrap`` resamples the images (with a fixed seed, so a report is reproducible) and gives
a 95 % interval for the mean difference; the verdict is read from that interval alone: "better" or
"worse" when it excludes zero, "level" when it contains it.

``depth_correlations`` asks whether a model reads the image at all: the correlation, over scenes,
between the predicted and the true mean depth (does it get each scene's scale?) and the mean
correlation, within each image, between prediction and ground truth (does it get the layout?).
A model that predicts one fixed map has no scale correlation, whatever its structure figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from moa_depthclip.evaluation.metrics import HIGHER_IS_BETTER, METRIC_LABELS

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on one metric, over the images both were scored on.

    ``difference`` is mean(A - B); ``low``/``high`` its ``confidence`` bootstrap interval; ``verdict``
    says how A compares with B ("better", "level", "worse"), taking the metric's direction into account.
    """

    metric: str
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    verdict: str
    images: int
    confidence: float = 0.95

    def describe(self, digits: int = 3) -> str:
        """``-0.012 [-0.020, -0.004]``: the difference and its interval, with more digits when a bound
        that decides the verdict would otherwise print as zero."""
        decisive = self.low if self.low > 0 else self.high if self.high < 0 else None
        while decisive is not None and digits < 6 and round(decisive, digits) == 0:
            digits += 1
        return f"{self.difference:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def verdict(low: float, high: float, higher_is_better: bool) -> str:
    """ "better"/"worse" when the interval of (A - B) excludes zero, else "level"."""
    if low > 0:
        return "better" if higher_is_better else "worse"
    if high < 0:
        return "worse" if higher_is_better else "better"
    return "level"


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    metric: str,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> PairedComparison:
    """Percentile bootstrap of mean(a - b) over paired per-image values (same images, same order)."""
    values_a, values_b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if values_a.shape != values_b.shape or values_a.ndim != 1:
        raise ValueError(
            f"paired values need two 1-D sequences of one length, got {values_a.shape} and {values_b.shape}"
        )
    keep = np.isfinite(values_a) & np.isfinite(values_b)
    values_a, values_b = values_a[keep], values_b[keep]
    if len(values_a) < 2:
        raise ValueError(f"a paired comparison of {metric} needs at least 2 images scored by both models")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    differences = values_a - values_b
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    # Resample in chunks: samples x images indices at once could be large for big test sets.
    chunk = max(1, 2_000_000 // len(differences))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        picks = rng.integers(0, len(differences), size=(stop - start, len(differences)))
        means[start:stop] = differences[picks].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = (float(v) for v in np.percentile(means, [tail, 100 - tail]))
    return PairedComparison(
        metric=metric,
        mean_a=float(values_a.mean()),
        mean_b=float(values_b.mean()),
        difference=float(differences.mean()),
        low=low,
        high=high,
        verdict=verdict(low, high, metric in HIGHER_IS_BETTER),
        images=len(differences),
        confidence=confidence,
    )


def compare_rows(
    rows_a: Iterable[dict], rows_b: Iterable[dict], metrics: Sequence[str] = ("abs_rel", "delta1"), **kwargs
) -> dict[str, PairedComparison]:
    """Paired comparisons of two models' per-image rows (``EvalResult.rows``), matched by image name."""
    by_name = {row["name"]: row for row in rows_b}
    shared = [(row, by_name[row["name"]]) for row in rows_a if row["name"] in by_name]
    if len(shared) < 2:
        raise ValueError("the two results share fewer than 2 images: they were not scored on one dataset")
    return {
        metric: paired_bootstrap(
            [r[metric] for r, _ in shared], [r[metric] for _, r in shared], metric, **kwargs
        )
        for metric in metrics
    }


@dataclass(frozen=True)
class DepthCorrelations:
    """``scale``: Pearson r over images between predicted and true mean depth; ``structure``: mean
    over images of the Pearson r between predicted and true depth across the valid pixels. NaN
    where undefined (a constant prediction has no correlation)."""

    scale: float
    structure: float
    images: int


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    norm = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum()) / norm if norm > 0 else math.nan


def _image_figures(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[float, float, float] | None:
    """(predicted mean, true mean, within-image r) over the valid pixels; None with < 2 of them."""
    pred = torch.as_tensor(pred).detach().double().cpu().flatten()
    target = torch.as_tensor(target).detach().double().cpu().flatten()
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.numel()} pixels, ground truth {target.numel()}")
    valid = torch.isfinite(target) & (target > 0) & torch.isfinite(pred)
    if mask is not None:
        valid &= torch.as_tensor(mask).cpu().flatten().bool()
    if int(valid.sum()) < 2:
        return None
    p, t = pred[valid].numpy(), target[valid].numpy()
    return float(p.mean()), float(t.mean()), _pearson(p, t)


class CorrelationCollector:
    """Gathers the per-image figures of :class:`DepthCorrelations` from an evaluation in progress.

    Pass it as ``evaluate(..., observe=collector)``: it sees each batch's protocol-prepared prediction,
    ground truth and mask, so the correlations use exactly the pixels the metrics use.
    """

    def __init__(self) -> None:
        self.figures: list[tuple[float, float, float]] = []

    def __call__(
        self, names: Sequence[str], pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> None:
        for index in range(len(names)):
            figures = _image_figures(pred[index], target[index], mask[index])
            if figures is not None:
                self.figures.append(figures)

    def result(self) -> DepthCorrelations:
        if not self.figures:
            raise ValueError("no image with at least 2 valid pixels to correlate")
        predicted, true, within = (np.array(column) for column in zip(*self.figures, strict=True))
        finite = within[np.isfinite(within)]
        return DepthCorrelations(
            scale=_pearson(predicted, true) if len(true) > 1 else math.nan,
            structure=float(finite.mean()) if len(finite) else math.nan,
            images=len(true),
        )


def depth_correlations(
    predictions: Iterable[torch.Tensor],
    targets: Iterable[torch.Tensor],
    masks: Iterable[torch.Tensor] | None = None,
) -> DepthCorrelations:
    """Scale and structure correlations of predictions with ground truth (pairs of equal-shape maps).

    ``masks`` (bool, same shapes) restrict both figures to valid pixels; by default every finite
    positive ground-truth pixel counts.
    """
    collector = CorrelationCollector()
    mask_list = list(masks) if masks is not None else None
    for index, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        mask = mask_list[index] if mask_list is not None else None
        figures = _image_figures(pred, target, mask)
        if figures is not None:
            collector.figures.append(figures)
    return collector.result()


def comparison_table(
    comparisons: Sequence[tuple[str, str, dict[str, PairedComparison]]], digits: int = 3
) -> str:
    """Markdown table: one row per (model, reference) pair, each metric's difference, interval, verdict."""
    if not comparisons:
        return ""
    metrics = list(comparisons[0][2])
    header = ["model", "vs"]
    for metric in metrics:
        arrow = "↑" if metric in HIGHER_IS_BETTER else "↓"
        header += [f"Δ {METRIC_LABELS.get(metric, metric)} {arrow} [95 % CI]", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "| --- | --- |" + " ---: | :---: |" * len(metrics)]
    for name, reference, by_metric in comparisons:
        cells = [name, reference]
        for metric in metrics:
            comparison = by_metric[metric]
            cells += [comparison.describe(digits), comparison.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    images = comparisons[0][2][metrics[0]].images
    lines += [
        "",
        f"Δ = model − reference, mean over {images} images paired by name; 95 % paired bootstrap "
        f"interval ({BOOTSTRAP_SAMPLES} resamples, seed {BOOTSTRAP_SEED}). The verdict reads the "
        "interval alone: better/worse when it excludes 0, level when it contains 0.",
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "CorrelationCollector",
    "DepthCorrelations",
    "PairedComparison",
    "compare_rows",
    "comparison_table",
    "depth_correlations",
    "paired_bootstrap",
    "verdict",
]
