"""Faster runtimes for a depth model: fused ONNX Runtime graphs and int8 dynamic quantisation.

The backends a user can choose (``moa-depthclip predict --backend``):

* ``torch``      - PyTorch eager, float32 (the reference);
* ``torch-int8`` - ``torch.ao`` dynamic quantisation: every ``nn.Linear`` gets int8 weights and
  quantises its input per batch at run time (convolutions, norms and the head stay float32);
* ``onnx``       - the exported float32 graph in ONNX Runtime (all graph optimisations);
* ``onnx-int8``  - that graph with ONNX Runtime's dynamic quantisation of every MatMul/Gemm (int8
  weights per tensor, activations quantised at run time, attention's matmuls included): the
  cheapest on CPU.

(A graph exported with explicit-matmul attention and passed through ONNX Runtime's transformer
fusions - fused Attention, SkipLayerNorm, BiasGelu, QuickGelu - was measured as well: no faster
than ``onnx`` on CPU, and its int8 version slower than ``onnx-int8``, so it is not offered; see
docs/benchmarks.md.)

The int8 backends change the numerics (the benchmarks measure the accuracy change on held-out
synthetic scenes against float32; see docs/benchmarks.md), so they are a choice, never the default.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moa_depthclip.errors import UserFacingError

BACKENDS = ("torch", "torch-int8", "onnx", "onnx-int8")
ONNX_BACKENDS = ("onnx", "onnx-int8")
# The size graphs are traced at; every exported graph here has dynamic batch, height and width.
EXPORT_SIZE = (416, 544)


class BackendError(UserFacingError, ValueError):
    """A backend cannot serve the model asked for."""


# -------------------------------------------------------------------------------------------------
# ONNX


def quantize_onnx(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """int8 dynamic quantisation of the graph's MatMul/Gemm (weights int8, activations quantised at run time).

    Convolutions stay float32: ONNX Runtime's integer convolutions are slower than its float ones
    on CPU, and the model's convolutions are a small share of its cost.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
            # Where ONNX shape inference gives up on a tensor, it is float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return target


def build_onnx(model: nn.Module, backend: str, path: str | os.PathLike) -> Path:
    """The graph a backend runs, written to ``path`` (``onnx`` or ``onnx-int8``)."""
    from moa_depthclip.inference.export_onnx import export_onnx

    if backend not in ONNX_BACKENDS:
        raise BackendError(f"backend {backend!r} has no ONNX graph; choose one of {', '.join(ONNX_BACKENDS)}")
    path = Path(path)
    if backend == "onnx":
        return export_onnx(model, path, *EXPORT_SIZE, dynamic=True)
    with tempfile.TemporaryDirectory() as folder:
        plain = export_onnx(model, Path(folder) / "float32.onnx", *EXPORT_SIZE, dynamic=True)
        return quantize_onnx(plain, path)


# -------------------------------------------------------------------------------------------------
# torch


def quantize_torch(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers run int8 dynamic quantisation (CPU only)."""
    from torch.ao.quantization import quantize_dynamic

    copied = copy.deepcopy(model).to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        return quantize_dynamic(copied, {nn.Linear}, dtype=torch.qint8)


# -------------------------------------------------------------------------------------------------
# one entry point for the command line


def load_backend(
    spec: str,
    backend: str | None,
    device: str = "cpu",
    threads: int | None = None,
    tokenizer_source: str | None = None,
) -> Any:
    """The model ``spec`` served by ``backend`` (default: ``onnx`` for .onnx files, else ``torch``).

    An ``.onnx`` file runs as it is under ``onnx`` (and ``onnx-int8`` quantises it first); torch
    model specs are exported on the fly for the ONNX backends (a few seconds to a minute).
    """
    from moa_depthclip.inference.export_onnx import OnnxDepthModel
    from moa_depthclip.inference.loading import load_depth_model

    is_onnx_file = spec.lower().endswith(".onnx")
    backend = backend or ("onnx" if is_onnx_file else "torch")
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if (backend in ONNX_BACKENDS or backend == "torch-int8") and device != "cpu":
        raise BackendError(f"--backend {backend} runs on the CPU only; drop --device {device}")
    if is_onnx_file:
        if backend == "onnx":
            return OnnxDepthModel(spec, threads=threads)
        if backend == "onnx-int8":
            with tempfile.TemporaryDirectory() as folder:
                quantized = quantize_onnx(spec, Path(folder) / "int8.onnx")
                return OnnxDepthModel(quantized, threads=threads)
        raise BackendError(
            f"--backend {backend} needs a PyTorch model (a run folder, checkpoint or hub id), not an "
            f".onnx file: {spec}"
        )
    model = load_depth_model(
        spec, device=device if backend == "torch" else "cpu", tokenizer_source=tokenizer_source
    )
    if backend == "torch":
        return model
    if backend == "torch-int8":
        return quantize_torch(model)
    with tempfile.TemporaryDirectory() as folder:
        graph = build_onnx(model, backend, Path(folder) / f"{backend}.onnx")
        return OnnxDepthModel(graph, threads=threads)
