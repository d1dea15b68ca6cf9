"""The `moa-depthclip` command.

Sub-commands are discovered: every module in this package that defines ``register(subparsers)``
adds itself, so a new command is one new file and no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import moa_depthclip
from moa_depthclip import cli as cli_package
from moa_depthclip.cli.common import normalise_legacy_sizes
from moa_depthclip.errors import UserFacingError, user_message


class OneLineErrorParser(argparse.ArgumentParser):
    """A bad flag ends in one line naming it and pointing to --help, not in the whole usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="moa-depthclip",
        description="MoA-DepthCLIP: metric monocular depth from CLIP with a Mixture-of-Adapters.",
    )
    parser.add_argument("--version", action="version", version=f"moa-depthclip {moa_depthclip.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for module_info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if module_info.name in ("main", "common"):
            continue
        module = importlib.import_module(f"{cli_package.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message (redirections included)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging() -> None:
    """The package's log messages (INFO and up) go to stderr, once, without other libraries' logs."""
    package = logging.getLogger("moa_depthclip")
    if not any(isinstance(handler, _StderrHandler) for handler in package.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(normalise_legacy_sizes(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except UserFacingError as error:
        print(f"error: {user_message(error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
