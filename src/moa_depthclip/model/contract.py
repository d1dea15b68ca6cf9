"""The depth-model contract every model in the package follows.

:class:`DepthModel` (an ``nn.Module``):

* ``forward(images)``: ``images`` (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 ->
  :class:`~moa_depthclip.model.outputs.DepthOutput` whose ``depth`` is (B, 1, H, W) metres;
* ``predict(images, ...)``: PIL images, arrays, tensors or paths -> metric depth at each image's
  original size, through the one prediction path (:mod:`moa_depthclip.model.prediction`);
* ``is_random_init``: True when the weights that matter started random (predictions then mean
  nothing; the command line warns);
* ``default_flip``: True when the model's predictions are, by its own configuration, averaged with
  the mirrored image (the prediction path does it; ``forward`` never flips);
* ``fixed_input_size``: the only (H, W) the model accepts, or None.

:class:`PretrainedDepthModel` adds ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``
through huggingface_hub's ``PyTorchModelHubMixin`` (config.json + model.safetensors), with strict
loading and one-line errors (:class:`~moa_depthclip.model.hub.HubLoadingMixin`), and a model card
from ``moa_depthclip.model_card.render_model_card(model)`` when that module is installed.
MoA-DepthCLIP, DepthCLIP and the constant and layout-prior floors are pretrained depth models; the
ONNX Runtime wrapper is a plain ``DepthModel``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from moa_depthclip.model.hub import HubLoadingMixin
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.model.prediction import DEFAULT_LONG_SIDE, ImageInput, predict_depth

MODEL_CARD_MODULE = "moa_depthclip.model_card"
# Writes the files transformers' pipeline needs beside a saved model (optional, a layer above).
HF_MODULE = "moa_depthclip.hf"


class DepthModel(nn.Module):
    """Base class of every depth model: see the module docstring for the contract."""

    #: The only input size the model accepts, (H, W), or None for any multiple of 32.
    fixed_input_size: tuple[int, int] | None = None

    def forward(self, images: torch.Tensor) -> DepthOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_random_init(self) -> bool:
        """True when the model's weights started random (its depth is then meaningless)."""
        return False

    @property
    def default_flip(self) -> bool:
        """True when the prediction path should average with the mirrored image by default."""
        return False

    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        long_side: int | None = DEFAULT_LONG_SIDE,
        input_size: tuple[int, int] | None = None,
        flip: bool | None = None,
        batch_size: int = 4,
        device: str | torch.device | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Metric depth (``float32`` (H, W) metres) at each image's original size, one array per
        image (a list for a list). See :func:`~moa_depthclip.model.prediction.predict_depth`."""
        return predict_depth(
            self,
            images,
            long_side=long_side,
            input_size=input_size,
            flip=flip,
            batch_size=batch_size,
            device=device,
        )


class PretrainedDepthModel(
    HubLoadingMixin,  # strict from_pretrained with clear errors, in front of the hub mixin
    DepthModel,
    PyTorchModelHubMixin,
    library_name="moa-depthclip",
    tags=["depth-estimation", "monocular-depth"],
    pipeline_tag="depth-estimation",
    license="apache-2.0",
):
    """A depth model that saves, loads and pushes itself (config.json + model.safetensors)."""

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        """The mixin's save, plus what transformers' pipeline needs (``moa_depthclip.hf``): config.json's
        ``model_type`` and ``preprocessor_config.json``."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        write = _optional_function(HF_MODULE, "write_transformers_files")
        if write is not None:
            write(self, save_directory)
        return result

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The package's model card when ``moa_depthclip.model_card`` provides one, else the mixin's."""
        render = model_card_renderer()
        if render is None:
            return super().generate_model_card(*args, **kwargs)
        return ModelCard(render(self))


def model_card_renderer() -> Callable[[nn.Module], str] | None:
    """``render_model_card(model) -> str`` from ``moa_depthclip.model_card``, if that module exists."""
    return _optional_function(MODEL_CARD_MODULE, "render_model_card")


def _optional_function(module_name: str, name: str) -> Callable[..., Any] | None:
    """``module_name.name`` when that module exists (it sits above this layer), else None."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return None
    return getattr(module, name, None)
