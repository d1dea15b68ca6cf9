"""Flags every command spells the same way: size, device, tokenizer, workers.

* ``--input-size HxW`` (e.g. ``416x544``): the size images are resized to before the model, both
  multiples of 32. The older ``--input-size H W`` (and ``info --size H W``) still parse, with a
  deprecation warning (:func:`normalise_legacy_sizes` rewrites them before parsing).
* ``--device DEVICE``: a torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
* ``--tokenizer DIR_OR_HUB_ID``: the CLIP tokenizer for sources that carry none.
* ``--num-workers N``: data-loading worker processes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from moa_depthclip.errors import UserFacingError

logger = logging.getLogger(__name__)

MULTIPLE = 32
SIZE_FLAGS = ("--input-size", "--size")


def parse_size(text: str, flag: str = "--input-size") -> tuple[int, int]:
    """``"416x544"`` -> (416, 544); both sides positive multiples of 32, else a one-line error."""
    try:
        height, width = (int(value) for value in str(text).lower().replace("×", "x").split("x"))
    except ValueError:
        raise UserFacingError(f"{flag} must look like HxW, e.g. 416x544; got {text!r}") from None
    if height <= 0 or width <= 0 or height % MULTIPLE or width % MULTIPLE:
        raise UserFacingError(f"{flag} {text}: height and width must be positive multiples of {MULTIPLE}")
    return height, width


def _size_type(flag: str) -> Callable[[str], tuple[int, int]]:
    def convert(text: str) -> tuple[int, int]:
        try:
            return parse_size(text, flag)
        except UserFacingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_size_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    help: str,
    default: tuple[int, int] | None = None,
    repeat: bool = False,
    flag: str = "--input-size",
) -> None:
    """``--input-size HxW`` (``repeat``: may be given several times, a list)."""
    parser.add_argument(
        flag,
        type=_size_type(flag),
        default=default,
        action="append" if repeat else "store",
        metavar="HxW",
        dest="input_size",
        help=help,
    )


def number_type(kind: type, low: float, inclusive: bool = True) -> Callable[[str], float]:
    """An argparse ``type``: ``kind`` (int or float) at least ``low`` (above it when not inclusive)."""

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if (
            value != value
            or value in (float("inf"), float("-inf"))
            or value < low
            or (value == low and not inclusive)
        ):
            raise argparse.ArgumentTypeError(f"{text} must be {'at least' if inclusive else 'above'} {low:g}")
        return value

    return convert


positive_int = number_type(int, 1)
non_negative_int = number_type(int, 0)
positive_float = number_type(float, 0, inclusive=False)


def device_type(text: str) -> str:
    """An argparse ``type`` for ``--device``: a device this machine has (``auto``: cuda if any, else cpu)."""
    import torch

    from moa_depthclip.config_checks import device_problem

    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"

    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(
            f"{text} {problem}" if problem.startswith("is ") else f"{text}: {problem}"
        )
    return text


def add_device_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: str | None = "cpu"
) -> None:
    """``--device``: where the model runs."""
    described = f"(default {default})" if default else "(default: the configuration's)"
    parser.add_argument(
        "--device",
        default=default,
        type=device_type,
        help=f"torch device: cpu, cuda, cuda:1, mps {described}",
    )


def add_tokenizer_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--tokenizer``: for DepthCLIP/CLIP checkpoint files, which carry no tokenizer."""
    parser.add_argument(
        "--tokenizer",
        metavar="DIR_OR_HUB_ID",
        help="CLIP tokenizer for CLIP/DepthCLIP checkpoint files, which carry none (default: files next "
        "to the checkpoint, then the openai/clip-vit-base-patch32 cache)",
    )


def add_workers_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int | None = 0
) -> None:
    """``--num-workers``: data-loading processes."""
    described = f"(default {default})" if default is not None else "(default: the configuration's)"
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=default,
        metavar="N",
        help=f"data-loading worker processes {described}",
    )


def add_overrides_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE ...``: configuration overrides (``args.overrides``), repeatable."""
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=help
    )


def config_overrides(args: argparse.Namespace) -> list[str]:
    """``--device`` / ``--num-workers`` of the training commands as ``--set`` overrides
    (``run.device``, ``data.num_workers``); unset flags leave the configuration's values."""
    overrides = []
    if getattr(args, "device", None):
        overrides.append(f"run.device={args.device}")
    if getattr(args, "num_workers", None) is not None:
        overrides.append(f"data.num_workers={args.num_workers}")
    return overrides


def normalise_legacy_sizes(argv: Sequence[str]) -> list[str]:
    """Rewrite the old two-number spelling ``--input-size H W`` / ``--size H W`` as ``HxW``."""
    args = list(argv)
    out: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        following = args[index + 1 : index + 3]
        if token in SIZE_FLAGS and len(following) == 2 and all(part.isdigit() for part in following):
            merged = "x".join(following)
            logger.warning("%s %s is deprecated: write %s %s", token, " ".join(following), token, merged)
            out += [token, merged]
            index += 3
            continue
        out.append(token)
        index += 1
    return out
