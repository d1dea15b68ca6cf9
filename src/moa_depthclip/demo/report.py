"""The demo's report: what ran, the held-out table, every comparison with its interval and verdict,
whether the model reads the image, prediction panels and the training curve.

Every claim in the text is read from a paired interval or a measured correlation; nothing is
claimed from a difference of means alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from moa_depthclip.evaluation.report import markdown_table, write_json
from moa_depthclip.evaluation.runner import EvalResult
from moa_depthclip.evaluation.statistics import DepthCorrelations, PairedComparison, comparison_table
from moa_depthclip.training.config import TrainConfig
from moa_depthclip.training.trainer import TrainResult

PANELS = 4


def write_report(
    out_dir: Path,
    config: TrainConfig,
    result: TrainResult,
    weights: str,
    results: list[EvalResult],
    comparisons: dict[str, dict[str, PairedComparison]],
    correlations: dict[str, DepthCorrelations],
    test: Dataset,
    model: torch.nn.Module,
    seconds: float,
) -> Path:
    """Write ``report.md`` with its figures and ``metrics.json`` into ``out_dir``; returns the report."""
    write_json(
        out_dir / "metrics.json",
        results,
        extra={
            "comparisons": {
                floor: {metric: vars(c) for metric, c in by_metric.items()}
                for floor, by_metric in comparisons.items()
            },
            "correlations": {name: vars(c) for name, c in correlations.items()},
            "steps": result.steps,
            "weights": weights,
            "run": {
                "seconds": seconds,
                "train_seconds": result.seconds,
                "threads": torch.get_num_threads(),
                "batch_size": config.data.batch_size,
                "render_size": list(config.data.render_size),
                "train_scenes": config.data.train_scenes,
                "test_scenes": len(test),
            },
        },
    )
    panels = _panels(out_dir, model, test)
    curve = _curve(out_dir / "run" / "metrics.jsonl", out_dir / "training_curve.png")
    model_name = results[0].model_name
    height, width = config.data.render_size
    weights_line = (
        "**random initialisation** (no pretrained CLIP weights were given or found on this machine)"
        if weights == "random"
        else f"**pretrained CLIP** from `{weights}`"
    )
    lines = [
        "# MoA-DepthCLIP demo report",
        "",
        f"- Backbone weights: {weights_line}.",
        f"- Data: {config.data.train_scenes} procedurally rendered indoor RGB-D scenes for training, "
        f"{config.data.val_scenes} for validation, {len(test)} held-out test scenes (a separate split, "
        f"never seen in training); {height}x{width} pixels.",
        f"- Training: {result.steps} optimizer steps of batch {config.data.batch_size} "
        f"({result.steps * config.data.batch_size} images), AdamW lr {config.optim.lr:g} (new modules) / "
        f"{config.optim.backbone_lr:g} (unfrozen blocks), composite loss; {result.seconds:.0f} s of training.",
        f"- Whole demo: {seconds / 60:.1f} min ({seconds:.0f} s) on {torch.get_num_threads()} CPU thread(s).",
        "- Floors: a constant depth (the median training depth) and the layout prior (the training "
        "set's mean depth at each pixel position, whatever the image: what a network learns before it "
        "reads image content).",
        "",
        "## Held-out test scenes",
        "",
        markdown_table(results).strip(),
        "",
        "## Is the model better than each floor?",
        "",
        comparison_table(
            [(model_name, floor, by_metric) for floor, by_metric in comparisons.items()]
        ).strip(),
        "",
        *[f"- {sentence}" for sentence in verdict_sentences(comparisons)],
        "",
        "## Does the model read the image?",
        "",
        correlation_table(correlations).strip(),
        "",
        reads_image_sentence(model_name, correlations, comparisons),
        "",
        "## Predictions (image | ground truth | prediction | absolute error)",
        "",
        *[f"![{name}]({name})" for name in panels],
        "",
    ]
    if curve:
        lines += ["## Training curve", "", f"![training curve]({curve})", ""]
    lines += [
        "## Files",
        "",
        "- `run/final/`: the trained model (`MoADepthCLIP.from_pretrained`, or "
        "`moa-depthclip predict --model run`)",
        "- `run/tensorboard/`: `tensorboard --logdir run/tensorboard`",
        "- `metrics.json`: every metric per image for the three models, the comparisons and correlations",
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def verdict_sentences(comparisons: dict[str, dict[str, PairedComparison]]) -> list[str]:
    """One sentence per floor, read from the intervals alone."""
    sentences = []
    for floor, by_metric in comparisons.items():
        parts = [
            f"{_label(metric)} {c.verdict} ({c.mean_a:.3f} vs {c.mean_b:.3f}, difference {c.describe()})"
            for metric, c in by_metric.items()
        ]
        sentences.append(f"Against the {floor}: " + "; ".join(parts) + ".")
    return sentences


def correlation_table(correlations: dict[str, DepthCorrelations]) -> str:
    lines = [
        "| model | scale r (per-scene mean depth) | structure r (within image, mean) |",
        "| --- | ---: | ---: |",
    ]
    for name, c in correlations.items():
        lines.append(f"| {name} | {_number(c.scale)} | {_number(c.structure)} |")
    lines += [
        "",
        "Scale r: Pearson correlation over the test scenes between predicted and true mean depth (does "
        "the model get how deep each room is?). Structure r: Pearson correlation between predicted and "
        "true depth over the pixels of each image, averaged over images (does it get the layout?). "
        "A map that is the same for every image has no scale correlation (–).",
    ]
    return "\n".join(lines) + "\n"


def reads_image_sentence(
    model_name: str,
    correlations: dict[str, DepthCorrelations],
    comparisons: dict[str, dict[str, PairedComparison]],
) -> str:
    """What the figures say about image reading, without going beyond them."""
    layout = next((name for name in comparisons if name.startswith("layout")), None)
    if layout is None:
        return ""
    abs_rel = comparisons[layout]["abs_rel"]
    model, prior = correlations[model_name], correlations[layout]
    figures = (
        f"scale r {_number(model.scale)}, structure r {_number(model.structure)} against the layout prior's "
        f"structure r {_number(prior.structure)}"
    )
    if abs_rel.verdict == "better":
        return (
            f"Yes: it beats the layout prior on AbsRel with the interval excluding zero "
            f"({abs_rel.describe()}), which only reading the image can do; {figures}."
        )
    return (
        f"Not measurably: against the layout prior its AbsRel is {abs_rel.verdict} ({abs_rel.describe()}, "
        f"the interval {'contains' if abs_rel.verdict == 'level' else 'lies above'} zero), so this run does "
        f"not show that it reads depth from the image beyond where a pixel is; {figures}. From a random "
        "backbone this needs a longer run (`--minutes`) or pretrained CLIP (`--clip DIR`)."
    )


def readme_block(measured: list[tuple[str, dict[str, Any]]]) -> str:
    """The README's demo block from (command, ``metrics.json`` of that run) pairs, one section each."""
    sections = [_layout_summary(measured)]
    for command, data in measured:
        run = data.get("run", {})
        results = data["results"]
        model_name = results[0]["model"]
        weights = (
            "random-init backbone" if data["weights"] == "random" else f"pretrained CLIP `{data['weights']}`"
        )
        height, width = run.get("render_size", ["?", "?"])
        lines = [
            f"`{command}` ({weights}; {data['steps']} optimizer steps of batch {run.get('batch_size', '?')} at "
            f"{height}x{width}, {run.get('seconds', 0) / 60:.1f} min in all on {run.get('threads', '?')} CPU "
            f"thread(s); {run.get('test_scenes', '?')} held-out scenes):",
            "",
            "| model | δ1 ↑ | AbsRel ↓ | RMSE ↓ | scale r | structure r |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for result in results:
            mean, c = result["mean"], data["correlations"][result["model"]]
            lines.append(
                f"| {result['model']} | {mean['delta1']:.3f} | {mean['abs_rel']:.3f} | {mean['rmse']:.3f} | "
                f"{_number(c['scale'])} | {_number(c['structure'])} |"
            )
        comparisons = {
            floor: {metric: PairedComparison(**values) for metric, values in by_metric.items()}
            for floor, by_metric in data["comparisons"].items()
        }
        lines += [
            "",
            comparison_table(
                [(model_name, floor, by_metric) for floor, by_metric in comparisons.items()]
            ).strip(),
            "",
            reads_image_sentence(
                model_name,
                {name: DepthCorrelations(**c) for name, c in data["correlations"].items()},
                comparisons,
            ),
            "",
        ]
        sections.append("\n".join(lines))
    footer = (
        "`--steps N` fixes the number of optimizer steps, so those numbers do not depend on the machine; "
        "the plain `moa-depthclip demo` sets the step count from a 4-minute wall-clock budget, so how far "
        "it gets depends on the machine and on what else runs on it. This block is written by "
        "`python scripts/update_readme_demo.py`, which runs the commands above.\n"
    )
    return "\n".join(sections) + "\n" + footer


def _layout_summary(measured: list[tuple[str, dict[str, Any]]]) -> str:
    """One sentence: the AbsRel verdict against the layout prior at each budget, shortest first."""
    parts, beats_constant = [], []
    for _, data in measured:
        constant = next((name for name in data["comparisons"] if name.startswith("constant")), None)
        if constant is not None:
            beats_constant.append(data["comparisons"][constant]["abs_rel"]["verdict"] == "better")
        layout = next((name for name in data["comparisons"] if name.startswith("layout")), None)
        if layout is not None:
            comparison = PairedComparison(**data["comparisons"][layout]["abs_rel"])
            parts.append(f"**{comparison.verdict}** after {data['steps']} steps ({comparison.describe()})")
    if not parts:
        return ""
    weights = "a randomly initialised" if measured[0][1]["weights"] == "random" else "a pretrained"
    return (
        f"Against the layout prior, the floor that only reading the image can beat, MoA-DepthCLIP with {weights} "
        f"backbone is on AbsRel: {'; '.join(parts)} (difference and 95 % paired interval over the held-out "
        "scenes)."
        + (
            " It beats the constant floor on AbsRel at every budget."
            if beats_constant and all(beats_constant)
            else ""
        )
        + "\n"
    )


def _panels(out_dir: Path, model: torch.nn.Module, test: Dataset) -> list[str]:
    from moa_depthclip.model.prediction import predict_batch
    from moa_depthclip.visualize import make_panel

    names = []
    model.eval()
    for index in range(min(PANELS, len(test))):
        sample = test[index]
        pred = predict_batch(model, sample["image"][None])[0]
        panel = make_panel(sample["image"], sample["depth"], pred, titles={})
        path = out_dir / f"panel_{index}.png"
        Image.fromarray(panel).save(path)
        names.append(path.name)
    return names


def _curve(metrics_file: Path, out: Path) -> str | None:
    """Training loss (and validation AbsRel when logged) against step, drawn by ``inference.visualize``."""
    from moa_depthclip.visualize import plot_curves

    if not metrics_file.is_file():
        return None
    records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line]
    series = {
        "training loss": [(r["step"], r["loss/total"]) for r in records if "loss/total" in r],
        "validation AbsRel": [(r["step"], r["val/abs_rel"]) for r in records if "val/abs_rel" in r],
    }
    series = {name: points for name, points in series.items() if points}
    if len(series.get("training loss", [])) < 2:
        return None
    plot_curves(series, out, xlabel="optimizer step")
    return out.name


def _label(metric: str) -> str:
    from moa_depthclip.evaluation.metrics import METRIC_LABELS

    return METRIC_LABELS.get(metric, metric)


def _number(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


__all__ = ["correlation_table", "readme_block", "reads_image_sentence", "verdict_sentences", "write_report"]
