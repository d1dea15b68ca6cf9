"""One string names any depth model: ``load_depth_model(spec)`` for the evaluate/predict/export CLIs.

Specs, checked in this order:

=================================  ===============================================================
``constant:VALUE``                 constant-depth baseline (VALUE metres everywhere)
``depthclip-vit[:SOURCE]``         DepthCLIP zero-shot on a CLIP ViT (hub id, folder, file, random)
``depthclip-rn50[:SOURCE]``        DepthCLIP zero-shot on CLIP ResNet-50 (checkpoint file, random)
``random``                         MoA-DepthCLIP, ViT-B/32 shapes, random weights (tries the pipeline)
a ``save_pretrained`` folder       any saved model kind, by config.json's ``model_type``
a training run directory           its best/ (else final/) model, else its latest checkpoint
a training checkpoint folder       the model weights of that checkpoint (``RUN/checkpoints/step_N``)
an exported ``.onnx`` file         the graph in ONNX Runtime (``moa-depthclip export``)
``owner/name``                     a MoA-DepthCLIP on the Hugging Face hub (or in the local cache)
=================================  ===============================================================

Every model comes back in eval mode on ``device``; it follows the depth-model contract
(``moa_depthclip.model.contract``), so ``is_random_init`` tells callers when to warn that predictions
come from untrained weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

from moa_depthclip.clip_loading import is_hub_id
from moa_depthclip.errors import UserFacingError, WeightsNotFoundError
from moa_depthclip.model.contract import DepthModel
from moa_depthclip.model.hub import is_saved_model_dir

logger = logging.getLogger(__name__)

# Sub-folders of a training run that hold a saved model, in order of preference: the ones the
# trainer writes. A run without them yet is loaded from its latest checkpoint.
RUN_MODEL_FOLDERS = ("best", "final")

SPEC_HELP = (
    "constant:VALUE, depthclip-vit[:SOURCE], depthclip-rn50[:SOURCE], random, a saved model folder, "
    "a training run directory, an exported .onnx file, or a Hugging Face hub id (owner/name)"
)


class UnknownModelSpecError(UserFacingError, ValueError):
    """The model spec names nothing this package can load."""


def load_depth_model(spec: str, device: str = "cpu", tokenizer_source: str | None = None) -> DepthModel:
    """Build or load the depth model named by ``spec`` (see the module docstring), in eval mode.

    ``tokenizer_source`` (a CLIP folder or hub id) is only used by DepthCLIP built from a checkpoint
    file, which carries no tokenizer of its own.
    """
    spec = spec.strip()
    if not spec:
        raise UnknownModelSpecError(f"empty model spec; use one of: {SPEC_HELP}")
    return _load(spec, tokenizer_source).to(device).eval()


def _load(spec: str, tokenizer_source: str | None = None) -> DepthModel:
    name, _, argument = spec.partition(":")
    if name == "constant":
        return _constant(argument, spec)
    if name in ("depthclip-vit", "depthclip-rn50"):
        from moa_depthclip.baselines.depthclip import DepthCLIP

        return DepthCLIP.from_spec(spec, tokenizer_source=tokenizer_source)
    if spec == "random":
        return random_moa_depthclip()

    from moa_depthclip.model.moa_depthclip import MoADepthCLIP

    path = Path(spec).expanduser()
    if path.is_dir():
        checkpoint = find_checkpoint(path)
        if checkpoint is not None:
            return model_from_checkpoint(checkpoint)
        folder = find_saved_model(path)
        return saved_model_class(folder).from_pretrained(str(folder))
    if path.is_file() and path.suffix.lower() == ".onnx":
        from moa_depthclip.inference.export_onnx import OnnxDepthModel

        return OnnxDepthModel(path)  # an exported graph follows the same contract
    if path.exists():
        raise UnknownModelSpecError(
            f"{spec} is a file; a model is a saved model folder (config.json + model.safetensors) "
            f"or an exported .onnx graph. Known specs: {SPEC_HELP}"
        )
    if is_hub_id(spec):
        return MoADepthCLIP.from_pretrained(spec)
    if spec.startswith((".", "/", "~")) or "/" in spec or "\\" in spec:
        raise WeightsNotFoundError(f"model folder not found: {spec}")
    raise UnknownModelSpecError(f"unknown model '{spec}'; use one of: {SPEC_HELP}")


def random_moa_depthclip() -> DepthModel:
    """MoA-DepthCLIP with ViT-B/32 shapes and random weights (marked ``is_random_init``)."""
    from moa_depthclip.config import BackboneConfig, ModelConfig
    from moa_depthclip.model.moa_depthclip import MoADepthCLIP

    return MoADepthCLIP.from_clip(ModelConfig(backbone=BackboneConfig(source="random")))


def find_saved_model(directory: Path) -> Path:
    """The saved model folder ``directory`` names: itself, or a run's ``best/`` (else ``final/``)."""
    if is_saved_model_dir(directory):
        return directory
    for name in RUN_MODEL_FOLDERS:
        if is_saved_model_dir(directory / name):
            return directory / name
    raise WeightsNotFoundError(
        f"{directory} holds no saved model: expected config.json + model.safetensors in it, or a training "
        f"run with best/, final/ or checkpoints/ (pass the run directory or a saved model folder)"
    )


