"""`moa-depthclip app`: the web page (Gradio, optional extra `[app]`) on localhost."""

from __future__ import annotations

import argparse
import importlib.util

from moa_depthclip.errors import UserFacingError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app",
        help="web page: upload images, see and download metric depth (needs the [app] extra)",
        description=(
            "Start a web page on this machine: upload images, pick a model, see the coloured depth with a "
            "colour bar in metres and a comparison slider, and download 16-bit PNG (mm), .npy (m) and .ply "
            "files. The random-weights MoA-DepthCLIP is always offered (clearly marked) for trying the page."
        ),
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="SPEC",
        help="a model to offer (repeatable): a saved folder, a run folder, depthclip-vit:SOURCE, ...",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s: only this machine)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise UserFacingError("the web app needs Gradio: pip install 'moa-depthclip[app]'")
    from moa_depthclip.app.ui import launch

    print(f"Open http://{args.host}:{args.port} in a browser (Ctrl+C stops the app).")
    launch(args.model, host=args.host, port=args.port, device=args.device)
    return 0
