"""The one evaluation loop every results table goes through, for every model.

``evaluate`` feeds images at a size the model accepts (multiples of 32, or a given ``input_size``),
optionally averages with the horizontally flipped prediction, hands the prediction to the protocol
(resize to ground-truth resolution, valid mask, crop, clamp) and computes metrics per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from moa_depthclip.evaluation.metrics import METRIC_NAMES, compute_metrics
from moa_depthclip.evaluation.protocol import EvalProtocol
from moa_depthclip.model.prediction import flip_enabled, predict_batch


@dataclass
class EvalResult:
    """Per-image rows, mean metrics and bookkeeping of one model on one dataset.

    ``rows``: one dict per evaluated image: ``name``, ``valid_pixels`` and every metric.
    ``mean``: the mean of each metric over evaluated images (the reported numbers).
    ``skipped``: names of images that were not scored (no valid ground-truth pixel after the protocol's
    mask), plus dataset entries without ground truth (e.g. KITTI ``None`` lines).
    """

    model_name: str
    protocol: str
    rows: list[dict] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "protocol": self.protocol,
            "mean": self.mean,
            "counts": self.counts,
            "skipped": self.skipped,
            "per_image": self.rows,
        }


def _collate(samples: list[dict]) -> list[dict]:
    """Keep samples as a list: datasets may mix image sizes (KITTI, folders)."""
    return samples


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    protocol: EvalProtocol,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    flip: bool = False,
    num_workers: int = 0,
    progress: bool = True,
    input_size: tuple[int, int] | None = None,
    model_name: str | None = None,
    max_images: int | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``dataset`` under ``protocol``; ``flip`` (or ``protocol.flip``) averages
    the prediction with that of the mirrored image."""
    flip = flip_enabled(model, flip or protocol.flip)
    protocol = protocol.with_options(flip=flip)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    if max_images is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(max_images, len(dataset))))
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
    )
    name = model_name or type(model).__name__
    result = EvalResult(model_name=name, protocol=protocol.describe())
    source = getattr(dataset, "dataset", dataset)
    dataset_skipped = list(getattr(source, "skipped", []))
    bar = tqdm(total=len(dataset), desc=f"evaluate {name}", disable=not progress, unit="img")
    try:
        for samples in loader:
            for group in _group_by_size(samples):
                images = torch.stack([s["image"] for s in group]).to(device)
                targets = torch.stack([s["depth"] for s in group]).to(device)
                pred = predict_batch(model, images, flip=flip, input_size=input_size, long_side=None)
                pred, mask = protocol.prepare(pred, targets)
                metrics = compute_metrics(pred, targets, mask)
                valid = mask.flatten(1).sum(dim=1)
                for i, sample in enumerate(group):
                    if int(valid[i]) == 0:
                        result.skipped.append(sample["name"])
                        continue
                    row = {"name": sample["name"], "valid_pixels": int(valid[i])}
                    row.update({k: float(metrics[k][i]) for k in METRIC_NAMES})
                    result.rows.append(row)
            bar.update(len(samples))
    finally:
        bar.close()
        model.train(was_training)
    result.mean = {
        k: (sum(r[k] for r in result.rows) / len(result.rows)) if result.rows else math.nan
        for k in METRIC_NAMES
    }
    result.counts = {
        "images": len(dataset),
        "evaluated": len(result.rows),
        "skipped_no_valid_pixels": len(result.skipped),
        "skipped_no_ground_truth": len(dataset_skipped),
    }
    result.skipped.extend(dataset_skipped)
    return result


def _group_by_size(samples: Sequence[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for sample in samples:
        key = (tuple(sample["image"].shape), tuple(sample["depth"].shape))
        groups.setdefault(key, []).append(sample)
    return list(groups.values())
