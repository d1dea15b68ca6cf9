"""Shared fixtures: tiny but real CLIP artefacts, so tests exercise the real loaders offline."""

from __future__ import annotations

import pytest
import torch
from tiny_clip import tiny_clip_config, tiny_model_config

from moa_depthclip.config import ModelConfig

torch.set_num_threads(1)

__all__ = ["tiny_clip_config", "tiny_model_config"]


@pytest.fixture
def tiny_config() -> ModelConfig:
    return tiny_model_config()
