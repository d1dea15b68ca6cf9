"""Training throughput (images/s) and peak memory of one MoA-DepthCLIP optimizer step.

Runs full optimizer steps (forward, composite loss, backward, clipping, AdamW) on random images and
depths of a given size with the full ViT-B/32 shape (random weights: the cost does not depend on
them). Peak memory is the process's max resident set size (CPU) or ``torch.cuda.max_memory_allocated``
(CUDA).

    python benchmarks/train_throughput.py --size 224 224 --size 416 544 --batch 8 --steps 5
    python benchmarks/train_throughput.py --device cuda --batch 16 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import torch

from moa_depthclip.config import ModelConfig
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training.config import OptimConfig
from moa_depthclip.training.losses import CompositeLoss, LossConfig
from moa_depthclip.training.optim import build_optimizer


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def measure(
    model: MoADepthCLIP,
    size: tuple[int, int],
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    bf16: bool,
) -> dict[str, float]:
    loss_fn = CompositeLoss(LossConfig(), model.head.edges).to(device)
    optimizer = build_optimizer(model, OptimConfig())
    images = torch.rand(batch, 3, *size, device=device)
    depth = torch.rand(batch, 1, *size, device=device) * 9 + 0.5
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            output = model(images)
        total, _ = loss_fn(output, depth)
        total.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    result = {
        "height": size[0],
        "width": size[1],
        "batch": batch,
        "steps": steps,
        "seconds_per_step": seconds / steps,
        "images_per_s": batch * steps / seconds,
        "peak_rss_mib": peak_rss_mib(),
    }
    if device.type == "cuda":
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", nargs=2, type=int, action="append", metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = MoADepthCLIP(ModelConfig()).to(device).train()
    sizes = [tuple(s) for s in args.size] if args.size else [(224, 224), (416, 544)]
    rows = [
        measure(model, size, args.batch, args.steps, args.warmup, device, args.precision == "bf16")
        for size in sizes
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"device {device}, {args.precision}, {args.threads} thread(s), ViT-B/32 MoA-DepthCLIP, full optimizer step"
        )
        for row in rows:
            memory = f"{row.get('cuda_max_allocated_mib', row['peak_rss_mib']):.0f} MiB"
            print(
                f"  {row['height']}x{row['width']} batch {row['batch']}: {row['images_per_s']:.2f} images/s "
                f"({row['seconds_per_step']:.2f} s/step), peak memory {memory}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
