"""The one-command demo: synthetic scenes -> train MoA-DepthCLIP on a CPU -> evaluate on held-out
scenes against two floors (a constant depth, the layout prior) -> a report a person can open.

It needs no download. CLIP weights are used when they are on the machine (``--clip SOURCE`` or the
Hugging Face cache); otherwise the backbone starts from random weights, which the console and the
report say plainly. The training length is a number of optimizer steps: given (``steps``), or set
from a wall-clock budget (``minutes``) by one timed forward/backward pass, so that the schedule
(warm-up, cosine decay) spans the whole run either way.

Everything here is orchestration: the Trainer trains (seeding, threads, model building), the
evaluation runner scores every model, ``evaluation.statistics`` compares them, ``demo.report``
writes the page.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.data import Dataset

from moa_depthclip.config import DEFAULT_CLIP
from moa_depthclip.evaluation.runner import EvalResult
from moa_depthclip.evaluation.statistics import DepthCorrelations, PairedComparison
from moa_depthclip.training.checkpoint import prepare_run_dir
from moa_depthclip.training.config import TrainConfig, build_config, load_yaml, preset_path
from moa_depthclip.training.trainer import Trainer

# Share of a wall-clock budget given to optimizer steps; the rest is start-up, rendering the
# scenes, evaluation, saving and the report.
TRAIN_SHARE = 0.75
TEST_SCENES = 128
# AdamW, clipping and augmentation add to a timed forward + backward (measured ~1.1-1.3x).
STEP_OVERHEAD = 1.2
COMPARED_METRICS = ("abs_rel", "delta1")


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    results: list[EvalResult]  # the model, the constant floor, the layout prior
    comparisons: dict[str, dict[str, PairedComparison]]  # floor name -> metric -> model vs floor
    correlations: dict[str, DepthCorrelations]  # model name -> scale / structure correlations
    weights: str  # "random" or the CLIP source the backbone started from
    seconds: float
    steps: int

    @property
    def random_init(self) -> bool:
        return self.weights == "random"

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Model name -> mean metrics on the held-out scenes."""
        return {result.model_name: result.mean for result in self.results}


def find_local_clip(explicit: str | None = None) -> str | None:
    """A CLIP source usable without network: ``explicit`` if given, else the default hub id when its
    weights are in the local Hugging Face cache, else None (the demo then uses random weights)."""
    if explicit:
        return explicit
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    config = try_to_load_from_cache(DEFAULT_CLIP, "config.json")
    if not isinstance(config, str):
        return None
    for weights in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(DEFAULT_CLIP, weights), str):
            return DEFAULT_CLIP
    return None


def demo_config(quick: bool, weights: str, overrides: list[str]) -> TrainConfig:
    """The ``demo`` preset (``quick``: the tiny model and a toy data size, seconds, for tests) with the
    backbone source decided before anything is built. Random blocks hold nothing worth protecting,
    so without pretrained weights they train at the new modules' rate. ``overrides`` win."""
    demo = load_yaml(preset_path("demo"))
    choices = []
    if quick:
        tiny_model = load_yaml(preset_path("tiny"))["model"]
        if weights != "random":  # the tiny architecture belongs to the random backbone only
            tiny_model["backbone"].pop("clip_config", None)
        choices += [
            "model=" + yaml.safe_dump(tiny_model, default_flow_style=True, width=10**6).strip(),
            "data.train_scenes=24",
            "data.val_scenes=4",
            "data.render_size=[64,96]",
            "data.batch_size=4",
            "run.max_steps=6",
            "run.threads=1",
        ]
    choices.append(f"model.backbone.source={weights}")
    if weights == "random":
        choices.append(f"optim.backbone_lr={demo['optim']['lr']}")
    return build_config("demo", overrides=choices + list(overrides))


