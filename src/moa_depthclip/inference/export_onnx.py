"""ONNX export of any depth model, and an ONNX Runtime backend that the predict path can run.

The graph takes ``images`` (B, 3, H, W) float32 RGB in [0, 1] (CLIP normalisation is inside, as in
PyTorch) and returns ``depth`` (B, 1, H, W) in metres. Batch, height and width are dynamic (H and W
must stay multiples of 32); ``dynamic=False`` fixes the export size instead.

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. It traces the position-
embedding interpolation of transformers' CLIP with symbolic sizes, so one graph serves every input
size. The ``torch.export`` (dynamo) exporter currently fails on this model's shape guards (an
"invalid ranges" error when H and W are declared as 32 * Dim), so it is not used.

Numerical agreement with PyTorch (float32, CPU): see docs/inference.md; ``compare_with_torch``
measures it for a given model and sizes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moa_depthclip.errors import CheckpointError, UserFacingError, WeightsNotFoundError
from moa_depthclip.model.contract import DepthModel
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.model.prediction import depth_of, predict_batch

DEFAULT_OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "depth"
META_RANDOM_INIT = "moa_depthclip.random_init"
META_MODEL = "moa_depthclip.model"
META_DEFAULT_FLIP = "moa_depthclip.default_flip"


class OnnxExportError(UserFacingError, RuntimeError):
    """The model could not be exported (or the exported graph failed its checks)."""


class _DepthOnly(nn.Module):
    """The model with its output reduced to the depth tensor (ONNX graphs return tensors)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return depth_of(self.model(images))


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    height: int = 480,
    width: int = 640,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
    batch_size: int = 1,
) -> Path:
    """Export ``model`` to ``path`` (traced at ``height`` x ``width``) and check the graph with onnx.

    Dynamic exports are traced at a non-square size (``width + 32`` when H == W) so that the graph
    keeps CLIP's position-embedding interpolation for every size.

    Returns the path. The model is exported in float32 on the CPU; the original is left untouched
    (its device and training mode are restored).
    """
    import onnx

    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise OnnxExportError(f"export size {height}x{width} must be positive multiples of 32")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parameter = next(model.parameters(), None)
    original_device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.to("cpu").eval()
    if dynamic and height == width:
        # CLIP skips position-embedding interpolation at its native (square) size; tracing there
        # would bake that size into the graph. A non-square trace keeps the interpolation symbolic.
        width += 32
    example = torch.rand(batch_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks
            torch.onnx.export(
                _DepthOnly(model),
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as error:
        raise OnnxExportError(f"ONNX export failed: {type(error).__name__}: {error}") from error
    finally:
        model.to(original_device).train(was_training)

    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    _set_metadata(
        graph,
        {
            META_RANDOM_INIT: str(bool(getattr(model, "is_random_init", False))).lower(),
            META_DEFAULT_FLIP: str(bool(getattr(model, "default_flip", False))).lower(),
            META_MODEL: type(model).__name__,
            "input": "images: float32 (B, 3, H, W) RGB in [0, 1], H and W multiples of 32",
            "output": "depth: float32 (B, 1, H, W) metres",
        },
    )
    onnx.save(graph, str(path))
    return path


def _set_metadata(graph: Any, values: dict[str, str]) -> None:
    del graph.metadata_props[:]
    for key, value in values.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value


class OnnxDepthModel(DepthModel):
    """An exported graph run by ONNX Runtime, following the depth-model contract (tensor in,
    DepthOutput out; ``predict``; ``is_random_init`` from the graph's metadata).

    ``predict(images)`` and the evaluation runner go through the same prediction path as PyTorch
    models. A graph exported with fixed sizes reports them in ``fixed_input_size`` (the prediction
    path then resizes to that size) and is run one image at a time when its batch size is fixed.
    The module has no parameters: ``.to(device)`` and ``.eval()`` change nothing (it runs on CPU).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__()

        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise CheckpointError(f"{path} is not a usable ONNX model ({error})") from error
        self.path = path
        metadata = self.session.get_modelmeta().custom_metadata_map
        self._random_init = metadata.get(META_RANDOM_INIT, "false") == "true"
        self._default_flip = metadata.get(META_DEFAULT_FLIP, "false") == "true"
        self.model_name = metadata.get(META_MODEL, "unknown")
        shape = self.session.get_inputs()[0].shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        fixed = all(isinstance(v, int) for v in shape[2:])
        self.fixed_input_size = (shape[2], shape[3]) if fixed else None

    @property
    def is_random_init(self) -> bool:
        """Recorded in the graph's metadata by :func:`export_onnx`."""
        return self._random_init

    @property
    def default_flip(self) -> bool:
        """The exported model's ``default_flip`` (the graph itself never flips)."""
        return self._default_flip

    def forward(self, images: torch.Tensor) -> DepthOutput:
        array = images.detach().cpu().float().numpy()
        if self.fixed_batch is not None and array.shape[0] != self.fixed_batch:
            parts = [self._run(array[i : i + 1]) for i in range(array.shape[0])]
            depth = np.concatenate(parts, axis=0)
        else:
            depth = self._run(array)
        return DepthOutput(depth=torch.from_numpy(depth))

    def _run(self, array: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(array)})[0]


def compare_with_torch(
    model: nn.Module,
    onnx_model: OnnxDepthModel,
    sizes: list[tuple[int, int]],
    batch_sizes: tuple[int, ...] = (1, 2),
    seed: int = 0,
) -> dict[str, float]:
    """Max absolute (m) and relative error of the ONNX graph against PyTorch on random images, both
    run through the one prediction path."""
    generator = torch.Generator().manual_seed(seed)
    worst_abs, worst_rel = 0.0, 0.0
    model = model.eval()
    for height, width in sizes:
        for batch in batch_sizes:
            images = torch.rand(batch, 3, height, width, generator=generator)
            reference = predict_batch(model, images).cpu().numpy()
            exported = predict_batch(onnx_model, images).numpy()
            if exported.shape != reference.shape:
                raise OnnxExportError(f"ONNX output shape {exported.shape} != PyTorch {reference.shape}")
            difference = np.abs(exported - reference)
            worst_abs = max(worst_abs, float(difference.max()))
            worst_rel = max(worst_rel, float((difference / np.maximum(np.abs(reference), 1e-6)).max()))
    return {"max_abs_error_m": worst_abs, "max_rel_error": worst_rel}
