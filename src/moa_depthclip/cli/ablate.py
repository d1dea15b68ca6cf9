"""`moa-depthclip ablate`: train a list of config variants identically and compare them in one table.

    moa-depthclip ablate --preset tiny --variant full --variant no-moa --variant no-context \
        --variant "r16=model.moa.rank=16" --set run.max_steps=50 --out results/ablation

Built-in variants are listed by ``--list``; a custom one is ``NAME=KEY=VALUE[;KEY=VALUE...]``. The
first variant is the reference of the paired intervals. See docs/ablations.md.
"""

from __future__ import annotations

import argparse
import shlex

from moa_depthclip.cli.common import (
    add_device_argument,
    add_overrides_argument,
    add_workers_argument,
    config_overrides,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from moa_depthclip.training.config import PRESETS

    parser = subparsers.add_parser(
        "ablate",
        help="train config variants (component ablation) and write one comparison table (markdown + JSON)",
        description=(
            "Train every --variant with the same base configuration (preset, --config, --set), score each "
            "on the run's validation set with the shared evaluation code, and write OUT/ablation.md and "
            "OUT/ablation.json: trainable parameters by group, metrics, and paired-bootstrap 95 % intervals "
            "of each variant against the first. Each variant's run folder is OUT/<variant>."
        ),
    )
    parser.add_argument("--preset", choices=PRESETS, help="base configuration shipped with the package")
    parser.add_argument(
        "--config", metavar="FILE", help="base YAML configuration (same sections as the presets)"
    )
    add_overrides_argument(parser, help="overrides shared by every variant, e.g. run.max_steps=200 data.dataset=nyu-mat")
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=[],
        metavar="NAME[=KEY=VALUE;...]",
        help="a built-in variant (see --list) or NAME=KEY=VALUE[;KEY=VALUE...]; repeat; the first is the reference",
    )
    parser.add_argument("--out", metavar="DIR", default="results/ablation", help="output folder")
    parser.add_argument(
        "--protocol",
        help="evaluation protocol for every variant (default: the configuration's data.val_protocol)",
    )
    parser.add_argument(
        "--input-size",
        metavar="HxW",
        help="model input size for the final scoring (default: the protocol's), e.g. 224x224",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue variants whose run folder exists from their last checkpoint (finished ones are re-scored)",
    )
    add_device_argument(parser, default=None)  # sets run.device
    add_workers_argument(parser, default=None)  # sets data.num_workers
    parser.add_argument("--list", action="store_true", help="list the built-in variants and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.cli.common import parse_size
    from moa_depthclip.training.ablation import BUILTIN_VARIANTS, parse_variant, run_ablation
    from moa_depthclip.training.config import ConfigError

    if args.list:
        width = max(len(name) for name in BUILTIN_VARIANTS)
        for name, (description, overrides) in BUILTIN_VARIANTS.items():
            print(f"{name:<{width}}  {description}: {' '.join(overrides) or '(no override)'}")
        return 0
    if not (args.preset or args.config):
        raise ConfigError("give --preset (e.g. tiny, nyu) or --config FILE as the base configuration")
    if not args.variants:
        raise ConfigError("give the variants to compare, e.g. --variant full --variant no-moa (see --list)")
    variants = [parse_variant(spec) for spec in args.variants]
    args.overrides = [*args.overrides, *config_overrides(args)]
    report = run_ablation(
        variants,
        args.out,
        preset=args.preset,
        config_file=args.config,
        overrides=args.overrides,
        protocol=args.protocol,
        resume=args.resume,
        command=_command(args),
        input_size=parse_size(args.input_size) if args.input_size else None,
    )
    print(report.markdown(), end="")
    print(f"written: {args.out}/ablation.md, {args.out}/ablation.json")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this ablation (for the report)."""
    parts = ["moa-depthclip", "ablate"]
    if args.preset:
        parts += ["--preset", args.preset]
    if args.config:
        parts += ["--config", str(args.config)]
    for spec in args.variants:
        parts += ["--variant", spec]
    if args.overrides:
        parts += ["--set", *args.overrides]
    if args.protocol:
        parts += ["--protocol", args.protocol]
    if args.input_size:
        parts += ["--input-size", args.input_size]
    parts += ["--out", str(args.out)]
    return shlex.join(parts)
