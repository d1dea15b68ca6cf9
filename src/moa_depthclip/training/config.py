"""Training configuration: dataclasses, YAML files, presets and ``--set key=value`` overrides.

A run is fully described by one :class:`TrainConfig`. It is built from a preset shipped in
``moa_depthclip/presets/`` (or a YAML file), then dotted overrides (``optim.lr=1e-4``) are applied,
and the result is written to ``RUN_DIR/train_config.yaml`` so that the run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from moa_depthclip.config import ModelConfig, dataclass_from_dict, upgrade_model_dict
from moa_depthclip.config_checks import RANGES, check_config, device_problem
from moa_depthclip.errors import ConfigError
from moa_depthclip.evaluation.metrics import METRIC_NAMES
from moa_depthclip.training.losses import LossConfig


@dataclass
class DataConfig:
    """Where training and validation samples come from and how they are augmented.

    ``dataset``: a name of the dataset registry (``moa_depthclip.data.registry``, the same names as
    ``moa-depthclip evaluate --dataset``): ``synthetic`` (embedded rendered rooms), ``nyu-mat``
    (official labeled .mat + splits.mat), ``nyu-sync`` (BTS-style folder + filenames files),
    ``kitti`` (Eigen split filenames files) or ``folder`` (image/depth pairs); ``nyu_mat`` and
    ``nyu_sync`` are accepted spellings.
    """

    dataset: Literal["synthetic", "nyu-mat", "nyu-sync", "kitti", "folder", "nyu_mat", "nyu_sync"] = (
        "synthetic"
    )
    # synthetic scenes
    train_scenes: int = 256
    val_scenes: int = 32
    render_size: tuple[int, int] = (240, 320)
    synthetic_seed: int = 0
    # NYU / folders
    mat_path: str | None = None
    splits_path: str | None = None
    data_root: str | None = None
    train_filenames: str | None = None
    val_filenames: str | None = None
    val_root: str | None = None
    gt_root: str | None = None  # depth files of the training list, when not under data_root (KITTI)
    val_gt_root: str | None = None
    depth_scale: float | None = None  # PNG value per metre; None = the dataset's (1000; KITTI 256)
    ground_truth: Literal["raw", "filled"] = "raw"  # NYU .mat: raw Kinect depth (as evaluated) or filled
    # training input
    crop_size: tuple[int, int] | None = None  # random crop (H, W); None keeps the full image
    resize_to: tuple[int, int] | None = None  # resize every sample first (before cropping)
    augment: bool = True
    batch_size: int = 8  # per process and micro-batch
    num_workers: int = 0
    # Keep decoded samples in memory (sensible for the small synthetic sets).
    cache: bool = False
    # Evaluation protocol name for validation ("nyu", "synthetic", ...) and how many val images.
    val_protocol: str = "nyu"
    val_limit: int | None = None

    def __post_init__(self) -> None:
        if self.dataset in ("nyu_mat", "nyu_sync"):
            self.dataset = self.dataset.replace("_", "-")  # one spelling from here on
        from moa_depthclip.evaluation.protocol import PROTOCOL_NAMES

        if self.val_protocol not in PROTOCOL_NAMES:
            raise ConfigError(
                f"data.val_protocol: unknown evaluation protocol {self.val_protocol!r}; "
                f"choose one of {', '.join(PROTOCOL_NAMES)}"
            )
        for name in ("render_size", "crop_size", "resize_to"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                for v in value
            ):
                raise ConfigError(
                    f"data.{name}={value!r}: must be [height, width] in pixels, e.g. data.{name}=[224,288]"
                )
            setattr(self, name, tuple(int(v) for v in value))


@dataclass
class OptimConfig:
    """AdamW with one learning rate for the new modules and another for the unfrozen CLIP blocks."""

    lr: float = 3e-4
    backbone_lr: float = 3e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 500
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    accumulation_steps: int = 1
    # A new run starts the depth head at the training set's median depth (see
    # ``HybridDepthHead.set_depth_prior``) instead of the middle of the depth range.
    init_depth_prior: bool = True


@dataclass
class RunConfig:
    """Length of the run, precision, logging and checkpointing."""

    # Optimizer steps in total; epochs follow from the dataset size (``max_steps`` wins if both).
    max_steps: int = 10_000
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA if supported, else fp32
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = one per core
    log_every: int = 10
    image_every: int = 200  # TensorBoard panels (0 disables)
    val_every: int = 0  # optimizer steps between validations; 0 = once per epoch
    checkpoint_every: int = 500  # optimizer steps; 0 = at epoch ends only
    keep_checkpoints: int = 2
    best_metric: str = "abs_rel"
    best_mode: Literal["min", "max"] = "min"
    progress: bool = True
    deterministic: bool = True


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        try:
            return dataclass_from_dict(cls, data)
        except ConfigError:
            raise
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid training configuration: {error}") from error

    def to_yaml(self) -> str:
        return yaml.safe_dump(_plain(self.to_dict()), sort_keys=False)


RANGES[("RunConfig", "best_metric")] = lambda value: (
    None if value in METRIC_NAMES else f"must be one of the validation metrics: {', '.join(METRIC_NAMES)}"
)
RANGES[("RunConfig", "device")] = device_problem

PRESETS = ("demo", "nyu", "nyu-authors", "tiny")


def preset_path(name: str) -> Path:
    """Path of a preset shipped with the package."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return Path(str(resources.files("moa_depthclip") / "presets" / f"{name}.yaml"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (model, data, optim, loss, run)")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings; values are parsed as YAML (``1e-4``, ``[416, 544]``, ``null``)."""
    data = merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: cannot parse the value: {error}") from error
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return data


def build_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Defaults <- preset <- config file <- overrides, validated against the dataclasses."""
    data = TrainConfig().to_dict()
    if preset:
        data = merge(data, load_yaml(preset_path(preset)))
    if config_file:
        loaded = load_yaml(config_file)
        if isinstance(loaded.get("model"), dict):  # a run saved before a model field existed
            loaded["model"] = upgrade_model_dict(loaded["model"])
        data = merge(data, loaded)
    data = apply_overrides(data, overrides or [])
    config = TrainConfig.from_dict(data)
    _whole_numbers_as_int(config)
    check_config(config)
    return config


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _whole_numbers_as_int(config: Any) -> None:
    """``3.0`` -> ``3`` for integer fields (YAML and ``1e3``-style overrides give floats); every other
    check of types and ranges is ``config_checks.check_config``'s."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            _whole_numbers_as_int(value)
            continue
        annotation = hints.get(f.name)
        is_int = annotation is int or int in typing.get_args(annotation)  # int or int | None
        if is_int and isinstance(value, float) and value.is_integer():
            setattr(config, f.name, int(value))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
