"""PyTorch (eager, or compiled with ``--compile``) against ONNX Runtime (CPU) for the same MoA-DepthCLIP weights and input.

The graph comes from the package's own exporter (``moa_depthclip.inference.export_onnx``), one
dynamic-size graph for every input, as users get it. ONNX Runtime runs with all graph
optimisations and as many intra-op threads as torch uses, so the comparison is thread-fair.
Target: ONNX Runtime at least 1.3x the eager throughput.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    ModelSpec,
    Runtime,
    inference_context,
    interleaved,
    log,
    onnxruntime_spinning,
    random_images,
    speed_ratio,
    summarise,
)

TARGET_SPEEDUP = 1.3


def onnx_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with every graph optimisation and ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spinning = "1" if onnxruntime_spinning() else "0"  # the same wait policy as torch's OpenMP threads
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(
    spec: ModelSpec,
    runtime: Runtime,
    sizes: list[tuple[int, int]],
    batches: list[int],
    warmup: int,
    repeats: int,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Eager vs ONNX Runtime records per (size, batch), plus the export time and graph size.

    ONNX Runtime is measured on the CPU only; with ``--device cuda`` the section is skipped (the
    GPU figures are the eager/compiled ones).
    """
    if runtime.is_cuda:
        return {"skipped": "ONNX Runtime is benchmarked on the CPU execution provider only", "records": []}
    try:
        import onnxruntime  # noqa: F401

        from moa_depthclip.inference.export_onnx import INPUT_NAME, OUTPUT_NAME, export_onnx
    except ImportError as error:
        return {"skipped": f"ONNX export/runtime unavailable: {error}", "records": []}

    model = spec.build_moa().eval()
    eager = runtime.prepare(model)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        path = Path(folder) / "moa_depthclip.onnx"
        height, width = sizes[0]
        log(f"onnx: exporting at {height}x{width} (dynamic batch/height/width)")
        export_seconds = _timed(lambda: export_onnx(model, path, height, width, dynamic=True))
        graph_mb = path.stat().st_size / 2**20
        session = onnx_session(path, runtime.threads)
        records = []
        for height, width in sizes:
            for batch in batches:
                images = random_images(batch, height, width, runtime.device)
                array = np.ascontiguousarray(images.numpy())
                log(f"onnx {height}x{width} batch {batch}")
                with inference_context(runtime):
                    eager_depth = eager(images).depth
                    ort_depth = session.run([OUTPUT_NAME], {INPUT_NAME: array})[0]
                    samples = interleaved(
                        {
                            "torch": lambda images=images: eager(images),
                            "onnxruntime": lambda array=array: session.run(
                                [OUTPUT_NAME], {INPUT_NAME: array}
                            ),
                        },
                        warmup,
                        repeats,
                    )
                ratio = speed_ratio(samples["torch"], samples["onnxruntime"])
                records.append(
                    {
                        "size": [height, width],
                        "batch": batch,
                        "tokens": spec.tokens(height, width),
                        "torch": summarise(samples["torch"], batch),
                        "onnxruntime": summarise(samples["onnxruntime"], batch),
                        "speedup": ratio,
                        "max_abs_error_m": float(np.abs(ort_depth - eager_depth.float().numpy()).max()),
                        "target": TARGET_SPEEDUP,
                        "meets_target": ratio["median"] >= TARGET_SPEEDUP,
                    }
                )
    return {
        "export_seconds": export_seconds,
        "graph_mb": graph_mb,
        "onnxruntime_options": {
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "intra_op_num_threads": runtime.threads,
            "inter_op_num_threads": 1,
            "provider": "CPUExecutionProvider",
            "allow_spinning": onnxruntime_spinning(),
        },
        "records": records,
    }


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
