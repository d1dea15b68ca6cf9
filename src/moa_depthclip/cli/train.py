"""`moa-depthclip train`: train MoA-DepthCLIP from a preset / YAML file with overrides.

Single process::

    moa-depthclip train --preset nyu --set data.mat_path=nyu_depth_v2_labeled.mat \
        data.splits_path=splits.mat --out runs/nyu

Data-parallel (one process per GPU, or several CPU processes with gloo)::

    torchrun --nproc_per_node 4 -m moa_depthclip.cli.main train --preset nyu ... --out runs/nyu

``--resume auto`` continues the run in ``--out`` from its latest checkpoint (or starts it); a folder
that already holds a run is never trained into without ``--resume`` (``--overwrite`` deletes it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from moa_depthclip.cli.common import (
    add_device_argument,
    add_overrides_argument,
    add_workers_argument,
    config_overrides,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from moa_depthclip.training.config import PRESETS

    parser = subparsers.add_parser(
        "train",
        help=f"train MoA-DepthCLIP (presets: {', '.join(PRESETS)}; YAML configs; --set overrides; resume; torchrun)",
        description=(
            "Train MoA-DepthCLIP. The configuration is the preset, then --config, then --set overrides "
            "(dotted keys, YAML values), and is saved as RUN_DIR/train_config.yaml. Launch under torchrun "
            "for data-parallel training (see docs/training.md)."
        ),
    )
    parser.add_argument("--preset", choices=PRESETS, help="a configuration shipped with the package")
    parser.add_argument("--config", metavar="FILE", help="a YAML file (same sections as the presets)")
    add_overrides_argument(parser, help="overrides such as optim.lr=1e-4 data.batch_size=8 data.crop_size=[416,544]")
    parser.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default: runs/<preset or config name>)"
    )
    parser.add_argument(
        "--resume",
        metavar="auto|PATH",
        help="'auto': continue from the latest checkpoint in RUN_DIR (start fresh if none); or a "
        "checkpoint folder / run directory",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run already in RUN_DIR and start a new one (without it, a new run there is refused)",
    )
    parser.add_argument(
        "--clip",
        metavar="SOURCE",
        help="CLIP weights: hub id, save_pretrained folder, OpenAI/open_clip file, or 'random' "
        "(sets model.backbone.source)",
    )
    add_device_argument(parser, default=None)  # sets run.device
    add_workers_argument(parser, default=None)  # sets data.num_workers
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved configuration and exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.training.config import PRESETS, ConfigError, build_config

    run_dir = Path(args.out) if args.out else None
    config_file = args.config
    if (
        args.resume
        and not (args.preset or config_file)
        and run_dir
        and (run_dir / "train_config.yaml").is_file()
    ):
        config_file = run_dir / "train_config.yaml"  # resuming a run: its own configuration
    if not (args.preset or config_file):
        raise ConfigError(f"give --preset ({', '.join(PRESETS)}) or --config FILE")
    overrides = list(args.overrides)
    if args.clip:
        overrides.append(f"model.backbone.source={args.clip}")
    overrides += config_overrides(args)
    config = build_config(args.preset, config_file, overrides)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if run_dir is None:
        run_dir = Path("runs") / (args.preset or Path(str(config_file)).stem)
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        from moa_depthclip.paths import writable_dir

        writable_dir(run_dir, "--out")

    from moa_depthclip.training.trainer import run_training

    result = run_training(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    if main_process:
        best = result.best
        summary = f"{best['metric']} {best['value']:.4f} at step {best['step']}" if best else "no validation"
        print(
            f"done: {result.steps} steps in {result.seconds:.0f} s; best {summary}; models in {run_dir}/final, {run_dir}/best"
        )
    return 0
