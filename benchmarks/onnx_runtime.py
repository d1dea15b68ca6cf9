"""PyTorch eager against ONNX Runtime (CPU) and the int8 runtimes, same MoA-DepthCLIP weights and input.

Candidates, timed round by round against PyTorch eager (``--compile``: compiled) in the same run:

* ``onnxruntime``      - the package's export (``moa_depthclip.inference.export_onnx``), one
  dynamic-size float32 graph, ONNX Runtime with every graph optimisation;
* ``onnxruntime_int8`` - the ``onnx-int8`` backend: that graph with int8 dynamic quantisation of
  every MatMul/Gemm (``moa_depthclip.inference.quantize``);
* ``torch_int8``       - the ``torch-int8`` backend: ``torch.ao`` dynamic quantisation of every
  ``nn.Linear``.

ONNX Runtime uses as many intra-op threads as torch, so the comparison is thread-fair. The float32
graphs' agreement with PyTorch is measured (max abs difference); the int8 ones change the numerics,
and their accuracy change is measured on trained weights by ``benchmarks/accuracy.py``.
Target: float32 ONNX Runtime at least 1.3x the eager throughput at every size.
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
    log,
    onnxruntime_spinning,
    random_images,
    time_setting,
)

TARGET_SPEEDUP = 1.3
GRAPHS = {"onnxruntime": "onnx", "onnxruntime_int8": "onnx-int8"}
FLOAT_GRAPHS = ("onnxruntime",)


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
    """Eager vs the ONNX Runtime and int8 candidates per (size, batch), plus export times and sizes.

    Measured on the CPU only; with ``--device cuda`` the section is skipped (the GPU figures are
    the eager/compiled ones).
    """
    if runtime.is_cuda:
        return {"skipped": "ONNX Runtime and int8 are benchmarked on the CPU only", "records": []}
    try:
        import onnxruntime  # noqa: F401

        from moa_depthclip.inference.export_onnx import INPUT_NAME, OUTPUT_NAME
        from moa_depthclip.inference.quantize import build_onnx, quantize_onnx, quantize_torch
    except ImportError as error:
        return {"skipped": f"ONNX export/runtime unavailable: {error}", "records": []}

    model = spec.build_moa().eval()
    eager = runtime.prepare(model)
    int8 = quantize_torch(model)
    graphs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        sessions = {}
        paths = {name: Path(folder) / f"{backend}.onnx" for name, backend in GRAPHS.items()}
        for name, backend in GRAPHS.items():
            log(f"onnx: building the {backend} graph (dynamic batch/height/width)")
            if backend == "onnx-int8":  # = the float32 graph, quantised: reuse the one just built
                build = lambda name=name: quantize_onnx(paths["onnxruntime"], paths[name])  # noqa: E731
            else:
                build = lambda name=name, backend=backend: build_onnx(model, backend, paths[name])  # noqa: E731
            seconds = _timed(build)
            graphs[name] = {
                "backend": backend,
                "build_seconds": seconds,
                "mb": paths[name].stat().st_size / 2**20,
            }
            sessions[name] = onnx_session(paths[name], runtime.threads)
        records = []
        for height, width in sizes:
            for batch in batches:
                images = random_images(batch, height, width, runtime.device)
                array = np.ascontiguousarray(images.numpy())
                log(f"onnx {height}x{width} batch {batch}")
                candidates: dict[str, Callable[[], Any]] = {"torch": lambda images=images: eager(images)}
                for name, session in sessions.items():
                    candidates[name] = lambda session=session, array=array: session.run(
                        [OUTPUT_NAME], {INPUT_NAME: array}
                    )
                candidates["torch_int8"] = lambda images=images: int8(images)
                with inference_context(runtime):
                    reference = eager(images).depth.float().numpy()
                errors = {
                    name: float(
                        np.abs(sessions[name].run([OUTPUT_NAME], {INPUT_NAME: array})[0] - reference).max()
                    )
                    for name in FLOAT_GRAPHS
                }
                timed = time_setting(candidates, runtime, warmup, repeats, batch, baseline="torch")
                records.append(
                    {
                        "size": [height, width],
                        "batch": batch,
                        "tokens": spec.tokens(height, width),
                        **timed.summaries,
                        "speedup": timed.ratios,
                        "max_abs_error_m": errors,
                        "target": TARGET_SPEEDUP,
                        "meets_target": timed.ratios["onnxruntime"]["median"] >= TARGET_SPEEDUP,
                    }
                )
    return {
        "graphs": graphs,
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
