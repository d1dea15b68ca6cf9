"""A tiny MoA-DepthCLIP whose outputs depend on the input (zero-initialised parts perturbed)."""

from __future__ import annotations

import torch
from tiny_clip import tiny_model_config

from moa_depthclip.model.moa_depthclip import MoADepthCLIP


def tiny_depth_model(seed: int = 0) -> MoADepthCLIP:
    torch.manual_seed(seed)
    model = MoADepthCLIP(tiny_model_config())
    with torch.no_grad():
        for parameter in model.parameters():
            if bool((parameter == 0).all()):
                parameter.normal_(0.0, 0.05)
        model.context.prompt_bank.normal_()
    return model.eval()
