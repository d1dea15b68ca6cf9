"""Faster runtimes for a depth model: fused ONNX Runtime graphs and int8 dynamic quantisation.

The backends a user can choose (``moa-depthclip predict --backend``):

* ``torch``      - PyTorch eager, float32 (the reference);
* ``torch-int8`` - ``torch.ao`` dynamic quantisation: every ``nn.Linear`` gets int8 weights and
  quantises its input per batch at run time (convolutions, norms and the head stay float32);
* ``onnx``       - the exported float32 graph in ONNX Runtime (all graph optimisations);
* ``onnx-fast``  - the same weights exported with the plain-matmul attention that ONNX Runtime's
  transformer optimizer recognises, so that attention, LayerNorm + residual, bias + GELU and
  QuickGELU run as fused kernels; same numerics as ``onnx`` up to float rounding;
* ``onnx-int8``  - the ``onnx-fast`` graph with ONNX Runtime's dynamic quantisation of its
  MatMul/Gemm weights (int8, per tensor), the cheapest on CPU.

The int8 backends change the numerics (the benchmarks measure the accuracy change on held-out
synthetic scenes against float32; see docs/benchmarks.md), so they are a choice, never the default.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moa_depthclip.errors import UserFacingError

BACKENDS = ("torch", "torch-int8", "onnx", "onnx-fast", "onnx-int8")
ONNX_BACKENDS = ("onnx", "onnx-fast", "onnx-int8")
# The size graphs are traced at; every exported graph here has dynamic batch, height and width.
EXPORT_SIZE = (416, 544)


class BackendError(UserFacingError, ValueError):
    """A backend cannot serve the model asked for."""


# -------------------------------------------------------------------------------------------------
# ONNX


@contextlib.contextmanager
def plain_attention(model: nn.Module) -> Iterator[None]:
    """Run transformers attention as explicit matmul-softmax-matmul (``eager``) while active.

    PyTorch's fused SDPA exports to ONNX as a scaled pattern that ONNX Runtime's attention fusion
    does not match; the explicit form is matched and becomes one fused ``Attention`` kernel.
    """
    configs = {id(c): c for m in model.modules() if (c := getattr(m, "config", None)) is not None}
    configs = {k: c for k, c in configs.items() if hasattr(c, "_attn_implementation")}
    saved = {k: c._attn_implementation for k, c in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation = "eager"
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = saved[key]


def _attention_shape(model: nn.Module) -> tuple[int, int]:
    """(heads, width) of the model's transformer, or (0, 0) when it has none to fuse."""
    backbone = getattr(model, "backbone", None)
    config = getattr(backbone, "config", None)
    if config is None or not hasattr(config, "num_attention_heads"):
        return 0, 0
    return int(config.num_attention_heads), int(config.hidden_size)


def export_fast_onnx(model: nn.Module, path: str | os.PathLike, height: int = 416, width: int = 544) -> Path:
    """Export ``model`` and fuse its transformer ops for ONNX Runtime (the ``onnx-fast`` graph)."""
    from moa_depthclip.inference.export_onnx import export_onnx

    path = Path(path)
    heads, hidden = _attention_shape(model)
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "plain.onnx"
        with plain_attention(model):
            export_onnx(model, plain, height, width, dynamic=True)
        optimize_onnx(plain, path, heads, hidden)
    return path


def optimize_onnx(
    source: str | os.PathLike, target: str | os.PathLike, heads: int = 0, hidden: int = 0
) -> Path:
    """ONNX Runtime's transformer fusions (CLIP patterns) applied offline and saved to ``target``."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("clip")
    # Symbolic shape inference (sympy) would take ~20 s and is only needed for GPU-specific fusions.
    options.enable_shape_inference = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimize_model(
            str(source),
            model_type="clip",
            num_heads=heads,
            hidden_size=hidden,
            opt_level=1,
            use_gpu=False,
            optimization_options=options,
        )
    graph = optimized.model
    # Keep the exporter's metadata (random-init flag, model name) on the optimised graph.
    original = onnx.load(str(source), load_external_data=False)
    del graph.metadata_props[:]
    graph.metadata_props.extend(original.metadata_props)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(target))
    return target


def quantize_onnx(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """int8 dynamic quantisation of the graph's MatMul/Gemm weights (activations quantised at run time).

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
            # Fused (com.microsoft) ops defeat ONNX shape inference; their outputs are float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return target


def build_onnx(model: nn.Module, backend: str, path: str | os.PathLike) -> Path:
    """The graph a backend runs, written to ``path`` (``onnx``, ``onnx-fast`` or ``onnx-int8``)."""
    from moa_depthclip.inference.export_onnx import export_onnx

    if backend not in ONNX_BACKENDS:
        raise BackendError(f"backend {backend!r} has no ONNX graph; choose one of {', '.join(ONNX_BACKENDS)}")
    path = Path(path)
    if backend == "onnx":
        return export_onnx(model, path, *EXPORT_SIZE, dynamic=True)
    if backend == "onnx-fast":
        return export_fast_onnx(model, path, *EXPORT_SIZE)
    with tempfile.TemporaryDirectory() as folder:
        fast = export_fast_onnx(model, Path(folder) / "fast.onnx", *EXPORT_SIZE)
        return quantize_onnx(fast, path)


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
