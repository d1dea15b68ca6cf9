"""Run every benchmark and write ``results.json`` and ``results.md`` (see docs/benchmarks.md).

    python benchmarks/run_all.py --out benchmarks/results            # ~10 min on a 2-core CPU
    python benchmarks/run_all.py --out bench-quick --quick          # smoke run, 1-2 minutes
    python benchmarks/run_all.py --out results-gpu --device cuda [--compile]   # bf16 autocast

Every speed figure is paired with a baseline measured interleaved in the same run (the bare
``CLIPVisionModel`` tower, PyTorch eager, or full fine-tuning), so the ratios stay meaningful on a
busy machine even when the absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# OpenMP threads that spin while waiting collapse when another process shares the cores (a 2-core
# machine with anything else running becomes ~10x slower, and the small ops of the adapters and
# decoder suffer most, which skews every ratio). Sleeping waiters cost a little on an idle machine
# and keep figures sane on a busy one. Set before torch loads OpenMP; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks.common import BenchmarkError, ModelSpec, Runtime, environment, log, parse_size, tiny_spec
from benchmarks.data_loading import compare_with_training, run_data_loading
from benchmarks.data_loading import to_markdown as data_markdown
from benchmarks.depthclip_speed import run_depthclip
from benchmarks.inference import TARGET_RATIO, run_inference, scaling
from benchmarks.onnx_runtime import TARGET_SPEEDUP, run_onnx
from benchmarks.peers import PEERS, plot_speed_accuracy, run_peers
from benchmarks.peers import to_markdown as peers_markdown
from benchmarks.training_step import run_training

SECTIONS = ("peers", "inference", "onnx", "training", "data", "depthclip")
Size = tuple[int, int]


@dataclass
class Plan:
    """What each section measures. ``default``/``quick``/``tiny`` are the three presets."""

    inference_sizes: list[Size] = field(default_factory=lambda: [(224, 224), (416, 544), (480, 640)])
    inference_batches: list[int] = field(default_factory=lambda: [1, 4, 8])
    onnx_sizes: list[Size] = field(default_factory=lambda: [(224, 224), (416, 544), (480, 640)])
    onnx_batches: list[int] = field(default_factory=lambda: [1])
    training_sizes: list[Size] = field(default_factory=lambda: [(224, 224), (416, 544)])
    training_batch: int = 4
    depthclip_sizes: list[Size] = field(default_factory=lambda: [(224, 224), (416, 544)])
    depthclip_batches: list[int] = field(default_factory=lambda: [1])
    peers_models: list[str] = field(default_factory=lambda: list(PEERS))
    peers_sizes: list[Size] = field(default_factory=lambda: [(416, 544), (224, 224)])
    peers_batches: list[int] = field(default_factory=lambda: [1, 4, 8])
    data_frames: int = 16
    data_size: Size = (480, 640)
    data_render_sizes: list[Size] = field(default_factory=lambda: [(240, 320), (480, 640)])
    warmup: int = 1
    repeats: int = 3
    memory: bool = True

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            inference_sizes=[(224, 224), (416, 544)],
            inference_batches=[1],
            onnx_sizes=[(224, 224)],
            training_sizes=[(224, 224)],
            training_batch=2,
            depthclip_sizes=[(224, 224)],
            peers_batches=[1],
            repeats=2,
        )

    @classmethod
    def tiny(cls) -> Plan:
        """Toy shapes for the test suite: every code path, no meaningful figure."""
        sizes = [(64, 64), (64, 96)]
        return cls(
            inference_sizes=sizes,
            inference_batches=[1, 2],
            onnx_sizes=sizes[:1],
            training_sizes=sizes[:1],
            training_batch=2,
            depthclip_sizes=sizes[:1],
            peers_models=["moa_depthclip", "clip_vision", "glpn"],
            peers_sizes=[(64, 96)],
            peers_batches=[1, 2],
            data_frames=2,
            data_size=(64, 96),
            data_render_sizes=[(32, 48)],
            repeats=1,
            warmup=0,
        )


def run(
    plan: Plan,
    spec: ModelSpec,
    runtime: Runtime,
    sections: tuple[str, ...],
    workdir: Path,
    tiny: bool = False,
) -> dict:
    """Run the chosen sections; returns the full results document (environment included)."""
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(runtime), "plan": _plan_dict(plan)}
    warmup = max(plan.warmup, 1) if runtime.compile else plan.warmup  # compilation is never timed
    if "peers" in sections:
        results["peers"] = run_peers(
            runtime,
            plan.peers_models,
            plan.peers_sizes,
            plan.peers_batches,
            max(warmup, 1),
            plan.repeats,
            tiny=tiny,
            memory=plan.memory,
        )
    if "inference" in sections:
        records = run_inference(
            spec, runtime, plan.inference_sizes, plan.inference_batches, warmup, plan.repeats
        )
        results["inference"] = records
        results["scaling"] = scaling(records)
    if "onnx" in sections:
        results["onnx"] = run_onnx(
            spec, runtime, plan.onnx_sizes, plan.onnx_batches, warmup, plan.repeats, workdir
        )
    if "training" in sections:
        results["training"] = run_training(
            spec, runtime, plan.training_sizes, plan.training_batch, warmup, plan.repeats, plan.memory
        )
    if "data" in sections:
        crop = (plan.data_size[0] * 13 // 15, plan.data_size[1] * 17 // 20)  # 416x544 of 480x640
        results["data"] = run_data_loading(
            plan.data_frames, plan.repeats, plan.data_size, tuple(plan.data_render_sizes), crop, workdir
        )
        compare_with_training(results["data"], results.get("training"))
    if "depthclip" in sections:
        results["depthclip"] = run_depthclip(
            spec, runtime, plan.depthclip_sizes, plan.depthclip_batches, warmup, plan.repeats
        )
    results["targets"] = targets(results)
    results["wall_seconds"] = time.perf_counter() - started
    return results


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, judged on the worst median ratio of each section."""
    summary: dict[str, Any] = {}
    if results.get("inference"):
        for key, field_name in (
            ("moa_vs_clip_vision_throughput", "throughput_ratio"),
            ("moa_stride8_vs_clip_vision_throughput", "throughput_ratio_stride8"),
        ):
            worst = min(r[field_name]["median"] for r in results["inference"])
            summary[key] = {"target": TARGET_RATIO, "worst_median": worst, "met": worst >= TARGET_RATIO}
    onnx = results.get("onnx", {}).get("records")
    if onnx:
        worst = min(r["speedup"]["onnxruntime"]["median"] for r in onnx)
        summary["onnxruntime_vs_torch"] = {
            "target": TARGET_SPEEDUP,
            "worst_median": worst,
            "met": worst >= TARGET_SPEEDUP,
        }
    return summary


