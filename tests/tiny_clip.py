"""Tiny but real CLIP artefacts (the ViT-B/32 topology at toy widths) shared by the tests."""

from __future__ import annotations

from transformers import CLIPConfig

from moa_depthclip.config import BackboneConfig, DecoderConfig, ModelConfig
from moa_depthclip.tokenizer import BYTE_LEVEL_VOCAB_SIZE


def tiny_clip_config() -> CLIPConfig:
    """A CLIP with the ViT-B/32 topology (12 blocks, patch 32) but tiny widths."""
    return CLIPConfig(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=12,
            num_attention_heads=1,
            image_size=64,
            patch_size=32,
        ),
        # Token ids of the byte-level tokenizer the tests pair with it (moa_depthclip.tokenizer): the
        # text tower pools at its end-of-text id, so it must be the tokenizer's.
        text_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=1,
            bos_token_id=BYTE_LEVEL_VOCAB_SIZE - 2,
            eos_token_id=BYTE_LEVEL_VOCAB_SIZE - 1,
            pad_token_id=BYTE_LEVEL_VOCAB_SIZE - 1,
        ),
        projection_dim=32,
    )


def tiny_model_config(source: str = "random") -> ModelConfig:
    return ModelConfig(
        backbone=BackboneConfig(source=source, clip_config=tiny_clip_config().to_dict()),
        decoder=DecoderConfig(fusion_channels=16, stage_channels=(16, 8, 8)),
    )
