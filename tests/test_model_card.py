"""Model cards say what a checkpoint is, for every model kind, and save_pretrained writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from tiny_clip import tiny_clip_config, tiny_model_config

from moa_depthclip.baselines.constant import ConstantDepth
from moa_depthclip.baselines.depthclip import DepthCLIP
from moa_depthclip.baselines.layout_prior import LayoutPriorDepth
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.model_card import render_model_card

PLACEHOLDER = "[More Information Needed]"


@pytest.fixture(scope="module")
def moa() -> MoADepthCLIP:
    torch.manual_seed(0)
    return MoADepthCLIP.from_clip(tiny_model_config())


def _common(card: str) -> None:
    assert PLACEHOLDER not in card
    assert (
        card.startswith("---\n")
        and "license: apache-2.0" in card
        and "pipeline_tag: depth-estimation" in card
    )
    for heading in (
        "## What this checkpoint is",
        "## Training",
        "## Evaluation",
        "## Usage",
        "## Licence",
        "## Citation",
    ):
        assert heading in card, heading
    assert "Apache License 2.0" in card and "```python" in card


def test_moa_card_names_method_backbone_random_weights_and_paper(moa: MoADepthCLIP) -> None:
    card = render_model_card(moa)
    _common(card)
    assert "MoA-DepthCLIP" in card and "2604.01118" in card
    assert "CLIP ViT, 12 blocks, width 64, patch 32" in card
    assert "random initialisation" in card and "Warning: random weights" in card
    assert "after blocks 2, 5, 8, 11: 4 experts of rank 64" in card
    assert "not recorded in this checkpoint" in card  # training unknown: said plainly
    assert "MoADepthCLIP.from_pretrained" in card and 'pipeline("depth-estimation"' in card
    assert "Can Language Understand Depth" not in card


def test_moa_card_with_training_and_evaluation(moa: MoADepthCLIP) -> None:
    moa.config.backbone.pretrained = True
    try:
        card = render_model_card(
            moa,
            training={"dataset": "nyu_mat (795 frames)", "steps": 20000},
            evaluation={
                "protocol": "nyu-eigen, Eigen crop, 1e-3..10 m",
                "metrics": {"abs_rel": 0.1234, "delta1": 0.8},
            },
        )
    finally:
        moa.config.backbone.pretrained = False
    assert "pretrained CLIP weights from `random`" in card and "Warning: random weights" not in card
    assert "- **Data**: nyu_mat (795 frames)" in card and "- **Optimizer steps**: 20000" in card
    assert "Protocol: nyu-eigen, Eigen crop, 1e-3..10 m." in card
    assert "| model | AbsRel ↓ | δ<1.25 ↑ |" in card and "| this checkpoint | 0.123 | 0.800 |" in card


def test_depthclip_card_cites_depthclip_and_lists_bins() -> None:
    model = DepthCLIP.from_vit("random", clip_config=tiny_clip_config().to_dict())
    card = render_model_card(model)
    _common(card)
    assert "DepthCLIP (zero-shot) baseline" in card and "No training" in card
    assert "giant = 1 m" in card and "unseen = 3 m" in card
    assert "Can Language Understand Depth?" in card and "ACM MM" in card and "2604.01118" in card
    assert "DepthCLIP.from_pretrained" in card


def test_floor_cards() -> None:
    constant = render_model_card(ConstantDepth(2.5))
    _common(constant)
    assert "2.5000 m at every pixel" in constant and "No parameters" in constant
    layout = render_model_card(LayoutPriorDepth(torch.linspace(1, 4, 12).reshape(3, 4)))
    _common(layout)
    assert "3x4, 1.00-4.00 m" in layout and "LayoutPriorDepth.from_pretrained" in layout


def test_save_pretrained_writes_the_card_with_info(moa: MoADepthCLIP, tmp_path: Path) -> None:
    moa.model_card_info = {"training": {"dataset": "synthetic rooms", "steps": 7}}
    try:
        moa.save_pretrained(tmp_path / "m")
    finally:
        del moa.model_card_info
    card = ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.license == "apache-2.0" and card.data.pipeline_tag == "depth-estimation"
    assert "- **Data**: synthetic rooms" in card.text and PLACEHOLDER not in card.text
