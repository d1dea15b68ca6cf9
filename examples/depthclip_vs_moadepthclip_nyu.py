"""DepthCLIP (zero-shot) against MoA-DepthCLIP on the NYU Depth V2 test split (654 images).

    python examples/depthclip_vs_moadepthclip_nyu.py \
        --mat data/nyu_depth_v2_labeled.mat --splits data/splits.mat \
        --depthclip depthclip-vit:openai/clip-vit-base-patch32 --moa runs/nyu/best

Each model is scored under its own published protocol (DepthCLIP: the official DepthCLIP
evaluation, `nyu-depthclip`; MoA-DepthCLIP: the BTS/AdaBins standard, `nyu`) and, for a like-for-like
row, DepthCLIP also under `nyu`. `moa-depthclip evaluate` has every option (other datasets, CSV/JSON
output, per-image rows).
"""

from __future__ import annotations

import argparse

from moa_depthclip.data.registry import DatasetOptions, build_dataset
from moa_depthclip.evaluation.protocol import get_protocol
from moa_depthclip.evaluation.runner import evaluate
from moa_depthclip.inference.loading import load_depth_model

METRICS = ("abs_rel", "rmse", "delta1")


def main(argv: list[str] | None = None) -> list[tuple[str, str, dict[str, float]]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mat", required=True, help="nyu_depth_v2_labeled.mat")
    parser.add_argument("--splits", required=True, help="splits.mat (official train/test indices)")
    parser.add_argument("--depthclip", default="depthclip-vit", help="DepthCLIP spec or saved folder")
    parser.add_argument("--moa", required=True, help="MoA-DepthCLIP saved folder or run folder")
    parser.add_argument("--max-images", type=int, help="only the first N test images (a quick look)")
    args = parser.parse_args(argv)

    test = build_dataset("nyu-mat", DatasetOptions(mat_path=args.mat, splits_path=args.splits), "test")
    runs = [
        ("DepthCLIP", args.depthclip, "nyu-depthclip"),
        ("DepthCLIP", args.depthclip, "nyu"),
        ("MoA-DepthCLIP", args.moa, "nyu"),
    ]
    rows = []
    models = {}
    for name, spec, protocol in runs:
        model = models.setdefault(spec, load_depth_model(spec))
        result = evaluate(model, test, get_protocol(protocol), max_images=args.max_images, progress=False)
        rows.append((name, protocol, result.mean))
    print(f"| model | protocol | {' | '.join(METRICS)} |")
    print("| --- | --- |" + " --- |" * len(METRICS))
    for name, protocol, mean in rows:
        print(f"| {name} | {protocol} | " + " | ".join(f"{mean[m]:.3f}" for m in METRICS) + " |")
    return rows


if __name__ == "__main__":
    main()
