"""Fine-tune MoA-DepthCLIP on your own folder of image/depth pairs.

    python examples/finetune_on_folder.py my_data/ --out runs/mine --steps 2000
    python examples/finetune_on_folder.py my_data/ --val my_val/ --from runs/nyu/best --out runs/mine

The folder holds `image/NAME.jpg` with `depth/NAME.png` (16-bit millimetres) or `.npy` (metres), or
flat `NAME.jpg` with `NAME_depth.png`. Training starts from a saved model (`--from`) or from CLIP
(`--clip`, default: the `nyu` preset's CLIP); the best model (by validation AbsRel) ends up in
OUT/best, loadable with `MoADepthCLIP.from_pretrained` or `moa-depthclip predict --model OUT`.
`moa-depthclip train --preset nyu --set data.dataset=folder ...` is the same from the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training.config import build_config
from moa_depthclip.training.trainer import Trainer


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="folder of image/depth pairs")
    parser.add_argument("--val", type=Path, help="validation folder (default: the training folder)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--from", dest="start", help="a saved MoA-DepthCLIP folder to start from")
    parser.add_argument("--clip", help="CLIP weights to start from instead (hub id or folder)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--crop", type=int, nargs=2, metavar=("H", "W"), help="random crop size (multiples of 32)"
    )
    args = parser.parse_args(argv)

    overrides = [
        "data.dataset=folder",
        f"data.data_root={args.data}",
        f"data.val_root={args.val or args.data}",
        f"data.batch_size={args.batch_size}",
        f"run.max_steps={args.steps}",
        f"run.val_every={max(1, args.steps // 10)}",
    ]
    if args.crop:
        overrides.append(f"data.crop_size=[{args.crop[0]}, {args.crop[1]}]")
    else:
        overrides.append("data.crop_size=null")
    if args.clip:
        overrides.append(f"model.backbone.source={args.clip}")
    config = build_config(preset="nyu", overrides=overrides)
    model = MoADepthCLIP.from_pretrained(args.start) if args.start else None
    result = Trainer(config, args.out, model=model).train()
    print(f"trained {result.steps} steps; best model: {args.out / 'best'}")
    return args.out / "best"


if __name__ == "__main__":
    main()
