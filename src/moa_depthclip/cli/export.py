"""`moa-depthclip export --onnx OUT.onnx --model SPEC`: an ONNX graph checked against PyTorch."""

from __future__ import annotations

import argparse
import json
import sys

from moa_depthclip.cli.common import add_size_argument, add_tokenizer_argument
from moa_depthclip.errors import UserFacingError

# A graph whose depth differs from PyTorch's by more than this (relative) is reported as a failure.
DEFAULT_TOLERANCE = 1e-3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a depth model to ONNX (dynamic batch/height/width) and verify it against PyTorch",
        description=(
            "Export a depth model to ONNX: input 'images' float32 (B, 3, H, W) RGB in [0, 1] "
            "(H, W multiples of 32), output 'depth' float32 (B, 1, H, W) metres. The graph is checked "
            "with onnx.checker and its output compared with PyTorch on random images."
        ),
    )
    parser.add_argument("--onnx", required=True, help="output .onnx file")
    parser.add_argument("--model", required=True, help="model spec, e.g. a saved model folder or 'random'")
    add_size_argument(
        parser, default=(480, 640), help="size the graph is traced (and verified) at, HxW (default 480x640)"
    )
    # Deprecated spellings of --input-size, still accepted.
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    add_tokenizer_argument(parser)
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default %(default)s)")
    parser.add_argument("--static", action="store_true", help="fix batch 1 and H x W instead of dynamic axes")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with PyTorch")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="maximum relative depth error accepted in verification (default %(default)g)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from moa_depthclip.inference.export_onnx import OnnxDepthModel, compare_with_torch, export_onnx
    from moa_depthclip.inference.loading import load_depth_model

    if not args.onnx.lower().endswith(".onnx"):
        raise UserFacingError(f"--onnx must name a .onnx file, got {args.onnx}")
    height, width = args.input_size
    if args.height is not None or args.width is not None:
        print("warning: --height/--width are deprecated: write --input-size HxW", file=sys.stderr)
        height, width = args.height or height, args.width or width
    model = load_depth_model(args.model, device="cpu", tokenizer_source=args.tokenizer)
    if model.is_random_init:
        print(
            "WARNING: the exported model's backbone started from RANDOM weights (no pretrained CLIP).",
            file=sys.stderr,
        )
    path = export_onnx(model, args.onnx, height, width, opset=args.opset, dynamic=not args.static)
    size_mb = path.stat().st_size / 2**20
    print(
        f"wrote {path} ({size_mb:.1f} MiB, opset {args.opset}, {'static' if args.static else 'dynamic'} axes)"
    )
    if args.no_verify:
        return 0
    sizes = [(height, width)]
    batches: tuple[int, ...] = (1,)
    if not args.static:
        sizes.append((height + 32, width - 32 if width > 32 else width + 32))
        batches = (1, 2)
    report = compare_with_torch(model, OnnxDepthModel(path), sizes, batches)
    report.update({"sizes": [list(s) for s in sizes], "batch_sizes": list(batches)})
    print("verification against PyTorch: " + json.dumps(report))
    if report["max_rel_error"] > args.tolerance:
        print(
            f"error: ONNX output differs from PyTorch by {report['max_rel_error']:.2e} (relative) "
            f"> tolerance {args.tolerance:g}",
            file=sys.stderr,
        )
        return 1
    return 0
