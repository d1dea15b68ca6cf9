"""`moa-depthclip predict`: metric depth for image files, folders and globs, written as files.

One unreadable file does not stop the batch: it is reported by name, the others are processed, and
the exit code is 1 at the end. Files in a folder that are not images (by extension) are skipped
with a warning. File formats: see ``moa_depthclip.inference.outputs``.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections import Counter
from pathlib import Path

from moa_depthclip.cli.common import add_device_argument, add_size_argument, add_tokenizer_argument
from moa_depthclip.errors import UserFacingError
from moa_depthclip.inference.quantize import BACKENDS
from moa_depthclip.model.contract import DepthModel

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")


def register(subparsers: argparse._SubParsersAction) -> None:
    from moa_depthclip.inference.outputs import DEFAULT_FORMATS, FORMATS
    from moa_depthclip.inference.predict import DEFAULT_LONG_SIDE
    from moa_depthclip.visualize import DEFAULT_CMAP, SUGGESTED_COLORMAPS

    parser = subparsers.add_parser(
        "predict",
        help="predict metric depth for images and write PNG/NPY/colour/side-by-side/PLY files",
        description=(
            "Predict metric depth (metres) for image files, folders and glob patterns. Per image it "
            "writes <name>_depth.png (uint16 millimetres, clipped at 65.535 m), <name>_depth.npy "
            "(float32 metres), <name>_depth_color.png (with a colour bar in metres), <name>_side.png "
            "(image | depth) and optionally <name>.ply (point cloud)."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--model", required=True, help="model spec (see `load_depth_model`) or an .onnx file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="default: onnx for .onnx files, else torch; the int8 backends (dynamic quantisation) are "
        "faster on a CPU, with slightly different numbers (docs/benchmarks.md)",
    )
    parser.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders")
    parser.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated subset of {','.join(FORMATS)} (default: %(default)s)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--long-side",
        type=int,
        default=DEFAULT_LONG_SIDE,
        help="working resolution: long side in pixels, aspect kept, multiples of 32 (default %(default)s)",
    )
    add_size_argument(size, help="fixed working size instead, e.g. 416x544 (multiples of 32)")
    parser.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    add_device_argument(parser)
    add_tokenizer_argument(parser)
    parser.add_argument(
        "--cmap",
        default=DEFAULT_CMAP,
        help=f"any matplotlib colour-map name, e.g. {', '.join(SUGGESTED_COLORMAPS)} (default %(default)s)",
    )
    parser.add_argument("--vmin", type=float, help="colour range minimum in metres (default: per image)")
    parser.add_argument("--vmax", type=float, help="colour range maximum in metres (default: per image)")
    for name in ("fx", "fy", "cx", "cy"):
        parser.add_argument(f"--{name}", type=float, help="camera intrinsics in pixels for .ply")
    parser.add_argument("--ply-ascii", action="store_true", help="write ASCII instead of binary PLY")
    parser.set_defaults(func=run)


def collect_inputs(
    inputs: list[str], recursive: bool
) -> tuple[list[tuple[Path, Path]], list[Path], list[str]]:
    """Expand INPUTs into (file, output sub-path) pairs, non-image files skipped, unmatched inputs.

    A folder's images keep their relative sub-folders under the output folder, so that equal file
    names in different folders do not overwrite each other.
    """
    files: list[tuple[Path, Path]] = []
    skipped: list[Path] = []
    unmatched: list[str] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            for item in sorted(p for p in path.glob(pattern) if p.is_file()):
                if item.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((item, item.relative_to(path).with_suffix("")))
                elif not item.name.startswith("."):
                    skipped.append(item)
        elif path.is_file():
            files.append((path, Path(path.stem)))
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive) if Path(m).is_file())
            if not matches:
                unmatched.append(text)
            for item in matches:
                if item.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((item, Path(item.stem)))
                else:
                    skipped.append(item)
        else:
            unmatched.append(text)
    return _unique_names(files), skipped, unmatched


def _unique_names(files: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Make output names unique (``a.jpg`` and ``a.png`` become ``a`` and ``a_png``)."""
    seen: set[str] = set()
    unique = []
    for source, name in dict.fromkeys(files):
        candidate = name
        if str(candidate).lower() in seen:
            candidate = name.with_name(f"{name.name}_{source.suffix.lstrip('.').lower()}")
            counter = 2
            while str(candidate).lower() in seen:
                candidate = name.with_name(f"{name.name}_{counter}")
                counter += 1
        seen.add(str(candidate).lower())
        unique.append((source, candidate))
    return unique


