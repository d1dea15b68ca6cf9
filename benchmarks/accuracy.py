"""Accuracy side of the speed changes: does a faster design or runtime cost depth accuracy?

Two paired experiments on the synthetic benchmark (rendered indoor scenes, no download):

* **design**: MoA-DepthCLIP as configured by default (decoder to stride 4, head at stride 4) and
  the faster design (decoder stops at stride 8: ``decoder.stage_channels=[96, 64]``, head at
  stride 8, one bilinear upsampling to the input) are trained with the same seed, data, schedule
  and number of steps (the ``demo`` preset, random-initialised backbone as no CLIP weights are
  reachable here), then scored on the same held-out scenes; per-scene paired bootstrap of the
  difference (``evaluation.statistics``).
* **int8**: the default model so trained, scored again through the int8 backends (``torch-int8``,
  ``onnx-int8``) and float32 ONNX Runtime, against its float32 PyTorch self, scene by scene.

    python -m benchmarks.accuracy --steps 150 --out bench-accuracy
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from benchmarks.common import log

METRICS = ("abs_rel", "delta1", "rmse")
DESIGNS = {
    "stride4 (default)": [],
    "stride8": ["model.decoder.stage_channels=[96,64]"],
}
TINY_DESIGNS = {
    "stride4 (default)": [],
    "stride8": ["model.decoder.stage_channels=[16,8]"],
}


def _train(overrides: list[str], steps: int, tiny: bool, run_dir: Path, datasets: Any) -> Any:
    from moa_depthclip.demo.run import demo_config
    from moa_depthclip.training.trainer import Trainer

    config = demo_config(tiny, "random", overrides + [f"run.max_steps={steps}", "run.progress=false"])
    trainer = Trainer(config, run_dir, log=lambda message: None, datasets=datasets)
    trainer.train()
    return trainer


def run_accuracy(
    steps: int, test_scenes: int, tiny: bool = False, workdir: Path | None = None
) -> dict[str, Any]:
    """Train each design for ``steps`` steps (same seed and data), score all on held-out scenes."""
    from moa_depthclip.data.synthetic import SyntheticScenes
    from moa_depthclip.demo.run import demo_config
    from moa_depthclip.evaluation.runner import evaluate
    from moa_depthclip.evaluation.statistics import compare_rows
    from moa_depthclip.inference.export_onnx import OnnxDepthModel
    from moa_depthclip.inference.quantize import build_onnx, quantize_torch
    from moa_depthclip.training.data import build_datasets
    from moa_depthclip.training.validation import get_protocol

    started = time.perf_counter()
    base = demo_config(tiny, "random", [])
    datasets = build_datasets(base.data)
    height, width = base.data.render_size
    test = SyntheticScenes(test_scenes, height, width, base.data.synthetic_seed, "test")
    protocol = get_protocol("synthetic")
    designs = TINY_DESIGNS if tiny else DESIGNS
    results: dict[str, Any] = {"steps": steps, "test_scenes": test_scenes, "render_size": [height, width]}
    scored: dict[str, Any] = {}
    trained: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        for name, overrides in designs.items():
            log(f"accuracy: training {name} for {steps} steps")
            clock = time.perf_counter()
            trainer = _train(overrides, steps, tiny, Path(folder) / name.split()[0], datasets)
            trained[name] = trainer.model.eval()
            scored[name] = evaluate(trained[name], test, protocol, progress=False, model_name=name)
            log(f"accuracy: {name} trained and scored in {time.perf_counter() - clock:.0f} s")
        default, fast = list(designs)
        results["designs"] = {
            name: {"overrides": designs[name], "mean": scored[name].mean} for name in designs
        }
        results["design_comparison"] = {
            metric: vars(value)
            for metric, value in compare_rows(scored[fast].rows, scored[default].rows, METRICS).items()
        }

        model = trained[default]
        runtimes: dict[str, Any] = {"torch-int8": quantize_torch(model)}
        for backend in ("onnx", "onnx-int8"):
            log(f"accuracy: building the {backend} graph")
            runtimes[backend] = OnnxDepthModel(build_onnx(model, backend, Path(folder) / f"{backend}.onnx"))
        results["int8"] = {"reference": f"{default}, float32 PyTorch", "backends": {}}
        for backend, runtime in runtimes.items():
            result = evaluate(runtime, test, protocol, progress=False, model_name=backend)
            comparison = compare_rows(result.rows, scored[default].rows, METRICS)
            results["int8"]["backends"][backend] = {
                "mean": result.mean,
                "vs_float32": {metric: vars(value) for metric, value in comparison.items()},
            }
    results["reference_mean"] = scored[default].mean
    results["wall_seconds"] = time.perf_counter() - started
    return results


def to_markdown(section: dict[str, Any]) -> list[str]:
    lines = [
        "## Accuracy of the faster design and of the int8 runtimes (synthetic benchmark)",
        "",
        f"Trained {section['steps']} steps each (demo preset, random-initialised backbone, same seed and data), "
        f"scored on {section['test_scenes']} held-out scenes at {section['render_size'][0]}x{section['render_size'][1]}. "
        "Differences are per-scene paired means with a 95% bootstrap interval.",
        "",
        "| design / backend | AbsRel | δ1 | RMSE |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in section["designs"].items():
        mean = values["mean"]
        lines.append(f"| {name} | {mean['abs_rel']:.4f} | {mean['delta1']:.4f} | {mean['rmse']:.4f} |")
    for name, values in section["int8"]["backends"].items():
        mean = values["mean"]
        lines.append(
            f"| default model via {name} | {mean['abs_rel']:.4f} | {mean['delta1']:.4f} | {mean['rmse']:.4f} |"
        )
    lines += [
        "",
        "| comparison | metric | difference (95% interval) | verdict |",
        "| --- | --- | --- | --- |",
    ]
    rows = [("stride8 - stride4", section["design_comparison"])]
    rows += [
        (f"{name} - float32", values["vs_float32"]) for name, values in section["int8"]["backends"].items()
    ]
    for label, comparison in rows:
        for metric, value in comparison.items():
            lines.append(
                f"| {label} | {metric} | {value['difference']:+.4f} ({value['low']:+.4f}, {value['high']:+.4f}) | "
                f"{value['verdict']} |"
            )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--test-scenes", type=int, default=48)
    parser.add_argument("--tiny", action="store_true", help="toy model and data (tests)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, required=True, help="folder for accuracy.json / accuracy.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_accuracy(args.steps, args.test_scenes, args.tiny)
    results["command"] = "python -m benchmarks.accuracy " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = "\n".join(to_markdown(results))
    (args.out / "accuracy.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    return results


if __name__ == "__main__":
    main()