def run_demo(
    out_dir: str | Path,
    minutes: float | None = 4.0,
    steps: int | None = None,
    quick: bool = False,
    clip: str | None = None,
    overrides: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Train, evaluate, compare and write ``out_dir/report.md``.

    ``steps`` fixes the number of optimizer steps (reproducible on any machine); otherwise
    ``minutes`` sets it from a timed step (None: the preset's ``run.max_steps``). ``quick`` runs the
    tiny model on toy data in seconds; ``clip`` names CLIP weights (honoured in quick mode too).
    """
    from moa_depthclip.demo.report import write_report
    from moa_depthclip.training.data import build_datasets

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = clip if quick else find_local_clip(clip)
    weights = source or "random"
    if source is not None:
        log(f"CLIP weights: {source} (pretrained; the backbone starts from them)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network in the demo
    else:
        log(
            "CLIP weights: none found locally (no --clip, nothing in the Hugging Face cache) -> the "
            "backbone starts from RANDOM weights, which every output states. With pretrained CLIP "
            "(--clip DIR) the method starts where it is meant to."
        )
    config = demo_config(quick, weights, list(overrides or []))
    if steps is not None:
        config.run.max_steps = int(steps)

    log(f"rendering {config.data.train_scenes} training and {config.data.val_scenes} validation scenes ...")
    datasets = build_datasets(config.data)
    for dataset in datasets:
        for index in range(len(dataset)):
            dataset[index]  # fills the in-memory cache

    # The demo owns DIR/run: a rerun replaces the previous run instead of mixing with its checkpoints.
    prepare_run_dir(out_dir / "run", resume=None, overwrite=True)
    trainer = Trainer(config, out_dir / "run", log=log, datasets=datasets)
    time_limit = None
    if steps is None and minutes is not None and not quick:
        seconds_per_step = time_one_step(trainer)
        budget = minutes * 60 * TRAIN_SHARE - (time.perf_counter() - started)
        planned = max(10, min(config.run.max_steps, int(budget / seconds_per_step)))
        log(f"one optimizer step takes ~{seconds_per_step:.1f} s here: training for {planned} steps")
        if planned != config.run.max_steps:
            # A new Trainer on the same model, so that the learning-rate schedule spans these steps.
            config.run.max_steps = planned
            trainer = Trainer(config, out_dir / "run", model=trainer.model, log=log, datasets=datasets)
        time_limit = max(30.0, minutes * 60 * 0.8 - (time.perf_counter() - started))
    result = trainer.train(time_limit_s=time_limit)

    test_count = 8 if quick else TEST_SCENES
    log(f"evaluating on {test_count} held-out test scenes (never seen in training) ...")
    results, comparisons, correlations, test = evaluate_against_floors(trainer, config, test_count)
    seconds = time.perf_counter() - started
    report = write_report(
        out_dir, config, result, weights, results, comparisons, correlations, test, trainer.model, seconds
    )
    return DemoResult(out_dir, report, results, comparisons, correlations, weights, seconds, result.steps)


def time_one_step(trainer: Trainer) -> float:
    """Seconds of one optimizer step on this machine: a timed forward + backward of one training
    batch (no update; buffers such as normalisation statistics are put back afterwards)."""
    config, model = trainer.config, trainer.model
    base = trainer.train_set.base
    batch = [base[i] for i in range(min(config.data.batch_size, len(base)))]
    images = torch.stack([s["image"] for s in batch])
    depth = torch.stack([s["depth"] for s in batch])
    buffers = {name: value.clone() for name, value in model.named_buffers()}
    model.train()
    timings = []
    for _ in range(2):  # the first pass pays one-off allocation costs
        start = time.perf_counter()
        total, _ = trainer.loss(model(images), depth)
        total.backward()
        timings.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, value in model.named_buffers():
            value.copy_(buffers[name])
    return timings[-1] * STEP_OVERHEAD * config.optim.accumulation_steps


def evaluate_against_floors(
    trainer: Trainer, config: TrainConfig, test_count: int
) -> tuple[list[EvalResult], dict[str, dict[str, PairedComparison]], dict[str, DepthCorrelations], Dataset]:
    """The model, the constant and the layout prior through the one evaluation loop; the model
    compared with each floor per scene; scale/structure correlations of the model and the prior."""
    from moa_depthclip.baselines.constant import ConstantDepth
    from moa_depthclip.baselines.layout_prior import LayoutPriorDepth, mean_depth_map
    from moa_depthclip.data.statistics import median_valid_depth
    from moa_depthclip.data.synthetic import SyntheticScenes
    from moa_depthclip.evaluation.runner import evaluate
    from moa_depthclip.evaluation.statistics import CorrelationCollector, compare_rows
    from moa_depthclip.training.validation import get_protocol

    height, width = config.data.render_size
    test = SyntheticScenes(test_count, height, width, config.data.synthetic_seed, "test")
    protocol = get_protocol("synthetic")
    train = trainer.train_set.base
    median = median_valid_depth(train)
    model = trainer.model.eval()
    name = "MoA-DepthCLIP (random-init backbone)" if model.is_random_init else "MoA-DepthCLIP"
    floors = [
        (ConstantDepth(median), f"constant {median:.2f} m (median training depth)"),
        (LayoutPriorDepth(mean_depth_map(train)), "layout prior (mean training depth at each pixel)"),
    ]
    results, correlations = [], {}
    for candidate, label in [(model, name), *floors]:
        collector = CorrelationCollector()
        results.append(
            evaluate(candidate, test, protocol, progress=False, model_name=label, observe=collector)
        )
        correlations[label] = collector.result()
    comparisons = {
        floor.model_name: compare_rows(results[0].rows, floor.rows, COMPARED_METRICS) for floor in results[1:]
    }
    return results, comparisons, correlations, test


__all__ = ["DemoResult", "demo_config", "find_local_clip", "run_demo"]
