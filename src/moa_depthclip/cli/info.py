"""`moa-depthclip info`: the architecture summary (parameter counts by group, token grids)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from moa_depthclip.cli.common import add_size_argument, add_tokenizer_argument
from moa_depthclip.config import ModelConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="print the architecture summary: parameters (total, trainable, by group) and token grids",
        description=(
            "Print MoA-DepthCLIP's parameter counts and token grids. Without --model it builds the "
            "default ViT-B/32 architecture (no weights needed: counts do not depend on them)."
        ),
    )
    parser.add_argument("--model", help="a saved model folder / run directory / hub id to describe instead")
    add_size_argument(
        parser,
        repeat=True,
        help="input size to report token grids for; repeat for several (default: 224x224 and 416x544)",
    )
    add_size_argument(parser, repeat=True, flag="--size", help=argparse.SUPPRESS)  # deprecated spelling
    add_tokenizer_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.model.moa_depthclip import MoADepthCLIP

    if args.model:
        from moa_depthclip.inference.loading import load_depth_model

        model = load_depth_model(args.model, device="cpu", tokenizer_source=args.tokenizer)
        if not isinstance(model, MoADepthCLIP):
            print(
                f"{args.model} is not a MoA-DepthCLIP model; total parameters: "
                f"{sum(p.numel() for p in model.parameters()):,}"
            )
            return 0
    else:
        model = MoADepthCLIP(ModelConfig())
    sizes = args.input_size or [(224, 224), (416, 544)]
    reports = [model.parameter_report(size) for size in sizes]
    if args.json:
        print(json.dumps({"config": model.config.to_dict(), "sizes": reports}, indent=2))
    else:
        print(format_report(model.config, reports, weights_loaded=bool(args.model)))
    return 0


def _describe_moa(config: ModelConfig, layers: list[int]) -> str:
    """The MoA line: where, how many experts, what routes them (none for one plain adapter)."""
    moa = config.moa
    if not layers:
        return "none (fine-tuning only)"
    if moa.num_experts == 1:
        return f"after blocks {layers}: one plain adapter (no router), rank {moa.rank}"
    routed = moa.router_uses_context and config.context.mode != "none"
    return (
        f"after blocks {layers}: {moa.num_experts} experts, rank {moa.rank}, router sees "
        f"{'token + context' if routed else 'token only'}, regulariser {moa.router_regularizer}"
    )


def format_report(config: ModelConfig, reports: list[dict[str, Any]], weights_loaded: bool = True) -> str:
    first = reports[0]
    if not weights_loaded:
        weights = "none loaded (architecture summary; counts do not depend on weights)"
    else:
        weights = "random initialisation" if first["random_init"] else "pretrained"
    total = first["total_parameters"]
    lines = [
        "MoA-DepthCLIP architecture",
        f"  backbone        CLIP ViT ({config.backbone.source}); weights: {weights}",
        f"  MoA             {_describe_moa(config, first['moa_layers'])}",
        f"  decoder taps    blocks {first.get('tap_layers', first['moa_layers'])}",
        f"  unfrozen blocks {first['unfrozen_blocks']}",
        f"  context         {config.context.mode}, {len(config.context.templates) * len(config.context.words)} prompts",
        f"  head            {config.head.num_bins} {config.head.bin_spacing} bins over "
        f"[{config.head.min_depth:g}, {config.head.max_depth:g}] m + regression, blend={config.head.blend}",
        "",
        f"  {'parameters':<26}{'count':>14}{'share':>9}",
        f"  {'total':<26}{total:>14,}{1:>9.1%}",
        f"  {'trainable':<26}{first['trainable_parameters']:>14,}{first['trainable_fraction']:>9.1%}",
    ]
    for name, count in first["trainable_by_group"].items():
        lines.append(f"    {name:<24}{count:>14,}{count / total:>9.1%}")
    lines.append(
        f"  {'frozen':<26}{first['frozen_parameters']:>14,}{first['frozen_parameters'] / total:>9.1%}"
    )
    lines.append("")
    lines.append(f"  {'input (H x W)':<16}{'token grid':>12}{'tokens':>8}{'decoder map':>14}")
    for report in reports:
        height, width = report["input_size"]
        grid = "x".join(map(str, report["token_grid"]))
        decoder = "x".join(map(str, report["decoder_output"]))
        lines.append(f"  {f'{height} x {width}':<16}{grid:>12}{report['tokens']:>8}{decoder:>14}")
    return "\n".join(lines)
