"""Component ablation: train a list of config variants the same way and compare them in one table.

A variant is a name and a list of ``--set``-style overrides applied on top of one base
configuration (preset, YAML file, shared overrides). Every variant is trained by the ordinary
:class:`~moa_depthclip.training.trainer.Trainer` (same data, same seed, same step budget) and then
scored by the ordinary :func:`~moa_depthclip.evaluation.runner.evaluate` on the run's validation
set under the run's validation protocol, so an ablation table and a training run can never
disagree about what a number means. Each variant reports its trainable parameters by group next
to its metrics, and, when it was scored on the same images as the first (reference) variant, a
paired-bootstrap 95 % interval of its difference from the reference on AbsRel and δ1.

Outputs in ``OUT``: one run folder per variant (``OUT/<variant>/``, a normal run directory),
``ablation.md`` (the table) and ``ablation.json`` (everything, per-image rows included).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moa_depthclip.training.checkpoint import holds_run
from moa_depthclip.training.config import ConfigError, TrainConfig, build_config

# Built-in variants: name -> (what it removes or changes, overrides). Each is the method with one
# component changed; docs/ablations.md describes them.
BUILTIN_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "full": ("the method as configured", ()),
    "no-moa": ("no adapters: selective fine-tuning only (taps unchanged)", ("model.moa.layers=[]",)),
    "no-context": ("no context vector (router and decoder see none)", ("model.context.mode=none",)),
    "image-context": ("image-conditioned context instead of the static one", ("model.context.mode=image",)),
    "router-no-context": ("router sees the token only", ("model.moa.router_uses_context=false",)),
    "single-adapter": (
        "one plain bottleneck adapter per layer (no experts, no router, no spatial conv)",
        ("model.moa.num_experts=1", "model.moa.spatial_kernel=0"),
    ),
    "no-spatial": ("experts without the depthwise 3x3 conv", ("model.moa.spatial_kernel=0",)),
    "entropy-router": (
        "gate-entropy router regulariser instead of load balancing",
        ("model.moa.router_regularizer=entropy",),
    ),
    "no-router-reg": ("no router regulariser", ("model.moa.router_regularizer=none",)),
    "frozen-backbone": ("whole backbone frozen (no unfrozen blocks)", ("model.backbone.unfrozen_blocks=[]",)),
    "decoder-only": (
        "frozen backbone, no adapters: only context, decoder and heads train",
        ("model.backbone.unfrozen_blocks=[]", "model.moa.layers=[]"),
    ),
    "bins-only": ("classification over the bins only", ("model.head.blend=bins", "loss.reg_l1=0")),
    "regression-only": ("direct regression only", ("model.head.blend=regression", "loss.ce=0")),
    "fixed-blend": ("constant 0.5 blend instead of the learned gate", ("model.head.blend=fixed",)),
    "no-geometric": ("no gradient and SSIM loss terms", ("loss.gradient=0", "loss.ssim=0")),
}

COMPARED_METRICS = ("abs_rel", "delta1")
TABLE_METRICS = ("delta1", "abs_rel", "rmse", "silog")
GROUPS = ("moa", "backbone_blocks", "context", "decoder", "heads")


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...] = ()
    description: str = ""


def parse_variant(spec: str) -> Variant:
    """``NAME`` (a built-in variant) or ``NAME=KEY=VALUE[;KEY=VALUE...]`` (overrides separated by ``;``)."""
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ConfigError(f"variant {spec!r}: the name must be non-empty, without spaces or slashes")
    if not sep:
        if name not in BUILTIN_VARIANTS:
            raise ConfigError(
                f"unknown built-in variant {name!r}; choose one of {', '.join(BUILTIN_VARIANTS)} "
                "or give NAME=KEY=VALUE[;KEY=VALUE...]"
            )
        description, overrides = BUILTIN_VARIANTS[name]
        return Variant(name, overrides, description)
    overrides = tuple(part.strip() for part in rest.split(";") if part.strip())
    if not overrides:
        raise ConfigError(f"variant {spec!r} has no overrides after '='")
    for item in overrides:
        key, has_value, _ = item.partition("=")
        if not has_value or not key.strip():
            raise ConfigError(f"variant {name}: override {item!r} is not of the form section.key=value")
    return Variant(name, overrides, "custom")


@dataclass
class VariantResult:
    variant: Variant
    run_dir: Path
    steps: int
    train_seconds: float
    parameters: dict[str, Any]
    evaluation: Any  # EvalResult
    comparison: dict[str, Any] = field(default_factory=dict)  # metric -> PairedComparison vs reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.variant.name,
            "description": self.variant.description,
            "overrides": list(self.variant.overrides),
            "run_dir": str(self.run_dir),
            "steps": self.steps,
            "train_seconds": self.train_seconds,
            "parameters": self.parameters,
            "evaluation": self.evaluation.to_dict(),
            "vs_reference": {
                metric: {
                    "difference": c.difference,
                    "low": c.low,
                    "high": c.high,
                    "confidence": c.confidence,
                    "verdict": c.verdict,
                    "images": c.images,
                }
                for metric, c in self.comparison.items()
            },
        }


@dataclass
class AblationReport:
    results: list[VariantResult]
    base: dict[str, Any]  # preset, config file, shared overrides
    protocol: str
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "command": self.command,
            "protocol": self.protocol,
            "reference": self.results[0].variant.name if self.results else None,
            "variants": [r.to_dict() for r in self.results],
        }

    def markdown(self) -> str:
        """One row per variant: trainable parameters (total and by group), metrics, paired CIs."""
        from moa_depthclip.evaluation.metrics import HIGHER_IS_BETTER, METRIC_LABELS

        def arrow(metric: str) -> str:
            return "↑" if metric in HIGHER_IS_BETTER else "↓"

        reference = self.results[0].variant.name if self.results else ""
        header = ["variant", "trainable", *(f"{g}" for g in GROUPS)]
        header += [f"{METRIC_LABELS[m]} {arrow(m)}" for m in TABLE_METRICS]
        header += [f"Δ{METRIC_LABELS[m]} vs {reference} (95% CI)" for m in COMPARED_METRICS]
        lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
        for result in self.results:
            groups = result.parameters["trainable_by_group"]
            cells = [result.variant.name, f"{result.parameters['trainable_parameters']:,}"]
            cells += [f"{groups.get(g, 0):,}" for g in GROUPS]
            cells += [_number(result.evaluation.mean.get(m, math.nan)) for m in TABLE_METRICS]
            for metric in COMPARED_METRICS:
                comparison = result.comparison.get(metric)
                if result.variant.name == reference:
                    cells.append("reference")
                elif comparison is None:
                    cells.append("–")
                else:
                    cells.append(f"{comparison.describe(digits=4)} {comparison.verdict}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Variants (overrides on top of the base configuration):")
        lines.append("")
        for result in self.results:
            overrides = " ".join(f"`{o}`" for o in result.variant.overrides) or "(none)"
            lines.append(
                f"- **{result.variant.name}**: {result.variant.description}; {overrides}; "
                f"{result.steps} steps ({result.train_seconds:.0f} s in this invocation)"
            )
        lines.append("")
        base = self.base
        base_text = ", ".join(
            part
            for part in (
                f"preset `{base['preset']}`" if base.get("preset") else "",
                f"config `{base['config']}`" if base.get("config") else "",
                "overrides " + " ".join(f"`{o}`" for o in base.get("overrides", []))
                if base.get("overrides")
                else "",
            )
            if part
        )
        lines.append(f"Base configuration: {base_text or 'defaults'}.")
        lines.append(f"Evaluation: {self.protocol}.")
        if self.results:
            first = self.results[0].evaluation
            counts = first.counts
            ground_truth = getattr(first, "ground_truth", None)
            lines.append(
                f"{counts.get('evaluated', 0)} of {counts.get('images', 0)} validation images scored per variant"
                + (f"; ground truth: {ground_truth}" if ground_truth else "")
                + ". Intervals: paired bootstrap over images (difference variant − reference; "
                "'better'/'worse' when the interval excludes 0, else 'level')."
            )
        if self.command:
            lines += ["", f"Command: `{self.command}`"]
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3f}"


def variant_config(
    variant: Variant,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> TrainConfig:
    """The full configuration of one variant: base <- shared overrides <- the variant's overrides."""
    try:
        config = build_config(preset, config_file, [*overrides, *variant.overrides])
    except ConfigError as error:
        raise ConfigError(f"variant {variant.name}: {error}") from error
    check_model_config(config, variant.name)
    return config


