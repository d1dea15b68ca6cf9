"""The `moa-depthclip` command.

Sub-commands are discovered: every module in this package that defines ``register(subparsers)``
adds itself, so a new command is one new file and no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import moa_depthclip
from moa_depthclip import cli as cli_package
from moa_depthclip.errors import UserFacingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moa-depthclip",
        description="MoA-DepthCLIP: metric monocular depth from CLIP with a Mixture-of-Adapters.",
    )
    parser.add_argument("--version", action="version", version=f"moa-depthclip {moa_depthclip.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if module_info.name in ("main", "common"):
            continue
        module = importlib.import_module(f"{cli_package.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