def _parse_formats(text: str) -> tuple[str, ...]:
    from moa_depthclip.inference.outputs import FORMATS

    formats = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise UserFacingError(f"unknown --formats {unknown or text!r}; choose from {','.join(FORMATS)}")
    return formats


def _intrinsics(args: argparse.Namespace) -> object | None:
    from moa_depthclip.inference.outputs import Intrinsics

    values = [args.fx, args.fy, args.cx, args.cy]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise UserFacingError("give all of --fx --fy --cx --cy, or none (NYU intrinsics scaled to the image)")
    return Intrinsics(*values)


def load_backend(
    spec: str, backend: str | None, device: str, tokenizer_source: str | None = None
) -> DepthModel:
    """The model to predict with, served by ``backend`` (see ``moa_depthclip.inference.quantize``)."""
    from moa_depthclip.inference.quantize import load_backend as load_runtime

    return load_runtime(spec, backend, device, tokenizer_source=tokenizer_source)


RANDOM_BANNER = (
    "!" * 78 + "\n!! WARNING: this model's CLIP backbone started from RANDOM weights (no pretrained\n"
    "!! CLIP): untrained, its depth is meaningless; trained, it is far weaker than a model\n"
    "!! started from pretrained CLIP.\n" + "!" * 78
)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from moa_depthclip.inference.outputs import write_outputs
    from moa_depthclip.inference.predict import iter_predictions
    from moa_depthclip.visualize import check_colormap

    formats = _parse_formats(args.formats)
    check_colormap(args.cmap)
    if args.vmin is not None and args.vmax is not None and not args.vmin < args.vmax:
        raise UserFacingError(f"--vmin {args.vmin:g} must be below --vmax {args.vmax:g} (metres)")
    from moa_depthclip.paths import writable_dir

    writable_dir(args.out, "--out")  # before the model runs on every image
    intrinsics = _intrinsics(args)
    files, skipped, unmatched = collect_inputs(args.inputs, args.recursive)
    for item in skipped:
        print(f"warning: skipping {item}: not an image file", file=sys.stderr)
    for text in unmatched:
        print(f"error: {text}: no such file, folder or matching glob", file=sys.stderr)
    if not files:
        raise UserFacingError("no image files to process (check the INPUT paths and --recursive)")

    model = load_backend(args.model, args.backend, args.device, args.tokenizer)
    random_init = model.is_random_init
    if random_init:
        print(RANDOM_BANNER, file=sys.stderr)

    options = {"flip": args.flip, "long_side": args.long_side, "input_size": args.input_size}
    counts: Counter[str] = Counter()
    failures: list[tuple[Path, str]] = []
    predictions = iter_predictions(model, [source for source, _ in files], **options)
    for prediction in tqdm(predictions, total=len(files), desc="predict", unit="img", file=sys.stderr):
        source, name = files[prediction.index]
        error = prediction.error
        if error is None:
            try:
                written = write_outputs(
                    args.out / name,
                    prediction.image,
                    prediction.depth,
                    formats,
                    cmap=args.cmap,
                    vmin=args.vmin,
                    vmax=args.vmax,
                    intrinsics=intrinsics,
                    ply_binary=not args.ply_ascii,
                )
            except OSError as write_error:  # e.g. a full disk or a read-only output folder
                error = write_error
        if error is not None:
            failures.append((source, str(error)))
            tqdm.write(f"error: {source}: {error}", file=sys.stderr)
            continue
        counts.update(written.keys())

    print(summary(args.out, len(files), counts, failures, skipped, unmatched, random_init))
    return 1 if failures or unmatched else 0


def summary(
    out: Path,
    total: int,
    counts: Counter[str],
    failures: list[tuple[Path, str]],
    skipped: list[Path],
    unmatched: list[str],
    random_init: bool,
) -> str:
    """What was written, per kind, and what went wrong."""
    from moa_depthclip.inference.outputs import SUFFIXES

    lines = [f"Processed {total - len(failures)} of {total} images; output folder: {out}"]
    for name, count in counts.items():
        lines.append(f"  {name:<6} {count:>5} file(s)  *{SUFFIXES[name]}")
    lines.append(f"  total  {sum(counts.values()):>5} file(s)")
    if skipped:
        lines.append(f"Skipped {len(skipped)} non-image file(s).")
    if unmatched:
        lines.append(f"{len(unmatched)} input(s) matched nothing: {', '.join(unmatched)}")
    if failures:
        lines.append(f"FAILED {len(failures)} image(s):")
        lines.extend(f"  {path}: {message}" for path, message in failures)
    if random_init:
        lines.append("WARNING: the model's backbone started from RANDOM weights (no pretrained CLIP).")
    return "\n".join(lines)
