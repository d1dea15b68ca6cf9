"""Writers for evaluation results: JSON, per-image CSV and a side-by-side markdown table."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from moa_depthclip.evaluation.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from moa_depthclip.evaluation.runner import EvalResult

PathLike = str | os.PathLike

METRIC_LABELS = {
    "delta1": "δ1", "delta2": "δ2", "delta3": "δ3", "abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse": "RMSE",
    "rmse_log": "RMSE log", "log10": "log10", "silog": "SILog",
}  # fmt: skip


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
    """One row per (model, image) with every metric."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "name", "valid_pixels", *METRIC_NAMES])
        for result in results:
            for row in result.rows:
                writer.writerow(
                    [
                        result.model_name,
                        row["name"],
                        row["valid_pixels"],
                        *(f"{row[k]:.6g}" for k in METRIC_NAMES),
                    ]
                )


def markdown_table(results: Sequence[EvalResult], title: str | None = None) -> str:
    """Models side by side (one row each) with the protocol line and image counts underneath."""
    header = ["model", *(f"{METRIC_LABELS[k]} {'↑' if k in HIGHER_IS_BETTER else '↓'}" for k in METRIC_NAMES)]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(["---"] + ["---:"] * len(METRIC_NAMES)) + " |")
    for result in results:
        cells = [result.model_name]
        for k in METRIC_NAMES:
            value = result.mean.get(k, math.nan)
            cells.append("–" if not math.isfinite(value) else f"{value:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    protocols = list(dict.fromkeys(r.protocol for r in results))
    for protocol in protocols:
        lines.append(f"Protocol: {protocol}.")
    for result in results:
        c = result.counts
        lines.append(
            f"{result.model_name}: {c.get('evaluated', 0)} of {c.get('images', 0)} images evaluated, "
            f"{c.get('skipped_no_valid_pixels', 0)} without valid pixels, "
            f"{c.get('skipped_no_ground_truth', 0)} dataset entries without ground truth."
        )
    return "\n".join(lines) + "\n"
