"""`evaluate`: score one or more depth models on a dataset under a standard protocol.

Every model named with ``--model`` goes through the same ``evaluation.runner.evaluate`` call, and the
results land in one side-by-side table (plus JSON and per-image CSV with ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from moa_depthclip.errors import UserFacingError

DATASETS = ("synthetic", "nyu-mat", "nyu-sync", "kitti", "folder")
DEFAULT_PROTOCOL = {
    "synthetic": "synthetic",
    "nyu-mat": "nyu",
    "nyu-sync": "nyu",
    "kitti": "kitti",
    "folder": "nyu",
}


def _require(args: argparse.Namespace, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) in (None, "")]
    if missing:
        raise UserFacingError(f"--dataset {args.dataset} needs {', '.join(missing)}")


def build_dataset(args: argparse.Namespace, split: str = "test") -> Dataset:
    """The evaluation dataset (``split="test"``) or the training split used for the constant median."""
    kind = args.dataset
    if kind == "synthetic":
        from moa_depthclip.data.synthetic import SyntheticScenes

        count = args.num if split == "test" else args.train_num
        return SyntheticScenes(count, args.height, args.width, args.seed, split)
    if kind == "nyu-mat":
        from moa_depthclip.data.nyu import NYUDepthV2Mat

        _require(args, "mat", "splits")
        return NYUDepthV2Mat(args.mat, args.splits, split)
    if kind in ("nyu-sync", "kitti"):
        filenames = args.filenames if split == "test" else args.train_filenames
        if filenames is None:
            raise UserFacingError(
                "the median depth of the training split needs --train-filenames (or use constant:VALUE)"
                if split != "test"
                else f"--dataset {kind} needs --filenames"
            )
        _require(args, "data_root")
        root = args.data_root if split == "test" else (args.train_root or args.data_root)
        gt_root = args.gt_root if split == "test" else (args.train_gt_root or args.gt_root)
        if kind == "nyu-sync":
            from moa_depthclip.data.nyu import NYUSync

            return NYUSync(root, filenames, gt_root, depth_scale=args.depth_scale or 1000.0)
        from moa_depthclip.data.kitti import KITTIEigen

        return KITTIEigen(root, filenames, gt_root, depth_scale=args.depth_scale or 256.0)
    if kind == "folder":
        from moa_depthclip.data.folder import FolderPairs

        root = args.data_root if split == "test" else args.train_root
        if root is None:
            raise UserFacingError(
                "--dataset folder needs --data-root"
                if split == "test"
                else "the median depth of the training split needs --train-root (or use constant:VALUE)"
            )
        return FolderPairs(root, depth_scale=args.depth_scale or 1000.0)
    raise UserFacingError(f"unknown dataset {kind!r}; choose one of {', '.join(DATASETS)}")


def build_protocol(args: argparse.Namespace):
    from moa_depthclip.evaluation.protocol import PROTOCOLS

    name = args.protocol or DEFAULT_PROTOCOL[args.dataset]
    changes: dict = {}
    if args.crop is not None:
        changes["crop"] = None if args.crop == "none" else args.crop
    if args.min_depth is not None:
        changes["min_depth"] = args.min_depth
    if args.max_depth is not None:
        changes["max_depth"] = args.max_depth
    if args.median_scaling:
        changes["median_scaling"] = True
    if args.flip:
        changes["flip"] = True
    try:
        return PROTOCOLS[name](**changes)
    except ValueError as error:
        raise UserFacingError(str(error)) from error


def load_model(spec: str, args: argparse.Namespace, cache: dict) -> tuple[nn.Module, str]:
    """A model and its display name; ``constant`` uses the median of the training split."""
    from moa_depthclip.baselines.constant import ConstantDepth, median_valid_depth

    name, _, argument = spec.partition(":")
    if name == "constant":
        if argument:
            try:
                value = float(argument)
                return ConstantDepth(value), f"constant ({value:.3g} m)"
            except ValueError as error:
                raise UserFacingError(
                    f"'{spec}': constant needs a positive depth in metres, e.g. constant:2.5"
                ) from error
        if "median" not in cache:
            train = build_dataset(args, split="train")
            cache["median"] = median_valid_depth(train, max_images=args.median_images)
        return ConstantDepth(cache["median"]), f"constant (train median {cache['median']:.3g} m)"
    from moa_depthclip.inference.loading import load_depth_model

    return load_depth_model(spec, args.device, tokenizer_source=args.tokenizer), spec


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise UserFacingError(f"--input-size must look like 480x640, got {text!r}") from error
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise UserFacingError(f"--input-size {text}: height and width must be positive multiples of 32")
    return height, width


def _run(args: argparse.Namespace) -> int:
    from moa_depthclip.evaluation.report import markdown_table, write_csv, write_json
    from moa_depthclip.evaluation.runner import evaluate

    specs = args.model or ["constant"]
    input_size = _parse_size(args.input_size)
    protocol = build_protocol(args)
    dataset = build_dataset(args, split="test")
    if len(dataset) == 0:
        raise UserFacingError("the evaluation dataset is empty")
    cache: dict = {}
    results = []
    for spec in specs:
        model, name = load_model(spec, args, cache)
        results.append(
            evaluate(
                model,
                dataset,
                protocol,
                batch_size=args.batch_size,
                device=args.device,
                num_workers=args.num_workers,
                progress=not args.no_progress,
                input_size=input_size,
                model_name=name,
                max_images=args.limit,
            )
        )
    title = f"{args.dataset} ({results[0].counts['images']} images)"
    table = markdown_table(results, title=title)
    print(table, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", results, extra={"dataset": args.dataset})
        write_csv(out / "per_image.csv", results)
        (out / "results.md").write_text(table, encoding="utf-8")
        print(f"wrote {out / 'metrics.json'}, {out / 'per_image.csv'}, {out / 'results.md'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate depth models on a dataset (side-by-side table)",
        description="Evaluate one or more depth models under a standard protocol. Example: "
        "moa-depthclip evaluate --dataset nyu-mat --mat nyu_depth_v2_labeled.mat --splits splits.mat "
        "--model constant --model depthclip-rn50:RN50.pt --flip --out results/",
    )
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset", choices=DATASETS, default="synthetic")
    data.add_argument("--mat", help="nyu-mat: nyu_depth_v2_labeled.mat")
    data.add_argument("--splits", help="nyu-mat: splits.mat")
    data.add_argument("--data-root", help="nyu-sync/kitti: root of the image paths; folder: the folder")
    data.add_argument("--gt-root", help="nyu-sync/kitti: root of the depth paths (default: --data-root)")
    data.add_argument("--filenames", help="nyu-sync/kitti: filenames file of the evaluation split")
    data.add_argument("--train-filenames", help="nyu-sync/kitti: training filenames file (for 'constant')")
    data.add_argument("--train-root", help="training data root for 'constant' (default: --data-root)")
    data.add_argument("--train-gt-root", help="nyu-sync/kitti: training depth root (default: --gt-root)")
    data.add_argument("--depth-scale", type=float, help="PNG value per metre (default 1000; kitti 256)")
    data.add_argument("--num", type=int, default=100, help="synthetic: test scenes (default 100)")
    data.add_argument("--train-num", type=int, default=200, help="synthetic: training scenes for 'constant'")
    data.add_argument("--height", type=int, default=240, help="synthetic: render height (default 240)")
    data.add_argument("--width", type=int, default=320, help="synthetic: render width (default 320)")
    data.add_argument("--seed", type=int, default=0, help="synthetic: seed (default 0)")
    data.add_argument("--limit", type=int, help="evaluate only the first N images")

    proto = parser.add_argument_group("protocol")
    proto.add_argument("--protocol", choices=("nyu", "kitti", "synthetic"), help="default: by dataset")
    proto.add_argument("--crop", choices=("none", "eigen", "garg"), help="override the protocol's crop")
    proto.add_argument("--min-depth", type=float)
    proto.add_argument("--max-depth", type=float)
    proto.add_argument(
        "--median-scaling", action="store_true", help="per-image median scaling (relative models)"
    )
    proto.add_argument("--flip", action="store_true", help="average with the horizontally flipped prediction")

    run = parser.add_argument_group("models and run")
    run.add_argument(
        "--model",
        action="append",
        metavar="SPEC",
        help="constant | constant:VALUE | depthclip-vit[:SOURCE] | depthclip-rn50[:SOURCE] | saved model dir "
        "| hub id; repeat for a side-by-side table (default: constant)",
    )
    run.add_argument(
        "--tokenizer",
        metavar="DIR_OR_HUB_ID",
        help="CLIP tokenizer for DepthCLIP checkpoint files (default: files next to the checkpoint, then "
        "the openai/clip-vit-base-patch32 cache)",
    )
    run.add_argument("--input-size", help="model input HxW, multiples of 32 (default: image size rounded)")
    run.add_argument("--median-images", type=int, default=200, help="training images sampled for 'constant'")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--device", default="cpu")
    run.add_argument("--num-workers", type=int, default=0)
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--out", help="write metrics.json, per_image.csv and results.md here")
    parser.set_defaults(func=_run)
