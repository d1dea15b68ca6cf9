"""MoA-DepthCLIP against the depth models people would pick instead: speed, memory, published accuracy.

Every model is built from transformers' configuration classes with its published hyper-parameters
and random weights (the cost of a forward does not depend on the weights, and nothing is
downloaded). Each model lives in **its own worker process** (``python -m benchmarks.peers --worker
NAME``), so that its peak memory is its own and no allocator state is shared; the driver asks the
workers for one timed forward at a time, round by round, in an order that alternates between
rounds, so every model's figure is paired with MoA-DepthCLIP's in the same round. Workers wait
blocked on a pipe while another one runs (OpenMP waiters sleep with ``OMP_WAIT_POLICY=PASSIVE``),
so they do not compete for the cores.

Inputs: each model at the NYU evaluation input (416x544, the crop DepthCLIP and this project
evaluate at) rounded to the nearest size its patch grid allows (420x546 for the patch-14 DINOv2
models), and at 224x224.

Published NYU Depth V2 accuracy is quoted beside each model with its source; ``None`` where the
model's paper reports no NYU fine-tuned figure for that size (shown as "–").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

from benchmarks.common import (
    BenchmarkError,
    ModelSpec,
    Runtime,
    inference_context,
    log,
    random_images,
    summarise,
    tiny_spec,
)
from benchmarks.memory import rss_peak_probe

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "moa_depthclip"
NYU_INPUT = (416, 544)


@dataclass(frozen=True)
class Published:
    """Accuracy on NYU Depth V2 as published (Eigen test split, 654 images)."""

    delta1: float | None
    abs_rel: float | None
    rmse: float | None
    source: str


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    configuration: str  # what was built, in words
    multiple: int  # input height and width must be multiples of this
    max_batch: int  # largest batch benchmarked (big models: 1, to keep a CPU run short)
    published: Published | None
    ours: bool = False
    # transformers' DPT reshapes its tokens to a square grid: run it at the square input with
    # about the same number of pixels.
    square: bool = False


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer(
            "moa_depthclip",
            "MoA-DepthCLIP (ours)",
            "ModelConfig(): CLIP ViT-B/32, MoA after blocks 2/5/8/11, progressive decoder, 128-bin hybrid head",
            32,
            8,
            Published(0.745, None, 0.520, "MoA-DepthCLIP paper, arXiv:2604.01118 (AbsRel not reported)"),
            ours=True,
        ),
        Peer(
            "clip_vision",
            "CLIP ViT-B/32 tower (bare)",
            "transformers CLIPVisionModel(CLIPVisionConfig()), SDPA attention; not a depth model",
            32,
            8,
            None,
        ),
        Peer(
            "depthclip_vit",
            "DepthCLIP ViT-B/32 (zero-shot)",
            "DepthCLIP on CLIP ViT-B/32, no flip averaging",
            32,
            8,
            Published(None, None, None, "no published NYU figure for the ViT-B/32 variant"),
        ),
        Peer(
            "depthclip_rn50",
            "DepthCLIP RN50 (zero-shot)",
            "DepthCLIP on CLIP ResNet-50 (ModifiedResNet), no flip averaging",
            32,
            8,
            Published(0.394, 0.388, 1.167, "DepthCLIP paper (Zhang et al., ACM MM 2022), Table 1"),
        ),
        Peer(
            "depth_anything_v2_small",
            "Depth Anything V2 Small",
            "DepthAnythingConfig: DINOv2-S/14 (384 wide, 12 layers, 6 heads), DPT neck 48/96/192/384, "
            "fusion 64, metric head (max depth 20 m, the indoor/Hypersim release)",
            14,
            8,
            Published(
                None, None, None, "Depth Anything V2 (NeurIPS 2024): no NYU fine-tuned figure for ViT-S"
            ),
        ),
        Peer(
            "depth_anything_v2_base",
            "Depth Anything V2 Base",
            "DepthAnythingConfig: DINOv2-B/14 (768 wide, 12 layers, 12 heads), DPT neck 96/192/384/768, "
            "fusion 128, metric head (max depth 20 m)",
            14,
            1,
            Published(
                None, None, None, "Depth Anything V2 (NeurIPS 2024): no NYU fine-tuned figure for ViT-B"
            ),
        ),
        Peer(
            "zoedepth",
            "ZoeDepth (ZoeD-N)",
            "ZoeDepthConfig() (transformers' default = the NYU release): BEiT-L/16 384 backbone, "
            "DPT neck, one metric-bins head (64 bins, 1e-3..10 m)",
            16,
            1,
            Published(0.955, 0.075, 0.270, "ZoeDepth (Bhat et al., arXiv:2302.12288), Table 1, ZoeD-M12-N"),
        ),
        Peer(
            "dpt_hybrid",
            "DPT-Hybrid",
            "DPTConfig(is_hybrid=True): BiT-R50 stem + ViT-B/16 (12 layers), neck 256/512/768/768, "
            "fusion 256, readout 'project'",
            32,
            1,
            Published(
                0.904, 0.110, 0.357, "DPT (Ranftl et al., ICCV 2021), Table 4, DPT-Hybrid fine-tuned on NYUv2"
            ),
            square=True,
        ),
        Peer(
            "glpn",
            "GLPN",
            "GLPNConfig as the NYU release: MiT-b4 encoder (depths 3/8/27/3, widths 64/128/320/512), "
            "decoder 64, max depth 10 m",
            32,
            1,
            Published(0.915, 0.098, 0.344, "GLPN (Kim et al., arXiv:2201.07436), Table 1"),
        ),
    ]
}


def model_size(peer: Peer, size: tuple[int, int]) -> tuple[int, int]:
    """The input nearest to ``size`` that the model's patch grid allows (e.g. 416x544 -> 420x546 for /14;
    a square model gets the square side with about as many pixels: 416x544 -> 480x480 for /32)."""
    if peer.square:
        side = (size[0] * size[1]) ** 0.5
        size = (round(side), round(side))
    return tuple(max(peer.multiple, round(v / peer.multiple) * peer.multiple) for v in size)  # type: ignore[return-value]


# -------------------------------------------------------------------------------------------------
# building the models (transformers configuration classes, random weights)


def build_peer(name: str, tiny: bool = False) -> tuple[nn.Module, Callable[[nn.Module, torch.Tensor], Any]]:
    """The model and how to call it on a (B, 3, H, W) batch. ``tiny``: toy widths, same code paths."""
    import transformers as hf

    spec = tiny_spec() if tiny else ModelSpec()
    pixel_call = lambda model, images: model(pixel_values=images)  # noqa: E731
    if name == "moa_depthclip":
        return spec.build_moa(), lambda model, images: model(images)
    if name == "clip_vision":
        return spec.build_bare(), lambda model, images: model(
            pixel_values=images, interpolate_pos_encoding=True
        )
    if name in ("depthclip_vit", "depthclip_rn50"):
        from benchmarks.depthclip_speed import build_depthclip

        return build_depthclip(spec)[name], lambda model, images: model(images)
    if name.startswith("depth_anything_v2"):
        small = name.endswith("small")
        width, heads, neck, fusion = (
            (384, 6, [48, 96, 192, 384], 64) if small else (768, 12, [96, 192, 384, 768], 128)
        )
        layers = 12
        if tiny:
            width, heads, neck, fusion, layers = 32, 2, [8, 16, 32, 32], 16, 4
        backbone = hf.Dinov2Config(
            hidden_size=width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            image_size=518,
            patch_size=14,
            out_indices=[layers // 4, layers // 2, 3 * layers // 4, layers],
            reshape_hidden_states=False,
        )
        config = hf.DepthAnythingConfig(
            backbone_config=backbone,
            patch_size=14,
            reassemble_hidden_size=width,
            neck_hidden_sizes=neck,
            fusion_hidden_size=fusion,
            depth_estimation_type="metric",
            max_depth=20,
        )
        return hf.DepthAnythingForDepthEstimation(config), pixel_call
    if name == "zoedepth":
        config = hf.ZoeDepthConfig()
        if tiny:
            config = hf.ZoeDepthConfig(
                backbone_config=hf.BeitConfig(
                    hidden_size=32,
                    num_hidden_layers=4,
                    num_attention_heads=2,
                    intermediate_size=64,
                    image_size=64,
                    out_indices=[1, 2, 3, 4],
                    use_relative_position_bias=True,
                    reshape_hidden_states=False,
                ),
                neck_hidden_sizes=[8, 16, 32, 32],
                fusion_hidden_size=16,
                bottleneck_features=16,
                bin_embedding_dim=16,
                patch_transformer_hidden_size=16,
                patch_transformer_intermediate_size=32,
                patch_transformer_num_attention_heads=2,
            )
        return hf.ZoeDepthForDepthEstimation(config), pixel_call
    if name == "dpt_hybrid":
        kwargs: dict[str, Any] = dict(
            is_hybrid=True,
            neck_hidden_sizes=[256, 512, 768, 768],
            fusion_hidden_size=256,
            reassemble_factors=[1, 1, 1, 0.5],
            readout_type="project",
            backbone_featmap_shape=[1, 1024, 24, 24],
            neck_ignore_stages=[0, 1],
        )
        if tiny:
            kwargs.update(
                hidden_size=32,
                num_hidden_layers=4,
                num_attention_heads=2,
                intermediate_size=64,
                backbone_out_indices=[0, 1, 2, 3],
                neck_hidden_sizes=[16, 32, 32, 32],  # the first two are the BiT stages (ignored stages)
                fusion_hidden_size=16,
                image_size=64,
                backbone_config=hf.BitConfig(
                    depths=[1, 1, 1],
                    hidden_sizes=[16, 32, 64, 128],
                    embedding_size=16,
                    num_groups=4,
                    out_features=["stage1", "stage2", "stage3"],
                    layer_type="bottleneck",
                    global_padding="SAME",
                    embedding_dynamic_padding=True,
                ),
                backbone_featmap_shape=[1, 64, 4, 4],
            )
        return hf.DPTForDepthEstimation(hf.DPTConfig(**kwargs)), _dpt_hybrid_call
    if name == "glpn":
        kwargs = dict(
            depths=[3, 8, 27, 3],
            hidden_sizes=[64, 128, 320, 512],
            num_attention_heads=[1, 2, 5, 8],
            sr_ratios=[8, 4, 2, 1],
            decoder_hidden_size=64,
            max_depth=10,
        )
        if tiny:
            kwargs.update(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 32], num_attention_heads=[1, 1, 2, 2])
        return hf.GLPNForDepthEstimation(hf.GLPNConfig(**kwargs)), pixel_call
    raise BenchmarkError(f"unknown model {name!r}; known: {', '.join(PEERS)}")


def _dpt_hybrid_call(model: nn.Module, images: torch.Tensor) -> Any:
    """DPT-Hybrid at any multiple of 32, as the original DPT runs it: transformers' hybrid
    embedding resizes its position table to the grid but first insists on the configured image
    size, so the configured size is set to the input's (no weight changes)."""
    model.dpt.embeddings.image_size = tuple(images.shape[-2:])
    return model(pixel_values=images)


