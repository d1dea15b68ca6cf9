"""`evaluate`: score one or more depth models on a dataset under a standard protocol.

Every model named with ``--model`` goes through the same ``evaluation.runner.evaluate`` call, and the
results land in one side-by-side table (plus JSON and per-image CSV with ``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from moa_depthclip.cli.common import (
    add_device_argument,
    add_size_argument,
    add_tokenizer_argument,
    add_workers_argument,
    positive_float,
    positive_int,
)
from moa_depthclip.data.nyu import GROUND_TRUTHS
from moa_depthclip.data.registry import DATASET_ALIASES, DATASET_NAMES, DatasetOptions
from moa_depthclip.errors import DataError, UserFacingError
from moa_depthclip.evaluation.protocol import CROPS, PROTOCOL_NAMES, EvalProtocol


def dataset_options(args: argparse.Namespace) -> DatasetOptions:
    """The dataset registry's options from the command line (see ``data.registry.OPTION_SPELLINGS``)."""
    return DatasetOptions(
        mat_path=args.mat,
        splits_path=args.splits,
        ground_truth=args.ground_truth,
        train_root=args.train_root,
        train_gt_root=args.train_gt_root,
        train_filenames=args.train_filenames,
        test_root=args.data_root,
        test_gt_root=args.gt_root,
        test_filenames=args.filenames,
        depth_scale=args.depth_scale,
        train_num=args.train_num,
        test_num=args.num,
        size=(args.height, args.width),
        seed=args.seed,
    )


def build_dataset(args: argparse.Namespace, split: str = "test") -> Dataset:
    """The evaluation dataset (``split="test"``) or the training split used for the constant median."""
    from moa_depthclip.data.registry import build_dataset as build

    try:
        return build(args.dataset, dataset_options(args), split)
    except DataError as error:
        if split == "train":
            raise UserFacingError(
                f"the median depth of the training split: {error} (or use constant:VALUE)"
            ) from error
        raise


def protocol_names(args: argparse.Namespace, spec: str) -> list[str]:
    """The protocols model ``spec`` is evaluated under: ``--protocol`` (repeatable), else the
    dataset's, except that DepthCLIP RN50 on NYU defaults to its official evaluation."""
    from moa_depthclip.data.registry import dataset_spec

    if args.protocol:
        return list(dict.fromkeys(args.protocol))
    default = dataset_spec(args.dataset).protocol
    if default == "nyu" and args.dataset.startswith("nyu") and spec.partition(":")[0] == "depthclip-rn50":
        return ["nyu-depthclip"]
    return [default]


def build_protocol(args: argparse.Namespace, name: str) -> EvalProtocol:
    """Protocol ``name`` with the command line's overrides."""
    from moa_depthclip.evaluation.protocol import get_protocol

    changes: dict = {}
    if args.crop is not None:
        changes["crop"] = None if args.crop == "none" else args.crop
    if args.min_depth is not None:
        changes["min_depth"] = args.min_depth
    if args.max_depth is not None:
        changes["max_depth"] = args.max_depth
    if args.median_scaling:
        changes["median_scaling"] = "image"
    if args.flip:
        changes["flip"] = True
    try:
        return get_protocol(name, **changes)
    except ValueError as error:
        raise UserFacingError(str(error)) from error


def load_model(spec: str, args: argparse.Namespace, cache: dict) -> tuple[nn.Module, str]:
    """A model and its display name. ``constant`` (no value) is the median of the training split;
    every other spec, ``constant:VALUE`` included, is parsed by the one model loader."""
    from moa_depthclip.inference.loading import load_depth_model

    if spec.strip() == "constant":
        from moa_depthclip.baselines.constant import ConstantDepth
        from moa_depthclip.data.statistics import median_valid_depth

        if "median" not in cache:
            train = build_dataset(args, split="train")
            cache["median"] = median_valid_depth(train, max_images=args.median_images)
        return ConstantDepth(cache["median"]), f"constant (train median {cache['median']:.3g} m)"
    model = load_depth_model(spec, args.device, tokenizer_source=args.tokenizer)
    if spec.partition(":")[0] == "constant":
        return model, f"constant ({float(model.value):.3g} m)"
    return model, spec


