"""`moa-depthclip demo`: train on synthetic scenes for a few minutes, evaluate, write a report."""

from __future__ import annotations

import argparse

from moa_depthclip.cli.common import (
    add_device_argument,
    add_overrides_argument,
    add_workers_argument,
    config_overrides,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train on synthetic scenes for a few minutes (CPU, no download), evaluate, write a report",
        description=(
            "Generate synthetic indoor RGB-D scenes, train MoA-DepthCLIP for a few minutes, evaluate it "
            "on held-out scenes against two floors (a constant depth and the layout prior), each "
            "comparison paired per scene with a 95% interval, and write DIR/report.md with tables, "
            "prediction panels and the training curve. Uses pretrained CLIP weights when given (--clip) "
            "or already in the Hugging Face cache; otherwise random initialisation, which the console "
            "and the report say."
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
        help="wall-clock budget of the whole demo; sets the number of steps from a timed step (default: 4)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="train exactly N optimizer steps instead of a time budget (a step count that does not depend on the machine)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a toy-sized run in seconds (checks the pipeline)"
    )
    parser.add_argument(
        "--clip",
        metavar="SOURCE",
        help="pretrained CLIP weights (folder, file or cached hub id); honoured with --quick",
    )
    add_device_argument(parser, default=None)  # sets run.device
    add_workers_argument(parser, default=None)  # sets data.num_workers
    add_overrides_argument(parser, help="overrides of the demo preset, e.g. data.train_scenes=512")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.demo import run_demo
    from moa_depthclip.errors import UserFacingError

    if args.minutes is not None and args.minutes <= 0:
        raise UserFacingError(f"--minutes must be positive, got {args.minutes}")
    if args.steps is not None and args.steps < 1:
        raise UserFacingError(f"--steps must be at least 1, got {args.steps}")
    from moa_depthclip.paths import writable_dir

    writable_dir(args.out, "--out")  # before minutes of training
    result = run_demo(
        args.out,
        minutes=args.minutes,
        steps=args.steps,
        quick=args.quick,
        clip=args.clip,
        overrides=[*args.overrides, *config_overrides(args)],
    )
    print()
    for name, metrics in result.metrics.items():
        print(
            f"  {name:<50} AbsRel {metrics['abs_rel']:.3f}  delta1 {metrics['delta1']:.3f}  RMSE {metrics['rmse']:.3f} m"
        )
    for floor, by_metric in result.comparisons.items():
        verdicts = ", ".join(f"{metric} {c.verdict} {c.describe()}" for metric, c in by_metric.items())
        print(f"  vs {floor}: {verdicts}")
    print(f"\ndemo finished in {result.seconds / 60:.1f} min ({result.steps} steps); report: {result.report}")
    return 0