# -------------------------------------------------------------------------------------------------
# worker: one model, driven over stdin/stdout one JSON line at a time


def worker(name: str, tiny: bool, device: str, threads: int, dtype: str, compile: bool = False) -> None:
    """Build ``name`` and answer the driver's requests until it says ``quit``.

    The runtime is the driver's: device, dtype (bf16 autocast on CUDA by default), threads and
    ``torch.compile``; transformers' models run their default (SDPA) attention.
    """
    runtime = Runtime(device=device, dtype=dtype, threads=threads, compile=compile)
    model, call = build_peer(name, tiny)
    parameters = sum(p.numel() for p in model.parameters())
    model = runtime.prepare(model)
    images: torch.Tensor | None = None

    def forward() -> None:
        call(model, images)

    def answer(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    answer({"ready": True, "parameters": parameters})
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "quit":
            return
        if op == "setup":
            height, width = request["size"]
            images = random_images(request["batch"], height, width, runtime.device)
            with inference_context(runtime):
                for _ in range(request["warmup"]):
                    forward()
                runtime.sync()
                memory = rss_peak_probe(forward, runtime) if request.get("memory", True) else None
            answer({"size": [height, width], "memory": memory})
        elif op == "time":
            with inference_context(runtime):
                runtime.sync()
                start = time.perf_counter()
                forward()
                runtime.sync()
            answer({"seconds": time.perf_counter() - start})
        else:
            answer({"error": f"unknown op {op!r}"})


class WorkerProcess:
    """The driver's handle on one worker process."""

    def __init__(self, name: str, runtime: Runtime, tiny: bool) -> None:
        self.name = name
        command = [sys.executable, "-m", "benchmarks.peers", "--worker", name, "--device", runtime.device]
        command += ["--threads", str(runtime.threads), "--dtype", runtime.dtype]
        command += (["--tiny"] if tiny else []) + (["--compile"] if runtime.compile else [])
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.hello = self._read()

    def request(self, **payload: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            error = self.process.stderr.read() if self.process.stderr else ""
            raise BenchmarkError(f"worker for {self.name} died:\n{error[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchmarkError(f"worker for {self.name}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


# -------------------------------------------------------------------------------------------------
# driver


def run_peers(
    runtime: Runtime,
    names: list[str],
    sizes: list[tuple[int, int]],
    batches: list[int],
    warmup: int,
    repeats: int,
    tiny: bool = False,
    memory: bool = True,
) -> dict[str, Any]:
    """Speed, memory and parameters of every model in ``names`` (MoA-DepthCLIP always included)."""
    names = [REFERENCE] + [n for n in names if n != REFERENCE]
    for name in names:
        if name not in PEERS:
            raise BenchmarkError(f"unknown model {name!r}; known: {', '.join(PEERS)}")
    workers: dict[str, WorkerProcess] = {}
    try:
        for name in names:
            log(f"peers: starting the {name} worker")
            workers[name] = WorkerProcess(name, runtime, tiny)
        records = []
        for size in sizes:
            for batch in batches:
                active = [n for n in names if batch <= PEERS[n].max_batch]
                if len(active) < 2:
                    continue
                log(f"peers {size[0]}x{size[1]} batch {batch}: {', '.join(active)}")
                setups = {
                    n: workers[n].request(
                        op="setup",
                        size=list(model_size(PEERS[n], size)),
                        batch=batch,
                        warmup=warmup,
                        memory=memory,
                    )
                    for n in active
                }
                samples: dict[str, list[float]] = {n: [] for n in active}
                for round_index in range(repeats):
                    order = active if round_index % 2 == 0 else active[::-1]
                    for n in order:
                        samples[n].append(workers[n].request(op="time")["seconds"])
                records.append(_record(size, batch, active, setups, samples))
        parameters = {n: w.hello["parameters"] for n, w in workers.items()}
    finally:
        for handle in workers.values():
            handle.close()
    return {
        "models": {
            n: {
                "label": PEERS[n].label,
                "configuration": PEERS[n].configuration,
                "parameters": parameters[n],
                "max_batch": PEERS[n].max_batch,
                "published_nyu": None if PEERS[n].published is None else vars(PEERS[n].published),
                "ours": PEERS[n].ours,
            }
            for n in names
        },
        "reference": REFERENCE,
        "records": records,
    }


def _record(
    size: tuple[int, int],
    batch: int,
    active: list[str],
    setups: dict[str, dict[str, Any]],
    samples: dict[str, list[float]],
) -> dict[str, Any]:
    reference = samples[REFERENCE]
    models = {}
    for name in active:
        paired = sorted(s / r for s, r in zip(samples[name], reference, strict=True))
        models[name] = {
            **summarise(samples[name], batch),
            "input": setups[name]["size"],
            "memory": setups[name]["memory"],
            # Latency relative to MoA-DepthCLIP in the same round (>1: slower than ours).
            "latency_vs_ours": {
                "median": paired[len(paired) // 2],
                "min": min(samples[name]) / min(reference),
            },
        }
    return {"size": list(size), "batch": batch, "models": models}


# -------------------------------------------------------------------------------------------------
# tables and the figure


def to_markdown(section: dict[str, Any]) -> list[str]:
    models = section["models"]
    lines = [
        "## Peers: MoA-DepthCLIP vs the depth models people would pick instead",
        "",
        "One worker process per model, random weights, built from transformers' configuration classes "
        "with the published hyper-parameters; timed round-robin with MoA-DepthCLIP in every round. "
        "Latency median (min) ms per batch; `x ours` = latency / MoA-DepthCLIP's latency in the same "
        "round (median of the rounds; >1 is slower); peak memory = growth of the worker's peak RSS over "
        "one forward after warm-up (activations and workspace; the weights are the `weights MiB` column).",
        "",
        "| model | params | weights MiB | published NYU δ1 / AbsRel / RMSE | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for info in models.values():
        published = info["published_nyu"]
        cells = "– / – / –"
        source = "not a depth model"
        if published is not None:
            cells = " / ".join(
                "–" if published[k] is None else f"{published[k]:.3f}" for k in ("delta1", "abs_rel", "rmse")
            )
            source = published["source"]
        label = f"**{info['label']}**" if info["ours"] else info["label"]
        lines.append(
            f"| {label} | {info['parameters'] / 1e6:.1f}M | {info['parameters'] * 4 / 2**20:.0f} | {cells} | {source} |"
        )
    lines += [
        "",
        "| setting | model | input | ms | img/s | x ours | peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for record in section["records"]:
        setting = f"{record['size'][0]}x{record['size'][1]} b{record['batch']}"
        for name, values in record["models"].items():
            latency = values["latency_ms"]
            memory = values["memory"]
            peak = "–" if not memory else f"{memory['step_peak_mib']:.0f}"
            lines.append(
                f"| {setting} | {models[name]['label']} | {values['input'][0]}x{values['input'][1]} | "
                f"{latency['median']:.1f} ({latency['min']:.1f}) | {values['throughput']['median']:.2f} | "
                f"{values['latency_vs_ours']['median']:.2f} | {peak} |"
            )
    lines.append("")
    return lines


def plot_speed_accuracy(
    section: dict[str, Any], path: Path, size: tuple[int, int] = NYU_INPUT
) -> Path | None:
    """Published NYU δ1 against measured batch-1 latency at the NYU input; this project marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = next(
        (r for r in section["records"] if tuple(r["size"]) == tuple(size) and r["batch"] == 1), None
    )
    if record is None:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 5.4), dpi=120)
    missing = []
    for name, values in record["models"].items():
        info = section["models"][name]
        published = info["published_nyu"]
        if published is None or published["delta1"] is None:
            missing.append(f"{info['label']} {values['latency_ms']['median']:.0f} ms")
            continue
        x, y = values["latency_ms"]["median"], published["delta1"]
        if info["ours"]:
            axes.scatter(
                [x], [y], marker="*", s=320, color="tab:red", zorder=3, label="this project (paper's δ1)"
            )
        else:
            axes.scatter(
                [x], [y], s=60, color="tab:blue", zorder=2, label="peers (published δ1)" if y else None
            )
        axes.annotate(info["label"], (x, y), textcoords="offset points", xytext=(8, 4), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel(f"measured latency, batch 1, ~{size[0]}x{size[1]} input, CPU (ms, log scale)")
    axes.set_ylabel("published NYU Depth V2 δ1")
    axes.set_title("Speed vs accuracy: published δ1, latency measured in one run", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    notes = "Random weights (latency does not depend on them); each peer at the input its patch grid allows."
    if missing:
        notes += "\nNo published NYU δ1 (not plotted): " + "; ".join(missing) + "."
    figure.text(0.01, 0.01, notes, fontsize=7, va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=sorted(PEERS), help="run as the worker for one model (internal)")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--plot", type=Path, help="results.json with a peers section: draw the figure")
    parser.add_argument("--figure", type=Path, default=REPO_ROOT / "docs/images/speed_accuracy.png")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.tiny, args.device, args.threads, args.dtype, args.compile)
    elif args.plot:
        results = json.loads(args.plot.read_text(encoding="utf-8"))
        written = plot_speed_accuracy(results["peers"], args.figure)
        log(f"wrote {written}" if written else "no batch-1 record at the NYU input in that file")
    else:
        parser.error("use run_all.py --only peers to run this benchmark, or --plot results.json")


if __name__ == "__main__":
    main()
