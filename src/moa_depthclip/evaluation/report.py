"""Writers for evaluation results: JSON, per-image CSV and a side-by-side markdown table."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from moa_depthclip.evaluation.metrics import HIGHER_IS_BETTER, METRIC_LABELS, METRIC_NAMES
from moa_depthclip.evaluation.runner import EvalResult

PathLike = str | os.PathLike

def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: PathLike, results: Sequence[EvalResult], extra: dict | None = None) -> None:
    """All results (means, counts, per-image rows) in one JSON file; NaN is written as null."""
    payload = {"results": [r.to_dict() for r in results]}
    if extra:
        payload.update(extra)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(
        json.dumps(_json_safe(payload), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def write_csv(path: PathLike, results: Sequence[EvalResult]) -> None:
    """One row per (model, image) (per batch for per-batch protocols) with every metric."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "protocol", "ground_truth", "name", "valid_pixels", *METRIC_NAMES])
        for result in results:
            for row in result.rows:
                writer.writerow(
                    [
                        result.model_name,
                        result.protocol.split(";")[0],
                        result.ground_truth,
                        row["name"],
                        row["valid_pixels"],
                        *(f"{row[k]:.6g}" for k in METRIC_NAMES),
                    ]
                )


def markdown_table(results: Sequence[EvalResult], title: str | None = None) -> str:
    """Models side by side (one row each) with the protocol, ground truth and image counts underneath.

    When the results use several protocols (e.g. the standard and the authors' protocol side by
    side) each row names its protocol ("P1", "P2", ... spelled out underneath).
    """
    protocols = list(dict.fromkeys(r.protocol for r in results))
    several = len(protocols) > 1
    header = ["model", *(f"{METRIC_LABELS[k]} {'↑' if k in HIGHER_IS_BETTER else '↓'}" for k in METRIC_NAMES)]
    if several:
        header.insert(1, "protocol")
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(["---"] * (2 if several else 1) + ["---:"] * len(METRIC_NAMES)) + " |")
    for result in results:
        cells = [result.model_name]
        if several:
            cells.append(f"P{protocols.index(result.protocol) + 1}")
        for k in METRIC_NAMES:
            value = result.mean.get(k, math.nan)
            cells.append("–" if not math.isfinite(value) else f"{value:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for index, protocol in enumerate(protocols):
        lines.append(f"Protocol{f' P{index + 1}' if several else ''}: {protocol}.")
    for truth in dict.fromkeys(r.ground_truth for r in results):
        lines.append(f"Ground truth: {truth}.")
    for result in results:
        c = result.counts
        batches = f" in {c['batches']} batches" if "batches" in c else ""
        lines.append(
            f"{result.model_name}: {c.get('evaluated', 0)} of {c.get('images', 0)} images evaluated{batches}, "
            f"{c.get('skipped_no_valid_pixels', 0)} without valid pixels, "
            f"{c.get('skipped_no_ground_truth', 0)} dataset entries without ground truth, "
            f"{c.get('masked_invalid_depth_pixels', 0)} NaN/inf/negative depth pixels masked as invalid."
        )
    return "\n".join(lines) + "\n"


def paired_comparison_section(
    results: Sequence[EvalResult], metrics: Sequence[str] = ("abs_rel", "delta1")
) -> str:
    """Each later model against the first one under the same protocol: per-image paired differences
    with a 95 % bootstrap interval and a verdict read from it (``evaluation.statistics``). Empty when
    there is nothing to pair (one model, or no per-image rows in common)."""
    from moa_depthclip.evaluation.statistics import compare_rows, comparison_table

    if not results:
        return ""
    reference = results[0]
    comparisons = []
    for result in results[1:]:
        if result.protocol != reference.protocol:
            continue
        try:
            comparisons.append(
                (result.model_name, reference.model_name, compare_rows(result.rows, reference.rows, metrics))
            )
        except ValueError:  # fewer than two images scored by both
            continue
    if not comparisons:
        return ""
    return "\n### Paired comparison vs the first model\n\n" + comparison_table(comparisons)
