"""The one evaluation loop every results table goes through, for every model.

``evaluate`` asks the protocol what to feed the model (the whole frame, a region, a resize), runs
the package's one prediction path (``model.prediction.predict_batch``: size rule, flip averaging),
hands the prediction back to the protocol (resize or paste, valid mask, crop, clamp, median scaling)
and computes metrics per image, or per batch of images for protocols that average per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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

    ``rows``: one dict per evaluated image (per batch, for per-batch protocols): ``name``,
    ``valid_pixels`` and every metric.
    ``mean``: the mean of each metric over the rows (the reported numbers).
    ``ground_truth``: what the dataset's depth maps are (e.g. NYU ``raw``), stated in every table.
    ``skipped``: names of images that were not scored (no valid ground-truth pixel after the protocol's
    mask), plus dataset entries without ground truth (e.g. KITTI ``None`` lines).
    """

    model_name: str
    protocol: str
    ground_truth: str = "unknown"
    dataset: str = ""
    rows: list[dict] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "protocol": self.protocol,
            "ground_truth": self.ground_truth,
            "dataset": self.dataset,
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
    observe: Callable[[list[str], torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``dataset`` under ``protocol``; ``flip`` (or ``protocol.flip``) averages
    the prediction with that of the mirrored image.

    ``input_size`` overrides the protocol's model input size. With a per-batch protocol the loader
    batches are the protocol's ``batch_size`` images (the batches it averages over), whatever
    ``batch_size`` says. ``observe(names, pred, targets, mask)`` sees each batch as the metrics do
    (e.g. ``evaluation.statistics.CorrelationCollector``).
    """
    flip = flip_enabled(model, flip or protocol.flip)
    changes: dict = {"flip": flip}
    if input_size is not None:
        changes["input_size"] = tuple(input_size)
    protocol = protocol.with_options(**changes)
    per_batch = protocol.aggregation == "batch"
    device = torch.device(device)
    was_training = model.training
    model.eval()
    if max_images is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(max_images, len(dataset))))
    loader = DataLoader(
        dataset,
        batch_size=protocol.batch_size if per_batch else batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    name = model_name or type(model).__name__
    source = underlying_dataset(dataset)
    result = EvalResult(
        model_name=name,
        protocol=protocol.describe(),
        ground_truth=describe_ground_truth(source),
        dataset=type(source).__name__,
    )
    dataset_skipped = list(getattr(source, "skipped", []))
    bar = tqdm(total=len(dataset), desc=f"evaluate {name}", disable=not progress, unit="img")
    masked = 0  # NaN / inf / negative ground-truth pixels the readers masked as invalid
    try:
        for samples in loader:
            masked += sum(int(s.get("masked_pixels", 0)) for s in samples)
            for group in _group_by_size(samples):
                images = torch.stack([s["image"] for s in group]).to(device)
                targets = torch.stack([s["depth"] for s in group]).to(device)
                pred = predict_batch(
                    model,
                    protocol.model_input(images),
                    flip=flip,
                    input_size=protocol.input_size,
                    long_side=None,
                )
                pred, mask = protocol.prepare(pred, targets.float())
                if observe is not None:
                    observe([s["name"] for s in group], pred, targets, mask)
                if per_batch:
                    _score_batch(result, group, pred, targets, mask)
                else:
                    _score_images(result, group, pred, targets, mask)
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
        "evaluated": len(dataset) - len(result.skipped),
        "skipped_no_valid_pixels": len(result.skipped),
        "skipped_no_ground_truth": len(dataset_skipped),
        "masked_invalid_depth_pixels": masked,
    }
    if per_batch:
        result.counts["batches"] = len(result.rows)
    result.skipped.extend(dataset_skipped)
    return result


def underlying_dataset(dataset: Dataset) -> Dataset:
    """The dataset under ``Subset`` / cache wrappers (which keep it as ``dataset`` or ``base``)."""
    for _ in range(8):
        inner = getattr(dataset, "dataset", None) or getattr(dataset, "base", None)
        if inner is None:
            break
        dataset = inner
    return dataset


def describe_ground_truth(dataset: Dataset) -> str:
    """What the dataset's depth maps are, for the tables: its ``ground_truth`` (e.g. NYU ``raw`` or
    ``filled``) and its class name, looking through wrappers (caches, subsets)."""
    while getattr(dataset, "ground_truth", None) is None and isinstance(
        inner := getattr(dataset, "base", getattr(dataset, "dataset", None)), Dataset
    ):
        dataset = inner
    label = getattr(dataset, "ground_truth", None)
    kind = type(dataset).__name__
    return f"{label} ({kind})" if label else kind


def _score_images(
    result: EvalResult, group: list[dict], pred: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> None:
    metrics = compute_metrics(pred, targets, mask)
    valid = mask.flatten(1).sum(dim=1)
    for i, sample in enumerate(group):
        if int(valid[i]) == 0:
            result.skipped.append(sample["name"])
            continue
        row = {"name": sample["name"], "valid_pixels": int(valid[i])}
        row.update({k: float(metrics[k][i]) for k in METRIC_NAMES})
        result.rows.append(row)


def _score_batch(
    result: EvalResult, group: list[dict], pred: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> None:
    """One row for the whole group: metrics over all its scored pixels (per-batch protocols)."""
    valid = mask.flatten(1).sum(dim=1)
    result.skipped.extend(s["name"] for i, s in enumerate(group) if int(valid[i]) == 0)
    total = int(valid.sum())
    if total == 0:
        return
    metrics = compute_metrics(pred.reshape(1, -1), targets.reshape(1, -1).float(), mask.reshape(1, -1))
    names = [s["name"] for s in group]
    row = {"name": f"{names[0]}..{names[-1]}" if len(names) > 1 else names[0], "valid_pixels": total}
    row.update({k: float(metrics[k][0]) for k in METRIC_NAMES})
    result.rows.append(row)


def _group_by_size(samples: Sequence[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for sample in samples:
        key = (tuple(sample["image"].shape), tuple(sample["depth"].shape))
        groups.setdefault(key, []).append(sample)
    return list(groups.values())
