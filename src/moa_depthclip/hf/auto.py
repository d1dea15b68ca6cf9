"""The transformers classes: configs, a ``PreTrainedModel`` wrapper and an image processor.

* ``MoADepthCLIPTransformersConfig`` / ``DepthCLIPTransformersConfig``: config.json as transformers
  reads it (model types ``moa_depthclip`` and ``depthclip``); the package's own config stays the
  authority, these only carry it.
* ``MoADepthCLIPForDepthEstimation`` / ``DepthCLIPForDepthEstimation``: ``PreTrainedModel`` wrappers
  whose ``from_pretrained`` loads the folder with the package's strict loader and whose ``forward``
  is the package's one prediction path at the working size (flip averaging as the model says).
* :class:`DepthModelImageProcessor`: the prediction path's decoding and working-size resize as
  preprocessing, its bilinear resize back as ``post_process_depth_estimation``.

So ``pipeline("depth-estimation", model=FOLDER)(image)["predicted_depth"]`` equals
``model.predict(image)`` (metres, the input's size); ``["depth"]`` is transformers' 8-bit picture.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForDepthEstimation,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.modeling_outputs import DepthEstimatorOutput

from moa_depthclip.hf import IMAGE_PROCESSOR_TYPE
from moa_depthclip.model.prediction import (
    DEFAULT_LONG_SIDE,
    _to_model_tensor,
    predict_batch,
    to_rgb_uint8,
    working_size,
)


class MoADepthCLIPTransformersConfig(PretrainedConfig):
    """config.json of a saved MoA-DepthCLIP, as transformers' AutoConfig reads it."""

    model_type = "moa_depthclip"


class DepthCLIPTransformersConfig(PretrainedConfig):
    """config.json of a saved DepthCLIP, as transformers' AutoConfig reads it."""

    model_type = "depthclip"


class _DepthModelForDepthEstimation(PreTrainedModel):
    """A package depth model behind transformers' ``PreTrainedModel`` interface."""

    main_input_name = "pixel_values"
    base_model_prefix = "depth_model"

    def __init__(self, config: PretrainedConfig, depth_model: torch.nn.Module | None = None) -> None:
        super().__init__(config)
        if depth_model is None:
            raise ValueError(
                f"{type(self).__name__} wraps a saved model: load it with from_pretrained(folder) "
                "(or transformers' pipeline / AutoModelForDepthEstimation)"
            )
        self.depth_model = depth_model

    @classmethod
    def _load_package_model(cls, source: str) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, config: Any = None, **kwargs: Any
    ) -> _DepthModelForDepthEstimation:
        """Load with the package's strict loader; ``dtype`` / ``device_map`` as transformers passes them."""
        source = str(pretrained_model_name_or_path)
        if not isinstance(config, PretrainedConfig):
            config = cls.config_class.from_pretrained(source)
        model = cls(config, cls._load_package_model(source))
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        if isinstance(dtype, torch.dtype):
            model.to(dtype)
        device = kwargs.get("device_map")
        if isinstance(device, (str, torch.device)) and str(device) not in ("auto", "cpu"):
            model.to(device)
        return model.eval()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Weights come from the saved folder, never from transformers' initialisers."""

    def forward(self, pixel_values: torch.Tensor, **kwargs: Any) -> DepthEstimatorOutput:
        """Depth (B, h, w) in metres at the working size of ``pixel_values`` (B, 3, h, w) in [0, 1]."""
        depth = predict_batch(self.depth_model, pixel_values, input_size=tuple(pixel_values.shape[-2:]))
        return DepthEstimatorOutput(predicted_depth=depth[:, 0])


class MoADepthCLIPForDepthEstimation(_DepthModelForDepthEstimation):
    config_class = MoADepthCLIPTransformersConfig

    @classmethod
    def _load_package_model(cls, source: str) -> torch.nn.Module:
        from moa_depthclip.model.moa_depthclip import MoADepthCLIP

        return MoADepthCLIP.from_pretrained(source)


class DepthCLIPForDepthEstimation(_DepthModelForDepthEstimation):
    config_class = DepthCLIPTransformersConfig

    @classmethod
    def _load_package_model(cls, source: str) -> torch.nn.Module:
        from moa_depthclip.baselines.depthclip import DepthCLIP

        return DepthCLIP.from_pretrained(source)


class DepthModelImageProcessor(BaseImageProcessor):
    """The package's prediction-path preprocessing for transformers: upright RGB, working size
    (``long_side`` aspect kept, multiples of 32, or a fixed ``input_size``), values in [0, 1]
    (the models normalise inside)."""

    model_input_names = ["pixel_values"]

    def __init__(
        self, long_side: int | None = DEFAULT_LONG_SIDE, input_size: list[int] | None = None, **kwargs: Any
    ) -> None:
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        self.long_side = long_side
        self.input_size = list(input_size) if input_size else None

    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        """(B, 3, h, w) float ``pixel_values``; every image of one call must share a working size."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        rgbs = [to_rgb_uint8(item) for item in items]
        fixed = tuple(self.input_size) if self.input_size else None
        sizes = {working_size(rgb.shape[0], rgb.shape[1], self.long_side, fixed) for rgb in rgbs}
        if len(sizes) != 1:
            raise ValueError(
                f"images of one call must share a working size, got {sorted(sizes)}: call once per image"
            )
        (size,) = sizes
        pixel_values = torch.stack([_to_model_tensor(rgb, size) for rgb in rgbs])
        data: dict[str, Any] = {"pixel_values": pixel_values}
        if return_tensors not in ("pt", None):
            data = {"pixel_values": pixel_values.numpy()}
        return BatchFeature(data=data, tensor_type=None)

    def post_process_depth_estimation(
        self, outputs: Any, target_sizes: Any = None
    ) -> list[dict[str, torch.Tensor]]:
        """Depth in metres resized (bilinear) to each target (H, W), as the prediction path does."""
        depth = outputs.predicted_depth if hasattr(outputs, "predicted_depth") else outputs["predicted_depth"]
        if target_sizes is not None and len(target_sizes) != len(depth):
            raise ValueError("give one target size per image")
        results = []
        for index, item in enumerate(depth):
            item = item.float()
            if target_sizes is not None:
                size = tuple(int(v) for v in np.asarray(target_sizes[index]).reshape(-1)[:2])
                if tuple(item.shape[-2:]) != size:
                    item = F.interpolate(item[None, None], size=size, mode="bilinear", align_corners=False)[
                        0, 0
                    ]
            results.append({"predicted_depth": item})
        return results


assert DepthModelImageProcessor.__name__ == IMAGE_PROCESSOR_TYPE

_PAIRS = (
    (MoADepthCLIPTransformersConfig, MoADepthCLIPForDepthEstimation),
    (DepthCLIPTransformersConfig, DepthCLIPForDepthEstimation),
)


def register_auto_classes() -> None:
    """AutoConfig, AutoModelForDepthEstimation and AutoImageProcessor learn both model types."""
    for config_class, model_class in _PAIRS:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForDepthEstimation.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(
            config_class,
            slow_image_processor_class=DepthModelImageProcessor,
            fast_image_processor_class=DepthModelImageProcessor,
            exist_ok=True,
        )
    _declare_supported()


def _declare_supported() -> None:
    """The depth pipeline checks a model's class name against transformers' own list and logs an
    error for others; add ours under our model types (the list is only read by that check)."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES as names
    except ImportError:  # pragma: no cover - other transformers layouts: the check only logs
        return
    for config_class, model_class in _PAIRS:
        names.setdefault(config_class.model_type, model_class.__name__)
