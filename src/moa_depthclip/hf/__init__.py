"""transformers integration: ``pipeline("depth-estimation", model=FOLDER)`` for saved models.

After ``import moa_depthclip``, transformers' ``pipeline("depth-estimation", model=PATH)``,
``AutoConfig``, ``AutoModelForDepthEstimation`` and ``AutoImageProcessor`` load a saved MoA-DepthCLIP
or DepthCLIP folder (``config.json`` with its ``model_type`` + ``model.safetensors`` +
``preprocessor_config.json``). The classes live in :mod:`moa_depthclip.hf.auto`; this module stays
light (it does not import transformers): :func:`enable` registers them at once when transformers is
already imported, otherwise the first ``import transformers`` does (a one-shot import hook), so
that ``import moa_depthclip`` and the command line do not pay for importing transformers.

:func:`write_transformers_files` adds ``model_type`` to a saved folder's config.json and writes the
image processor's file beside it; ``save_pretrained`` calls it for the kinds transformers can load.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

#: ``model_type`` in config.json -> what transformers loads it as.
MODEL_TYPES = ("moa_depthclip", "depthclip")
PREPROCESSOR_FILE = "preprocessor_config.json"
IMAGE_PROCESSOR_TYPE = "DepthModelImageProcessor"
_registered = False


def register() -> None:
    """Register the configs, models and image processor with transformers' Auto classes (idempotent)."""
    global _registered
    if _registered:
        return
    from moa_depthclip.hf.auto import register_auto_classes

    register_auto_classes()
    _registered = True


def enable() -> None:
    """Register now if transformers is imported, else when it is (called by ``import moa_depthclip``)."""
    if "transformers" in sys.modules:
        _register_quietly()
    elif not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


def _register_quietly() -> None:
    try:
        register()
    except Exception as error:  # never break `import transformers` for its other users
        warnings.warn(f"moa_depthclip: could not register with transformers ({error})", stacklevel=2)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level ``transformers`` module so that registration follows it."""

    def __init__(self) -> None:
        self._searching = False

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != "transformers" or self._searching:
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(fullname)  # the finders after this one
        finally:
            self._searching = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, inner: Any, finder: _RegisterOnImport) -> None:
        self._inner = inner
        self._finder = finder

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        _register_quietly()

    def __getattr__(self, name: str) -> Any:  # resources, get_filename, ... of the real loader
        return getattr(self._inner, name)


def model_type_of(model: Any) -> str | None:
    """The transformers ``model_type`` of a package model, or None for kinds the pipeline does not take."""
    return {"MoADepthCLIP": "moa_depthclip", "DepthCLIP": "depthclip"}.get(type(model).__name__)


def write_transformers_files(model: Any, folder: str | os.PathLike) -> Path | None:
    """Make a saved folder loadable by transformers (for the model kinds it can load): add
    ``model_type`` to config.json where the package's config lacks it, and write
    ``preprocessor_config.json`` (the prediction path's working-size rule). Returns that file's path,
    None for other kinds. ``save_pretrained`` calls it."""
    model_type = model_type_of(model)
    if model_type is None:
        return None
    from moa_depthclip.model.prediction import DEFAULT_LONG_SIDE

    config_path = Path(folder) / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("model_type") != model_type:
        config["model_type"] = model_type
        config_path.write_text(json.dumps(config, sort_keys=True, indent=2))
    fixed = getattr(model, "fixed_input_size", None)
    content = {
        "image_processor_type": IMAGE_PROCESSOR_TYPE,
        "long_side": DEFAULT_LONG_SIDE,
        "input_size": list(fixed) if fixed else None,
    }
    path = Path(folder) / PREPROCESSOR_FILE
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


__all__ = ["MODEL_TYPES", "enable", "model_type_of", "register", "write_transformers_files"]