def find_checkpoint(directory: Path) -> Path | None:
    """The training checkpoint ``directory`` stands for, when it is not a saved model.

    A checkpoint folder (``RUN/checkpoints/step_N``, also in the layout of earlier versions) is
    itself; a run directory without ``best/`` or ``final/`` yet (stopped before its first
    validation) stands for its latest checkpoint. Anything else: None.
    """
    from moa_depthclip.training import checkpoint as ckpt

    if ckpt.is_checkpoint_dir(directory):
        return directory
    if is_saved_model_dir(directory) or any(is_saved_model_dir(directory / n) for n in RUN_MODEL_FOLDERS):
        return None
    return ckpt.latest_checkpoint(directory)


def model_from_checkpoint(folder: Path) -> DepthModel:
    """MoA-DepthCLIP with the weights of a training checkpoint; a warning names its step."""
    from moa_depthclip.config import ModelConfig, upgrade_model_dict
    from moa_depthclip.errors import weights_file_error
    from moa_depthclip.model.moa_depthclip import MoADepthCLIP
    from moa_depthclip.training import checkpoint as ckpt

    model_config, tensors, step = ckpt.read_checkpoint_model(folder)
    model = MoADepthCLIP(ModelConfig.from_dict(upgrade_model_dict(model_config)))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise weights_file_error(error, folder, "checkpoint") from None
    logger.warning(
        "using the model of the training checkpoint %s (step %d), not a saved best/ or final/ model",
        folder,
        step,
    )
    return model


def _constant(argument: str, spec: str) -> DepthModel:
    try:
        value = float(argument)
    except ValueError:
        raise UnknownModelSpecError(
            f"'{spec}': constant needs a depth in metres, e.g. constant:2.5"
        ) from None
    if not value > 0 or value != value or value == float("inf"):
        raise UnknownModelSpecError(
            f"'{spec}': the constant depth must be a positive finite number of metres"
        )
    from moa_depthclip.baselines.constant import ConstantDepth

    return ConstantDepth(value)


def saved_model_class(folder: Path) -> type[DepthModel]:
    """The model class of a saved folder, from the ``model_type`` its config.json records.

    Folders written before ``model_type`` was recorded are told apart by their keys: the constant
    floor saved only ``value``, the layout prior only ``size``; anything else is MoA-DepthCLIP.
    """
    import json

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    model_type = config.get("model_type")
    keys = set(config) - {"model_type"}
    if model_type == "depthclip":
        from moa_depthclip.baselines.depthclip import DepthCLIP

        return DepthCLIP
    if model_type == "constant-depth" or (model_type is None and keys == {"value"}):
        from moa_depthclip.baselines.constant import ConstantDepth

        return ConstantDepth
    if model_type == "layout-prior" or (model_type is None and keys == {"size"}):
        from moa_depthclip.baselines.layout_prior import LayoutPriorDepth

        return LayoutPriorDepth
    from moa_depthclip.model.moa_depthclip import MoADepthCLIP

    return MoADepthCLIP