def _plan_dict(plan: Plan) -> dict[str, Any]:
    return {key: value for key, value in vars(plan).items()}


# -------------------------------------------------------------------------------------------------
# markdown


def _size(record: dict[str, Any]) -> str:
    return "x".join(str(v) for v in record["size"])


def _ms(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    return f"{latency['median']:.1f} ({latency['min']:.1f})"


def _ratio(ratio: dict[str, float]) -> str:
    return f"{ratio['median']:.3f} ({ratio['min']:.3f})"


def to_markdown(results: dict[str, Any], command: str = "") -> str:
    """The human-readable report: environment, then one table per section."""
    env = results["environment"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items() if version)
    lines = ["# MoA-DepthCLIP benchmarks", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    device = env.get("gpu") or env["cpu"]
    lines += [
        f"- device: {env['device']} ({device}), {env['cpu_count']} logical CPUs, "
        f"{env['threads']} torch threads; dtype {env['dtype']}"
        + (" (autocast)" if env["dtype"] != "float32" else "")
        + (", torch.compile" if env["compile"] else ""),
        f"- versions: {versions}",
        f"- {results['plan']['warmup']} warm-up round(s) excluded, {results['plan']['repeats']} timed round(s); "
        "latency is median (min) ms per batch; ratios are the median of round-by-round ratios "
        "(ratio of the minima).",
        f"- OpenMP wait policy {env.get('omp_wait_policy') or 'library default'}; ONNX Runtime "
        f"spin-waiting {'on' if env.get('onnxruntime_spinning') else 'off'}",
        f"- total wall time {results.get('wall_seconds', 0):.0f} s",
        "",
    ]
    if results.get("targets"):
        lines += ["## Targets", "", "| target | required | worst median | met |", "| --- | --- | --- | --- |"]
        names = {
            "moa_vs_clip_vision_throughput": "MoA-DepthCLIP throughput / bare CLIPVisionModel",
            "moa_stride8_vs_clip_vision_throughput": "MoA-DepthCLIP stride-8 design / bare CLIPVisionModel",
            "onnxruntime_vs_torch": "ONNX Runtime float32 throughput / PyTorch",
        }
        for key, value in results["targets"].items():
            lines.append(
                f"| {names[key]} | >= {value['target']:.2f} | {value['worst_median']:.3f} | "
                f"{'yes' if value['met'] else 'no'} |"
            )
        lines.append("")
    if results.get("peers"):
        lines += peers_markdown(results["peers"])
    if results.get("inference"):
        lines += [
            "## Inference: MoA-DepthCLIP vs bare CLIPVisionModel",
            "",
            "`stride 8` is the faster design (decoder and head stop at stride 8), timed in the same rounds.",
            "",
            "| input | batch | tokens | CLIPVisionModel ms | MoA-DepthCLIP ms | MoA img/s | throughput ratio | "
            "stride 8 ms | stride 8 ratio |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["inference"]:
            lines.append(
                f"| {_size(r)} | {r['batch']} | {r['tokens']} | {_ms(r['clip_vision'])} | "
                f"{_ms(r['moa_depthclip'])} | {r['moa_depthclip']['throughput']['median']:.2f} | "
                f"{_ratio(r['throughput_ratio'])} | {_ms(r['moa_depthclip_stride8'])} | "
                f"{_ratio(r['throughput_ratio_stride8'])} |"
            )
        lines.append("")
    if results.get("scaling"):
        lines += [
            "## Scaling with tokens and batch (median ms per image; cost relative to the smallest setting)",
            "",
            "| input | batch | tokens | CLIPVisionModel ms/img | rel. | µs/token | MoA-DepthCLIP ms/img | rel. | µs/token |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["scaling"]:
            cells = []
            for model in ("clip_vision", "moa_depthclip"):
                v = r[model]
                cells += [f"{v['ms_per_image']:.1f}", f"{v['relative_cost']:.2f}", f"{v['us_per_token']:.0f}"]
            lines.append(f"| {_size(r)} | {r['batch']} | {r['tokens']} | " + " | ".join(cells) + " |")
        lines.append("")
    onnx = results.get("onnx")
    if onnx:
        lines += ["## PyTorch vs ONNX Runtime and the int8 runtimes (CPU)", ""]
        if onnx.get("skipped"):
            lines += [f"Skipped: {onnx['skipped']}", ""]
        else:
            options = onnx["onnxruntime_options"]
            graphs = "; ".join(
                f"{g['backend']} {g['mb']:.0f} MiB (built in {g['build_seconds']:.0f} s)"
                for g in onnx["graphs"].values()
            )
            lines += [
                f"Graphs (dynamic batch/H/W): {graphs}. ONNX Runtime {options['graph_optimization_level']}, "
                f"{options['intra_op_num_threads']} intra-op threads. Speed-up = throughput / PyTorch eager's "
                "in the same rounds; max abs diff = float32 graph vs PyTorch (random weights; the int8 "
                "accuracy change on trained weights is in the accuracy section).",
                "",
                "| input | batch | PyTorch ms | ORT ms | ORT int8 ms | torch int8 ms | "
                "speed-up ORT | ORT int8 | torch int8 | max abs diff ORT (m) |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            names = ("onnxruntime", "onnxruntime_int8", "torch_int8")
            for r in onnx["records"]:
                errors = r["max_abs_error_m"]
                lines.append(
                    f"| {_size(r)} | {r['batch']} | {_ms(r['torch'])} | "
                    + " | ".join(_ms(r[n]) for n in names)
                    + " | "
                    + " | ".join(_ratio(r["speedup"][n]) for n in names)
                    + f" | {errors['onnxruntime']:.1e} |"
                )
            lines.append("")
    if results.get("training"):
        lines += [
            "## Training step: MoA-DepthCLIP trainable set vs full fine-tuning",
            "",
            "Forward + L1 loss + backward + AdamW step, same model and batch; peak memory of the step "
            "measured in a fresh process per configuration.",
            "",
            "| input | batch | trainable (MoA / full) | MoA ms | full ms | speed-up | MoA peak MiB | full peak MiB | memory saved |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["training"]:
            moa, full = r["moa"], r["full"]
            memory = "| – | – | – |"
            if "memory" in moa:
                saving = r.get("memory_saving")
                memory = (
                    f"| {moa['memory']['step_peak_mib']:.0f} | {full['memory']['step_peak_mib']:.0f} | "
                    f"{'–' if saving is None else f'{100 * saving:.0f}%'} |"
                )
            lines.append(
                f"| {_size(r)} | {r['batch']} | {moa['trainable_parameters'] / 1e6:.1f}M / "
                f"{full['trainable_parameters'] / 1e6:.1f}M | {_ms(moa)} | {_ms(full)} | "
                f"{_ratio(r['speedup_vs_full'])} " + memory
            )
        lines.append("")
    if results.get("data"):
        lines += data_markdown(results["data"])
    if results.get("depthclip"):
        lines += [
            "## DepthCLIP zero-shot (random weights, no flip)",
            "",
            "| input | batch | CLIPVisionModel ms | DepthCLIP ViT-B/32 ms | ratio | DepthCLIP RN50 ms | ratio |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["depthclip"]:
            vit, rn = r["depthclip_vit"], r["depthclip_rn50"]
            lines.append(
                f"| {_size(r)} | {r['batch']} | {_ms(r['clip_vision'])} | {_ms(vit)} | "
                f"{_ratio(vit['throughput_ratio_vs_clip_vision'])} | {_ms(rn)} | "
                f"{_ratio(rn['throughput_ratio_vs_clip_vision'])} |"
            )
        lines.append("")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder")
    parser.add_argument("--quick", action="store_true", help="smoke run (1-2 minutes on 2 CPU cores)")
    parser.add_argument("--tiny", action="store_true", help="toy model shapes: tests the scripts only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), help="default: float32 on CPU, bf16 autocast on CUDA"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile every PyTorch model (both sides)"
    )
    parser.add_argument("--threads", type=int, help="torch (and ONNX Runtime) intra-op threads")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--repeats", type=int, help="timed rounds per setting")
    parser.add_argument("--warmup", type=int, help="untimed rounds per setting")
    parser.add_argument("--sizes", nargs="+", type=parse_size, help="override every section's sizes")
    parser.add_argument("--batches", nargs="+", type=int, help="override the inference batch sizes")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), help="models of the peers section")
    parser.add_argument("--peer-batches", nargs="+", type=int, help="batch sizes of the peers section")
    parser.add_argument(
        "--figure", type=Path, help="also write the speed-accuracy figure here (default: only into --out)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    plan = Plan.tiny() if args.tiny else Plan.quick() if args.quick else Plan()
    if args.repeats is not None:
        plan.repeats = args.repeats
    if args.warmup is not None:
        plan.warmup = args.warmup
    if args.sizes:
        plan.inference_sizes = plan.onnx_sizes = plan.training_sizes = plan.depthclip_sizes = args.sizes
        plan.peers_sizes = args.sizes
    if args.batches:
        plan.inference_batches = args.batches
    plan.memory = plan.memory and not args.no_memory
    if args.peers:
        plan.peers_models = args.peers
    if args.peer_batches:
        plan.peers_batches = args.peer_batches
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    try:
        threads = {"threads": args.threads} if args.threads is not None else {}
        runtime = Runtime(device=args.device, dtype=dtype, compile=args.compile, **threads)
    except BenchmarkError as error:
        raise SystemExit(f"error: {error}") from error
    spec = tiny_spec() if args.tiny else ModelSpec()
    sections = tuple(args.only) if args.only else SECTIONS
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(plan, spec, runtime, sections, args.out, tiny=args.tiny)
    command = "python benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results["command"] = command.strip()
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = to_markdown(results, results["command"])
    (args.out / "results.md").write_text(markdown + "\n", encoding="utf-8")
    if results.get("peers"):
        for path in filter(None, [args.out / "speed_accuracy.png", args.figure]):
            if plot_speed_accuracy(results["peers"], path, size=plan.peers_sizes[0]):
                log(f"wrote {path}")
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    print(markdown)
    return results


if __name__ == "__main__":
    main()
