"""Where a MoA-DepthCLIP forward spends its time beyond the bare CLIP tower (torch.profiler).

Every part of the model is wrapped in a ``record_function`` label by forward hooks (embedding,
each transformer block, each MoA module, the decoder's fusion / stages / skip projections, the
head's bin classifier + softmax, its regression and gate, and the final upsampling to the input
size), and ``torch.profiler`` sums the CPU time under each label over ``--repeats`` forwards.
The shares answer "what is left between MoA-DepthCLIP and the backbone": the transformer blocks
and the embedding are what the bare tower pays too; everything else is the model's own cost.

    python -m benchmarks.profile_model --size 416x544 --batch 1 --repeats 3
    python -m benchmarks.profile_model --size 224x224 --batch 8 --ops 15 --json profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from benchmarks.common import ModelSpec, Runtime, inference_context, parse_size, random_images, tiny_spec
from moa_depthclip.model.moa_depthclip import MoADepthCLIP

PREFIX = "part::"


def _labelled_modules(model: MoADepthCLIP) -> dict[str, nn.Module]:
    """The modules whose forward gets a profiler label: one label per part of the model."""
    parts: dict[str, nn.Module] = {
        "embedding": model.backbone.embeddings.patch_embedding,
        "pre_layernorm": model.backbone.pre_layrnorm,
    }
    for index, block in enumerate(model.backbone.blocks):
        parts[f"blocks.{index}"] = block
    for key, module in model.moa.items():
        parts[f"moa.{key}"] = module
    decoder = model.decoder
    parts["decoder"] = decoder
    for index, norm in enumerate(decoder.tap_norms):
        parts[f"decoder.tap_norm.{index}"] = norm
    for index, projection in enumerate(decoder.deep_projections):
        parts[f"decoder.deep_projection.{index}"] = projection
    parts["decoder.fuse"] = decoder.fuse
    for index, stage in enumerate(decoder.stages):
        parts[f"decoder.stage.{index} (stride {32 // 2 ** (index + 1)})"] = stage
    parts["head"] = model.head
    parts["head.regressor"] = model.head.regressor
    if model.head.gate is not None:
        parts["head.gate"] = model.head.gate
    return parts


@contextmanager
def labelled(model: MoADepthCLIP) -> Iterator[None]:
    """Wrap each part's forward in ``record_function(PREFIX + name)`` for the duration."""
    handles = []
    for name, module in _labelled_modules(model).items():
        scopes: list[Any] = []

        def enter(_module: nn.Module, _args: Any, name: str = name, scopes: list[Any] = scopes) -> None:
            scope = record_function(PREFIX + name)
            scope.__enter__()
            scopes.append(scope)

        def leave(_module: nn.Module, _args: Any, _out: Any, scopes: list[Any] = scopes) -> None:
            scopes.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def profile_forward(
    model: MoADepthCLIP, images: torch.Tensor, runtime: Runtime, repeats: int, ops: int = 0
) -> dict[str, Any]:
    """Milliseconds per forward under each label, grouped, plus the top ``ops`` operators."""
    forward: Callable[[], Any] = lambda: model(images)  # noqa: E731
    with inference_context(runtime):
        forward()  # warm-up (allocator, position-embedding cache)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if runtime.is_cuda else [])
        with labelled(model), profile(activities=activities) as prof:
            for _ in range(repeats):
                with record_function(PREFIX + "total"):
                    forward()
                runtime.sync()
    events = prof.key_averages()
    per_label = {
        event.key[len(PREFIX) :]: event.cpu_time_total / 1e3 / repeats
        for event in events
        if event.key.startswith(PREFIX)
    }
    total = per_label.pop("total")
    blocks = sum(v for k, v in per_label.items() if k.startswith("blocks."))
    moa = sum(v for k, v in per_label.items() if k.startswith("moa."))
    decoder = per_label.get("decoder", 0.0)
    decoder_children = {k: v for k, v in per_label.items() if k.startswith("decoder.")}
    head = per_label.get("head", 0.0)
    head_conv = per_label.get("head.regressor", 0.0) + per_label.get("head.gate", 0.0)
    groups = {
        "embedding + pre-LN": per_label.get("embedding", 0.0) + per_label.get("pre_layernorm", 0.0),
        "transformer blocks": blocks,
        "MoA (all modules)": moa,
        "decoder": decoder,
        "head": head,
    }
    # What no module owns: pixel normalisation, the context vector and the final upsampling of
    # the head's three maps to the input size.
    groups["final upsampling + normalisation"] = total - sum(groups.values())
    detail = {
        **decoder_children,
        "decoder: x2 bilinear upsampling + skip projections": decoder - sum(decoder_children.values()),
        "head: bins (linear + softmax + expectation)": head - head_conv,
        "head: regressor + gate": head_conv,
    }
    backbone = groups["embedding + pre-LN"] + blocks
    result: dict[str, Any] = {
        "total_ms": total,
        "groups_ms": groups,
        "groups_share": {k: v / total for k, v in groups.items()},
        "detail_ms": detail,
        # If the bare tower cost exactly the backbone's part of this forward, the throughput
        # ratio MoA-DepthCLIP / tower would be this share.
        "backbone_share": backbone / total,
    }
    if ops:
        table = sorted(
            (e for e in events if not e.key.startswith(PREFIX)),
            key=lambda e: e.self_cpu_time_total,
            reverse=True,
        )
        result["top_ops_self_ms"] = {e.key: e.self_cpu_time_total / 1e3 / repeats for e in table[:ops]}
    return result


def format_profile(result: dict[str, Any], title: str) -> str:
    lines = [
        f"### {title}: {result['total_ms']:.1f} ms per forward",
        "",
        "| part | ms | share |",
        "| --- | --- | --- |",
    ]
    for name, ms in result["groups_ms"].items():
        lines.append(f"| {name} | {ms:.1f} | {100 * ms / result['total_ms']:.1f}% |")
    for name, ms in result["detail_ms"].items():
        lines.append(f"| &nbsp;&nbsp;{name} | {ms:.2f} | {100 * ms / result['total_ms']:.1f}% |")
    lines.append("")
    if result.get("top_ops_self_ms"):
        lines += ["| operator (self time) | ms |", "| --- | --- |"]
        lines += [f"| `{k}` | {v:.2f} |" for k, v in result["top_ops_self_ms"].items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=(416, 544))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", type=int, default=12, help="also list the N most expensive operators")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoder-stages", type=int, help="profile a decoder with this many x2 stages")
    parser.add_argument("--tiny", action="store_true", help="toy shapes (tests)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    runtime = Runtime(
        device=args.device,
        dtype="bfloat16" if args.device.startswith("cuda") else "float32",
        **({"threads": args.threads} if args.threads else {}),
    )
    spec = tiny_spec() if args.tiny else ModelSpec()
    if args.decoder_stages is not None:
        spec.model.decoder.stage_channels = spec.model.decoder.stage_channels[: args.decoder_stages]
    model = spec.build_moa().to(runtime.device).eval()
    height, width = args.size
    images = random_images(args.batch, height, width, runtime.device)
    result = profile_forward(model, images, runtime, args.repeats, args.ops)
    result.update(size=[height, width], batch=args.batch, threads=runtime.threads)
    print(format_profile(result, f"{height}x{width} batch {args.batch}, {runtime.threads} threads"))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