def check_model_config(config: TrainConfig, name: str = "") -> None:
    """Build the variant's architecture on the meta device (no memory, no weights): a bad switch
    fails here with a one-line error, before any variant trains."""
    import torch

    from moa_depthclip.model.moa_depthclip import MoADepthCLIP

    try:
        with torch.device("meta"):
            MoADepthCLIP(copy.deepcopy(config.model))
    except ValueError as error:
        raise ConfigError(f"variant {name}: {error}" if name else str(error)) from error


def run_ablation(
    variants: Sequence[Variant],
    out_dir: str | Path,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    protocol: str | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    command: str | None = None,
    input_size: tuple[int, int] | None = None,
) -> AblationReport:
    """Train and evaluate every variant, then write ``ablation.md`` and ``ablation.json`` in ``out_dir``.

    The first variant is the reference of the paired comparisons. ``protocol`` overrides the
    validation protocol of the configuration (``data.val_protocol``) and ``input_size`` the protocol's
    model input size for the final scoring. With ``resume`` a variant whose run folder already exists
    continues from its last checkpoint (a finished one is only re-scored).
    """
    from moa_depthclip.evaluation.protocol import get_protocol
    from moa_depthclip.evaluation.runner import evaluate
    from moa_depthclip.training import distributed
    from moa_depthclip.training.trainer import Trainer

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "the ablation runs in one process, each variant on one device (run.device): "
            "launch it without torchrun"
        )
    if not variants:
        raise ConfigError("give at least one variant (e.g. --variant full --variant no-moa)")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"variant names must be unique, repeated: {', '.join(duplicates)}")
    out = Path(out_dir)
    # Build (and so check) every configuration before training anything.
    configs = [variant_config(v, preset, config_file, overrides) for v in variants]
    protocol_name = protocol or configs[0].data.val_protocol
    for variant, config in zip(variants, configs, strict=True):
        name = protocol or config.data.val_protocol
        try:
            get_protocol(name)
        except ValueError as error:
            raise ConfigError(f"variant {variant.name}: {error}") from error
        if name != protocol_name:
            raise ConfigError(
                f"variant {variant.name} validates with {name!r}, the first with {protocol_name!r}: "
                "an ablation table needs one protocol (set --protocol)"
            )
        run_dir = out / variant.name
        if not resume and holds_run(run_dir):
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue (or re-score) it, or choose another --out"
            )

    results: list[VariantResult] = []
    datasets: tuple[Any, Any] | None = None
    data_key: str | None = None
    for index, (variant, config) in enumerate(zip(variants, configs, strict=True)):
        log(
            f"[{index + 1}/{len(variants)}] {variant.name}: {' '.join(variant.overrides) or 'base configuration'}"
        )
        # Variants with the same data settings share the (deterministic) datasets: built once.
        key = json.dumps(config.to_dict()["data"], sort_keys=True, default=str)
        shared = datasets if key == data_key else None
        run_dir = out / variant.name
        started = time.perf_counter()
        try:
            trainer = Trainer(config, run_dir, resume="auto" if resume else None, log=log, datasets=shared)
            trained = trainer.train()
        finally:
            distributed.teardown()
        seconds = time.perf_counter() - started
        datasets, data_key = (trainer.train_set.base, trainer.val_set), key
        evaluation = evaluate(
            trainer.model,
            trainer.val_set,
            get_protocol(protocol_name),
            device=trainer.device,
            progress=False,
            input_size=input_size,
            model_name=variant.name,
        )
        report = trainer.model.parameter_report()
        results.append(VariantResult(variant, run_dir, trained.steps, seconds, report, evaluation))
        shown = ", ".join(f"{m} {evaluation.mean.get(m, math.nan):.3f}" for m in TABLE_METRICS)
        log(f"{variant.name}: trainable {report['trainable_parameters']:,}; {shown}")

    _compare_with_reference(results, log)
    report = AblationReport(
        results=results,
        base={
            "preset": preset,
            "config": str(config_file) if config_file else None,
            "overrides": list(overrides),
        },
        protocol=results[0].evaluation.protocol,
        command=command,
    )
    write_report(report, out)
    return report


def _compare_with_reference(results: list[VariantResult], log: Callable[[str], None]) -> None:
    """Paired bootstrap of each variant against the first one, on the images both were scored on."""
    from moa_depthclip.evaluation.statistics import compare_rows

    reference = results[0].evaluation.rows
    for result in results[1:]:
        try:
            result.comparison = compare_rows(result.evaluation.rows, reference, COMPARED_METRICS)
        except ValueError as error:  # fewer than 2 shared images: no interval to give
            log(f"{result.variant.name}: no paired comparison ({error})")


def write_report(report: AblationReport, out_dir: str | Path) -> tuple[Path, Path]:
    """``ablation.md`` and ``ablation.json`` (NaN written as null) in ``out_dir``."""
    from moa_depthclip.evaluation.report import _json_safe

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown, data = out / "ablation.md", out / "ablation.json"
    markdown.write_text(report.markdown(), encoding="utf-8")
    data.write_text(
        json.dumps(_json_safe(report.to_dict()), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return markdown, data


__all__ = [
    "BUILTIN_VARIANTS",
    "AblationReport",
    "Variant",
    "VariantResult",
    "parse_variant",
    "run_ablation",
    "variant_config",
    "write_report",
]
