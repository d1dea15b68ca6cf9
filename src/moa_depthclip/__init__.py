"""MoA-DepthCLIP: prompt-guided Mixture-of-Adapters on CLIP for metric monocular depth."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Heavy modules (torch, transformers) load on first use, so `moa-depthclip --help` stays fast.
_LAZY = {
    "MoADepthCLIP": "moa_depthclip.model.moa_depthclip",
    "ModelConfig": "moa_depthclip.config",
    "DepthOutput": "moa_depthclip.model.outputs",
    "DepthCLIP": "moa_depthclip.baselines.depthclip",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'moa_depthclip' has no attribute {name!r}")


def _enable_transformers_integration() -> None:
    """transformers' ``pipeline("depth-estimation", model=FOLDER)`` for saved models; registers
    when transformers is imported, so importing this package stays cheap."""
    from moa_depthclip.hf import enable

    enable()


_enable_transformers_integration()
