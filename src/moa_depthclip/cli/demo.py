"""`moa-depthclip demo`: train on synthetic scenes for a few minutes, evaluate, write a report."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train on synthetic scenes for a few minutes (CPU, no download), evaluate, write a report",
        description=(
            "Generate synthetic indoor RGB-D scenes, train MoA-DepthCLIP for a few minutes, evaluate it "
            "on held-out scenes against the constant (median depth) baseline and write DIR/report.md "
            "with a table, prediction panels and the training curve. Uses pretrained CLIP weights only "
            "if they are already on this machine (--clip or the Hugging Face cache); otherwise random "
            "initialisation, which the console and the report say."
        ),
    )
    parser.add_argument(
        "--out", default="demo_output", metavar="DIR", help="output folder (default: demo_output)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=4.0,
        metavar="M",
        help="wall-clock budget of the whole demo (default: 4)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a toy-sized run in seconds (checks the pipeline)"
    )
    parser.add_argument("--clip", metavar="SOURCE", help="local CLIP weights (folder, file or cached hub id)")
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="overrides of the demo preset, e.g. data.train_scenes=512",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.training.demo import run_demo

    result = run_demo(
        args.out, minutes=args.minutes, quick=args.quick, clip=args.clip, overrides=args.overrides
    )
    print()
    for name, metrics in result.metrics.items():
        print(
            f"  {name:<40} AbsRel {metrics['abs_rel']:.3f}  delta1 {metrics['delta1']:.3f}  RMSE {metrics['rmse']:.3f} m"
        )
    print(f"\ndemo finished in {result.seconds / 60:.1f} min; report: {result.report}")
    return 0
