"""CPU latency per image at 480x640: PyTorch eager vs ONNX Runtime, same model, same run.

    python benchmarks/predict_latency.py [--threads 2] [--runs 7] [--model SPEC]

Default model: MoA-DepthCLIP with the full ViT-B/32 shapes and random weights (latency does not
depend on the weights). Times one forward pass of a (1, 3, 480, 640) batch (no file I/O, no resizing),
after warm-up, alternating the two backends, and prints the median and spread of ``--runs`` runs plus ONNX-vs-PyTorch agreement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import interleaved
from moa_depthclip.config import ModelConfig
from moa_depthclip.inference.export_onnx import OnnxDepthModel, compare_with_torch, export_onnx
from moa_depthclip.model.moa_depthclip import MoADepthCLIP


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--model", help="model spec for load_depth_model (default: random ViT-B/32 shapes)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.model:
        from moa_depthclip.inference.loading import load_depth_model

        model = load_depth_model(args.model)
    else:
        model = MoADepthCLIP(ModelConfig()).eval()
    images = torch.rand(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))

    with tempfile.TemporaryDirectory() as directory:
        path = export_onnx(model, Path(directory) / "model.onnx", args.height, args.width)
        onnx_model = OnnxDepthModel(path, threads=args.threads)
        with torch.inference_mode():
            samples = interleaved(
                {"torch": lambda: model(images), "onnxruntime": lambda: onnx_model(images)},
                warmup=2,
                repeats=args.runs,
            )
        eager, runtime = samples["torch"], samples["onnxruntime"]
        agreement = compare_with_torch(model, onnx_model, [(args.height, args.width)], batch_sizes=(1,))

    def summary(times: list[float]) -> dict[str, float]:
        return {
            "median_ms": round(1000 * statistics.median(times), 1),
            "min_ms": round(1000 * min(times), 1),
            "max_ms": round(1000 * max(times), 1),
        }

    print(
        json.dumps(
            {
                "input": [1, 3, args.height, args.width],
                "threads": args.threads,
                "runs": args.runs,
                "torch": torch.__version__,
                "pytorch_eager": summary(eager),
                "onnxruntime": summary(runtime),
                "onnx_vs_pytorch": agreement,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
