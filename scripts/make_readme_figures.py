"""Make the README's pictures from a real demo run, so that they stay true.

    python scripts/make_readme_figures.py                        # runs `moa-depthclip demo` (4 minutes)
    python scripts/make_readme_figures.py --demo-dir demo_output  # reuse a finished demo's output
    python scripts/make_readme_figures.py --run runs/synthetic    # a finished synthetic-scenes run
    python scripts/make_readme_figures.py --app                   # also the web app's screenshot

Writes into ``docs/images`` (``--out``):

* ``demo_panel.png``: image | ground truth | prediction | |error| for a held-out synthetic scene,
  the demo report's first panel (drawn by ``moa_depthclip.visualize.make_panel``);
* ``training_curve.png``: the demo's training loss and validation AbsRel against optimizer step
  (``visualize.plot_curves``);
* ``app.png`` with ``--app``: the web app in headless Chromium after one upload, serving the demo's
  trained model (``scripts/browser_check.py``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

FIGURES = {"demo_panel.png": "panel_0.png", "training_curve.png": "training_curve.png"}


def make_figures(
    out: Path,
    demo_dir: Path | None = None,
    minutes: float = 4.0,
    quick: bool = False,
    steps: int | None = None,
) -> dict[str, Path]:
    """Run the demo into ``demo_dir`` unless it already holds a report, then copy its figures to ``out``."""
    demo_dir = demo_dir or out / ".demo"
    if not (demo_dir / "report.md").is_file():
        from moa_depthclip.demo import run_demo

        run_demo(demo_dir, minutes=minutes, steps=steps, quick=quick)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, source in FIGURES.items():
        path = demo_dir / source
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the demo in {demo_dir} did not write it")
        shutil.copyfile(path, out / name)
        written[name] = out / name
    return written


def figures_from_run(out: Path, run_dir: Path, count: int = 4) -> dict[str, Path]:
    """The same figures from a finished training run on the synthetic scenes (``moa-depthclip train``
    with ``data.dataset=synthetic``): its best model on held-out test scenes, its metrics.jsonl.

    Drawn by the demo report's own figure writers, so that both look the same."""
    import tempfile

    from moa_depthclip.data.synthetic import SyntheticScenes
    from moa_depthclip.demo.report import _curve, _panels
    from moa_depthclip.inference.loading import load_depth_model
    from moa_depthclip.training.config import build_config

    config = build_config(config_file=run_dir / "train_config.yaml")
    if config.data.dataset != "synthetic":
        raise SystemExit(
            f"{run_dir} was trained on {config.data.dataset}; --run needs a synthetic-scenes run"
        )
    height, width = config.data.render_size
    test = SyntheticScenes(count, height, width, config.data.synthetic_seed, "test")
    model = load_depth_model(str(run_dir))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        _panels(Path(tmp), model, test)
        shutil.copyfile(Path(tmp) / "panel_0.png", out / "demo_panel.png")
    if _curve(run_dir / "metrics.jsonl", out / "training_curve.png") is None:
        raise SystemExit(f"{run_dir / 'metrics.jsonl'} has fewer than two training-loss records")
    return {"demo_panel.png": out / "demo_panel.png", "training_curve.png": out / "training_curve.png"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="where the pictures go")
    parser.add_argument(
        "--demo-dir", type=Path, help="a demo output folder to reuse (or to run the demo into)"
    )
    parser.add_argument("--minutes", type=float, default=4.0, help="demo time budget (default %(default)s)")
    parser.add_argument("--steps", type=int, help="train exactly this many steps instead")
    parser.add_argument(
        "--quick", action="store_true", help="toy-sized demo (pipeline check, not for the README)"
    )
    parser.add_argument(
        "--app", action="store_true", help="also take the web app's screenshot (needs Chromium)"
    )
    parser.add_argument("--run", type=Path, help="use a finished synthetic-scenes training run instead")
    args = parser.parse_args(argv)
    demo_dir = args.demo_dir or args.out / ".demo"
    if args.run:
        written = figures_from_run(args.out, args.run)
        model = args.run / "best"
    else:
        written = make_figures(args.out, demo_dir, args.minutes, args.quick, args.steps)
        model = demo_dir / "run" / "best"
    if args.app:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import browser_check

        status = browser_check.main(["--model", str(model), "--screenshot", str(args.out / "app.png")])
        if status != 0:
            return status
        written["app.png"] = args.out / "app.png"
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
