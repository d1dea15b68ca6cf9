"""MoA-DepthCLIP: starts as the pretrained backbone, trains only what it should, outputs valid depth."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_clip import tiny_clip_config, tiny_model_config
from transformers import CLIPModel

from moa_depthclip.cli.main import main
from moa_depthclip.config import ModelConfig
from moa_depthclip.errors import InputSizeError
from moa_depthclip.model.heads import bin_centers
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.tokenizer import build_byte_level_clip_tokenizer


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("clip")
    CLIPModel(tiny_clip_config()).save_pretrained(directory)
    build_byte_level_clip_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def model(clip_dir) -> MoADepthCLIP:
    torch.manual_seed(1)
    return MoADepthCLIP.from_clip(tiny_model_config(str(clip_dir))).eval()


@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_zero_initialised_moa_reproduces_the_pretrained_backbone(clip_dir, model, size):
    vision = CLIPModel.from_pretrained(clip_dir).vision_model.eval()
    images = torch.rand(2, 3, *size)
    pixels = (images - model.pixel_mean) / model.pixel_std
    with torch.no_grad():
        reference = vision(pixels, output_hidden_states=True, interpolate_pos_encoding=True).hidden_states
        encoded = model.encode(images)
    for layer, tap in zip(model.tap_layers, encoded.taps, strict=True):
        torch.testing.assert_close(tap, reference[layer + 1], rtol=1e-5, atol=1e-5)


def test_prompt_bank_is_stored_and_normalised(model):
    bank = model.context.prompt_bank
    assert bank.shape == (len(model.config.context.templates) * len(model.config.context.words), 32)
    torch.testing.assert_close(bank.norm(dim=-1), torch.ones(bank.shape[0]))
    assert "context.prompt_bank" in model.state_dict()  # saved with the model: no text encoder at inference


def test_only_the_intended_parameters_train(model):
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    prefixes = ("moa.", "context.", "decoder.", "head.") + tuple(
        f"backbone.blocks.{i}." for i in (8, 9, 10, 11)
    )
    assert trainable and all(name.startswith(prefixes) for name in trainable)
    for i in (8, 9, 10, 11):
        assert any(name.startswith(f"backbone.blocks.{i}.") for name in trainable)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert all(name.startswith("backbone.") for name in frozen)
    assert any(name.startswith("backbone.embeddings") for name in frozen)
    assert not any(name.startswith("backbone.blocks.7.") for name in trainable)


@pytest.mark.parametrize("size", [(64, 64), (96, 128), (128, 64)])
def test_output_shape_positive_finite(model, size):
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    for depth in (out.depth, out.depth_bins, out.depth_reg):
        assert depth.shape == (2, 1, *size)
        assert torch.isfinite(depth).all() and (depth > 0).all()
        assert (depth <= model.config.head.max_depth).all()
    assert out.bin_logits.shape == (2, 128, size[0] // 4, size[1] // 4)
    assert out.aux_loss.abs() < 1e-6  # equal routing at initialisation


def test_input_not_multiple_of_32_is_a_clear_error(model):
    with pytest.raises(InputSizeError, match="multiple of the patch size 32"):
        model(torch.rand(1, 3, 65, 64))
    with pytest.raises(InputSizeError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 64, 64))


def test_gradients_reach_moa_and_unfrozen_blocks(clip_dir):
    model = MoADepthCLIP.from_clip(tiny_model_config(str(clip_dir)))
    out = model(torch.rand(2, 3, 64, 96))
    (out.depth.mean() + out.aux_loss).backward()
    assert model.moa["2"].up.weight.grad.abs().sum() > 0  # zero-initialised yet receives gradient
    assert model.backbone.blocks[11].mlp.fc2.weight.grad.abs().sum() > 0
    assert model.backbone.blocks[3].mlp.fc2.weight.grad is None


def test_image_conditioned_context_changes_with_the_image(clip_dir):
    config = tiny_model_config(str(clip_dir))
    config.context.mode = "image"
    model = MoADepthCLIP.from_clip(config).eval()
    bank = model.context.prompt_bank
    bank.copy_(torch.eye(bank.shape[0], bank.shape[1]))  # clearly distinct prompts
    with torch.no_grad():
        encoded = model.encode(torch.stack([torch.zeros(3, 64, 64), torch.ones(3, 64, 64)]))
    assert not torch.allclose(encoded.context[0], encoded.context[1])


def test_bins_and_bin_targets():
    config = ModelConfig().head
    centers = bin_centers(config)
    assert centers.shape == (128,) and torch.all(centers[1:] > centers[:-1])
    assert centers[0] > config.min_depth and centers[-1] < config.max_depth
    head = MoADepthCLIP(tiny_model_config()).head
    index = head.bin_index(torch.tensor([0.0, centers[5].item(), 9.99, 50.0]))
    assert index.tolist() == [0, 5, 127, 127]


def test_config_round_trip():
    config = tiny_model_config()
    config.moa.layers = (3, 11)
    restored = ModelConfig.from_json(config.to_json())
    assert restored.to_json() == config.to_json() and restored.moa.layers == (3, 11)
    with pytest.raises(ValueError, match="unknown MoAConfig fields"):
        ModelConfig.from_dict({"moa": {"experts": 3}})


def test_random_source_is_reported():
    model = MoADepthCLIP.from_clip(tiny_model_config("random"))
    assert model.is_random_init and model.parameter_report((64, 64))["random_init"]


def test_info_command_json(capsys):
    assert main(["info", "--json", "--size", "416", "544"]) == 0
    report = json.loads(capsys.readouterr().out)["sizes"][0]
    assert report["token_grid"] == [13, 17]
    groups = report["trainable_by_group"]
    # Groups must cover exactly the parameters that require grad (none missed, none counted twice).
    model = MoADepthCLIP(ModelConfig())
    assert sum(groups.values()) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    # The four unfrozen ViT-B/32 blocks: 4 x 7,087,872 parameters.
    assert groups["backbone_blocks"] == 4 * 7_087_872


def test_depth_prior_sets_the_starting_depth():
    head = MoADepthCLIP(tiny_model_config()).head
    head.set_depth_prior(2.5, spread=0.5)
    with torch.no_grad():
        out = head(torch.zeros(1, head.classifier.in_channels, 4, 4))  # bias-only response
    torch.testing.assert_close(out["depth_reg"], torch.full_like(out["depth_reg"], 2.5))
    torch.testing.assert_close(out["depth_bins"], torch.full_like(out["depth_bins"], 2.5), atol=0.02, rtol=0)
    torch.testing.assert_close(out["depth"], torch.full_like(out["depth"], 2.5), atol=0.02, rtol=0)


def test_optional_image_stem_feeds_the_decoder():
    config = tiny_model_config()
    config.decoder.image_stem_channels = 8
    model = MoADepthCLIP(config).eval()
    assert model.decoder.image_stem is not None
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        depth = model(images).depth
        model.decoder.image_stem[-3].weight.zero_()  # silence the stem: the output must change
        silenced = model(images).depth
    assert depth.shape == (2, 1, 64, 96) and not torch.allclose(depth, silenced)
