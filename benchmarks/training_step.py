"""One training step of MoA-DepthCLIP against fine-tuning the whole backbone: time and peak memory.

Both sides are the same model, the same inputs and the same loss (L1 on depth plus the MoA
load-balancing term) and take one AdamW step; they differ only in what is trainable:

* ``moa``  - the paper's set: MoA modules, backbone blocks 8-11, context projection, decoder, heads;
* ``full`` - every parameter (the whole CLIP backbone fine-tuned as well).

Time is measured in this process with the two interleaved. Peak memory is measured in a fresh
subprocess per configuration, so that neither inherits the other's allocator state: on CPU the
growth of the process's peak resident set over two training steps (the second one holds the
optimizer state), measured from after the model and batch exist (the kernel's peak mark is reset
there; ``ru_maxrss`` where that is not possible); on CUDA ``torch.cuda.max_memory_allocated`` over the
step. The other training benchmark, ``train_throughput.py``, measures the real composite loss and
optimizer setup of the trainer; this one isolates what selective fine-tuning saves.

    python -m benchmarks.training_step --probe '{"mode": "moa", "size": [224, 224], "batch": 2}'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import (
    BenchmarkError,
    ModelSpec,
    Runtime,
    log,
    random_images,
    time_setting,
)
from benchmarks.memory import rss_peak_probe
from moa_depthclip.config import ModelConfig
from moa_depthclip.model.moa_depthclip import MoADepthCLIP

MODES = ("moa", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent


def build_trainable(spec: ModelSpec, mode: str) -> MoADepthCLIP:
    """The model with the trainable set of ``mode`` (``moa``: the paper's; ``full``: everything)."""
    if mode not in MODES:
        raise BenchmarkError(f"training mode must be one of {MODES}, got {mode!r}")
    model = spec.build_moa()
    if mode == "full":
        model.requires_grad_(True)
    return model


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def make_step(
    model: MoADepthCLIP, runtime: Runtime, batch: int, height: int, width: int
) -> Callable[[], None]:
    """A closure running forward + L1 loss + backward + AdamW step on a fixed random batch."""
    model.to(runtime.device).train()
    forward = torch.compile(model) if runtime.compile else model
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-4, weight_decay=0.01)
    images = random_images(batch, height, width, runtime.device)
    generator = torch.Generator().manual_seed(1)
    target = (0.5 + 9.0 * torch.rand(batch, 1, height, width, generator=generator)).to(runtime.device)

    def step() -> None:
        with runtime.autocast():
            output = forward(images)
        loss = F.l1_loss(output.depth.float(), target) + output.aux_loss.float()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def run_training(
    spec: ModelSpec,
    runtime: Runtime,
    sizes: list[tuple[int, int]],
    batch: int,
    warmup: int,
    repeats: int,
    memory: bool = True,
) -> list[dict[str, Any]]:
    """One record per size: step time of both trainable sets, their ratio, and peak memory."""
    models = {mode: build_trainable(spec, mode) for mode in MODES}
    counts = {mode: sum(p.numel() for p in trainable_parameters(m)) for mode, m in models.items()}
    records = []
    for height, width in sizes:
        log(f"training step {height}x{width} batch {batch}")
        steps = {mode: make_step(model, runtime, batch, height, width) for mode, model in models.items()}
        timed = time_setting(steps, runtime, warmup, repeats, batch, baseline="full", inference=False)
        record: dict[str, Any] = {
            "size": [height, width],
            "batch": batch,
            "tokens": spec.tokens(height, width),
            "moa": {**timed.summaries["moa"], "trainable_parameters": counts["moa"]},
            "full": {**timed.summaries["full"], "trainable_parameters": counts["full"]},
            # >1: the paper's trainable set trains faster than full fine-tuning.
            "speedup_vs_full": timed.ratios["moa"],
        }
        if memory:
            for mode in MODES:
                log(f"training memory {mode} {height}x{width} batch {batch} (fresh process)")
                record[mode]["memory"] = measure_memory_in_subprocess(
                    spec, runtime, mode, (height, width), batch
                )
            full_mib, moa_mib = (
                record["full"]["memory"]["step_peak_mib"],
                record["moa"]["memory"]["step_peak_mib"],
            )
            record["memory_saving"] = 1.0 - moa_mib / full_mib if full_mib > 0 else None
        records.append(record)
        del steps
    return records


# -------------------------------------------------------------------------------------------------
# peak memory, one fresh process per configuration


def measure_memory_in_subprocess(
    spec: ModelSpec, runtime: Runtime, mode: str, size: tuple[int, int], batch: int, steps: int = 2
) -> dict[str, Any]:
    request = {
        "model": spec.model.to_dict(),
        "mode": mode,
        "size": list(size),
        "batch": batch,
        "steps": steps,
        "runtime": runtime.describe() | {"compile": False},
    }
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.training_step", "--probe", json.dumps(request)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"memory probe for {mode} {size} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Build one configuration, run ``steps`` training steps, report the peak memory they added."""
    settings = request["runtime"]
    runtime = Runtime(device=settings["device"], dtype=settings["dtype"], threads=settings["threads"])
    spec = ModelSpec(model=ModelConfig.from_dict(request["model"]))
    height, width = request["size"]
    step = make_step(build_trainable(spec, request["mode"]), runtime, request["batch"], height, width)
    # The second step also holds the optimizer state.
    return rss_peak_probe(step, runtime, times=request["steps"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", required=True, help="JSON request (see measure_memory_in_subprocess)")
    args = parser.parse_args(argv)
    print(json.dumps(probe(json.loads(args.probe))))


if __name__ == "__main__":
    main()