def _run(args: argparse.Namespace) -> int:
    from moa_depthclip.data.registry import canonical_dataset_name
    from moa_depthclip.evaluation.report import (
        markdown_table,
        paired_comparison_section,
        write_csv,
        write_json,
    )
    from moa_depthclip.evaluation.runner import evaluate

    args.dataset = canonical_dataset_name(args.dataset)
    if args.out:  # before the evaluation, not after it
        from moa_depthclip.paths import writable_dir

        writable_dir(args.out, "--out")
    specs = args.model or ["constant"]
    input_size = args.input_size
    protocols = {spec: [build_protocol(args, name) for name in protocol_names(args, spec)] for spec in specs}
    dataset = build_dataset(args, split="test")
    if len(dataset) == 0:
        raise UserFacingError("the evaluation dataset is empty")
    cache: dict = {}
    results = []
    for spec in specs:
        model, name = load_model(spec, args, cache)
        for protocol in protocols[spec]:
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
    table = markdown_table(results, title=title) + paired_comparison_section(results)
    print(table, end="")
    skipped = results[0].skipped
    if skipped:  # the same images for every model: no valid ground-truth pixel, or no ground truth
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"not scored (no valid ground-truth pixel): {shown}", file=sys.stderr)
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
        "--model constant --model depthclip-rn50:RN50.pt --out results/ (DepthCLIP RN50 is scored under "
        "nyu-depthclip, its official evaluation, unless --protocol is given)",
    )
    data = parser.add_argument_group("dataset")
    data.add_argument(
        "--dataset",
        choices=DATASET_NAMES + tuple(DATASET_ALIASES),
        default="synthetic",
        help="a dataset of the registry (the names training uses too)",
    )
    data.add_argument("--mat", help="nyu-mat: nyu_depth_v2_labeled.mat")
    data.add_argument("--splits", help="nyu-mat: splits.mat")
    data.add_argument(
        "--ground-truth",
        choices=GROUND_TRUTHS,
        default="raw",
        help="nyu-mat: raw Kinect depth as the sync test split holds it (default; what published NYU "
        "numbers use) or the filled-in depths",
    )
    data.add_argument("--data-root", help="nyu-sync/kitti: root of the image paths; folder: the folder")
    data.add_argument("--gt-root", help="nyu-sync/kitti: root of the depth paths (default: --data-root)")
    data.add_argument("--filenames", help="nyu-sync/kitti: filenames file of the evaluation split")
    data.add_argument("--train-filenames", help="nyu-sync/kitti: training filenames file (for 'constant')")
    data.add_argument("--train-root", help="training data root for 'constant' (default: --data-root)")
    data.add_argument("--train-gt-root", help="nyu-sync/kitti: training depth root (default: --gt-root)")
    data.add_argument(
        "--depth-scale", type=positive_float, help="PNG value per metre (default 1000; kitti 256)"
    )
    data.add_argument("--num", type=positive_int, default=100, help="synthetic: test scenes (default 100)")
    data.add_argument(
        "--train-num", type=positive_int, default=200, help="synthetic: training scenes for 'constant'"
    )
    data.add_argument("--height", type=int, default=240, help="synthetic: render height (default 240)")
    data.add_argument("--width", type=int, default=320, help="synthetic: render width (default 320)")
    data.add_argument("--seed", type=int, default=0, help="synthetic: seed (default 0)")
    data.add_argument("--limit", type=positive_int, help="evaluate only the first N images")

    proto = parser.add_argument_group("protocol")
    proto.add_argument(
        "--protocol",
        action="append",
        choices=PROTOCOL_NAMES,
        help="repeat to report every model under several protocols side by side (e.g. --protocol nyu "
        "--protocol nyu-adadepthclip); default: the dataset's (nyu-depthclip for depthclip-rn50 on NYU)",
    )
    proto.add_argument(
        "--crop", choices=("none", *(c for c in CROPS if c)), help="override the protocol's crop"
    )
    proto.add_argument("--min-depth", type=positive_float)
    proto.add_argument("--max-depth", type=positive_float)
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
    add_tokenizer_argument(run)
    add_size_argument(
        run, help="model input HxW, multiples of 32 (default: the protocol's, else the image size rounded)"
    )
    run.add_argument(
        "--median-images", type=positive_int, default=200, help="training images sampled for 'constant'"
    )
    run.add_argument("--batch-size", type=positive_int, default=4)
    add_device_argument(run)
    add_workers_argument(run)
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--out", help="write metrics.json, per_image.csv and results.md here")
    parser.set_defaults(func=_run)
