"""Ablation switches (each builds, trains one step, reports the right trainable groups), the
decoupled decoder taps (old saved models load unchanged) and the `ablate` command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from moa_depthclip.cli.main import main
from moa_depthclip.config import ModelConfig
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training.ablation import BUILTIN_VARIANTS, parse_variant, variant_config
from moa_depthclip.training.config import PRESETS, ConfigError, build_config
from moa_depthclip.training.losses import CompositeLoss
from moa_depthclip.training.optim import build_optimizer

GROUPS = ("moa", "backbone_blocks", "context", "decoder", "heads")

# Trainable groups each built-in variant must have emptied (all others stay trainable).
EMPTY_GROUPS = {
    "no-moa": {"moa"},
    "no-context": {"context"},
    "frozen-backbone": {"backbone_blocks"},
    "decoder-only": {"moa", "backbone_blocks"},
}


def _one_step(model: MoADepthCLIP, config) -> dict[str, torch.Tensor]:
    """One optimizer step on a random batch with the run's loss; returns the parameters before it."""
    loss = CompositeLoss(config.loss, model.head.edges)
    optimizer = build_optimizer(model, config.optim)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=generator)
    depth = 0.5 + 4.0 * torch.rand(2, 1, 64, 64, generator=generator)
    total, _ = loss(model(images), depth)
    total.backward()
    for name, parameter in model.named_parameters():
        # every parameter counted as trainable takes part in the loss; the others have no gradient
        assert (parameter.grad is not None) == parameter.requires_grad, name
    optimizer.step()
    return before


@pytest.fixture(scope="module")
def full_report() -> dict:
    model = MoADepthCLIP(build_config("tiny").model)
    return model.parameter_report()


@pytest.mark.parametrize("name", list(BUILTIN_VARIANTS))
def test_each_builtin_variant_builds_trains_one_step_and_reports_its_groups(
    name: str, full_report: dict
) -> None:
    torch.manual_seed(0)
    config = variant_config(parse_variant(name), preset="tiny")
    model = MoADepthCLIP(config.model)
    report = model.parameter_report()
    groups = report["trainable_by_group"]
    full = full_report["trainable_by_group"]
    counted = {n: sum(p.numel() for p in ps) for n, ps in model.parameter_groups().items()}
    assert counted == groups
    assert report["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    for group in GROUPS:
        if group in EMPTY_GROUPS.get(name, set()):
            assert groups[group] == 0, group
        else:
            assert groups[group] > 0, group

    before = _one_step(model, config)
    changed = {
        n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p.detach())
    }
    for group, params in model.parameter_groups().items():
        names = {n for n, p in model.named_parameters() if any(p is q for q in params)}
        if names:
            assert names & changed, f"no {group} parameter moved in one step"

    if name == "single-adapter":
        assert groups["moa"] < full["moa"]
        assert not [n for n, _ in model.moa.named_parameters() if "router" in n]
        assert model.config.moa.spatial_kernel == 0
    if name == "no-context":
        assert groups["decoder"] < full["decoder"] and groups["moa"] < full["moa"]
        assert model.context.projection is None and model.decoder.context_projection is None
    if name == "bins-only":
        assert groups["heads"] == model.head.classifier.weight.numel() + model.head.classifier.bias.numel()
        out = model(torch.rand(1, 3, 64, 64))
        assert torch.allclose(out.depth, out.depth_bins)
    if name == "regression-only":
        assert groups["heads"] == model.head.regressor.weight.numel() + model.head.regressor.bias.numel()
        out = model(torch.rand(1, 3, 64, 64))
        assert torch.allclose(out.depth, out.depth_reg)
    if name in ("full", "no-moa", "entropy-router"):
        assert model.tap_layers == (2, 5, 8, 11)


def test_router_regularisers() -> None:
    images = torch.rand(2, 3, 64, 64)
    base = build_config("tiny").model
    values = {}
    for regularizer in ("load_balance", "entropy", "none"):
        config = build_config("tiny", overrides=[f"model.moa.router_regularizer={regularizer}"]).model
        torch.manual_seed(0)
        values[regularizer] = float(MoADepthCLIP(config)(images).aux_loss)
    # untrained routers are uniform: balanced (0) and of maximal entropy (1, times the weight)
    assert values["load_balance"] == pytest.approx(0.0, abs=1e-6)
    assert values["entropy"] == pytest.approx(base.moa.entropy_weight, rel=1e-5)
    assert values["none"] == 0.0
    # the entropy term is minimal for confident gates and can be trained
    from moa_depthclip.model.moa import MixtureOfAdapters

    moa = MixtureOfAdapters(8, num_experts=4, rank=2, regularizer="entropy")
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2]]), 4).float()
    assert float(moa.entropy_loss(one_hot)) == pytest.approx(0.0, abs=1e-6)
    assert float(moa.entropy_loss(torch.full((1, 3, 4), 0.25))) == pytest.approx(1.0)


def test_taps_do_not_follow_the_adapters() -> None:
    config = build_config("tiny", overrides=["model.moa.layers=[1, 4]"]).model
    model = MoADepthCLIP(config)
    assert model.tap_layers == (2, 5, 8, 11) and len(model.decoder.tap_norms) == 4
    encoded = model.encode(torch.rand(1, 3, 64, 64))
    assert len(encoded.taps) == 4
    # a tap at a block without an adapter is that block's own output
    config = build_config("tiny", overrides=["model.moa.layers=[]", "model.decoder.tap_layers=[3, 6]"]).model
    model = MoADepthCLIP(config).eval()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        tokens, _ = model.backbone.embed((images - model.pixel_mean) / model.pixel_std)
        outputs = []
        for block in model.backbone.blocks[:7]:
            tokens = block(tokens, None)
            outputs.append(tokens)
        encoded = model.encode(images)
    assert torch.allclose(encoded.taps[0], outputs[3]) and torch.allclose(encoded.taps[1], outputs[6])
    assert model.unfrozen_blocks == ()  # blocks 8-11 come after the last tap: never run, never trained
    assert model.parameter_report()["trainable_by_group"]["backbone_blocks"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.decoder.tap_layers=[1]"], "after the last tapped block"),
        (["model.decoder.tap_layers=[]"], "tap_layers.*empty"),
        (["model.decoder.tap_layers=[12]"], "not exist"),
        (["model.context.mode=scene"], "context.mode"),
        (["model.moa.router_regularizer=l2"], "regularizer"),
        (["model.head.blend=mean"], "blend"),
    ],
)
def test_bad_switches_fail_before_training(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        variant_config(parse_variant("bad=" + ";".join(overrides)), preset="tiny")


def test_saved_config_without_tap_layers_loads_with_the_old_taps(tmp_path: Path) -> None:
    config = build_config(
        "tiny", overrides=["model.moa.layers=[3, 7]", "model.decoder.tap_layers=[3, 7]"]
    ).model
    torch.manual_seed(0)
    model = MoADepthCLIP(config).eval()
    model.save_pretrained(tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    payload = saved.get("config", saved)
    assert payload["decoder"].pop("tap_layers") == [3, 7]
    (tmp_path / "model" / "config.json").write_text(json.dumps(saved))

    loaded = MoADepthCLIP.from_pretrained(tmp_path / "model").eval()
    assert loaded.tap_layers == (3, 7) and loaded.config.decoder.tap_layers == (3, 7)
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(images).depth, model(images).depth)

    # the same upgrade for a saved training configuration given as --config
    train_yaml = yaml.safe_load(build_config("tiny", overrides=["model.moa.layers=[3, 7]"]).to_yaml())
    del train_yaml["model"]["decoder"]["tap_layers"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(train_yaml))
    assert build_config(config_file=tmp_path / "old.yaml").model.decoder.tap_layers == (3, 7)
    # a hand-written partial config keeps the default taps: moving adapters never moves them
    assert ModelConfig.from_dict({"moa": {"layers": [3, 7]}}).decoder.tap_layers == (2, 5, 8, 11)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_build(preset: str) -> None:
    config = variant_config(parse_variant("full"), preset=preset)  # architecture built on meta
    assert config.model.decoder.tap_layers == (2, 5, 8, 11)
    if preset == "nyu-authors":  # the authors' earlier-code recipe (docs/ablations.md)
        assert (config.optim.lr, config.optim.backbone_lr, config.optim.weight_decay) == (1e-4, 1e-5, 0.01)
        assert (config.data.batch_size, config.data.resize_to, config.run.max_steps) == (8, (224, 224), 4950)
        loss = config.loss
        assert (loss.silog, loss.gradient, loss.ssim, loss.l1) == (1.0, 0.5, 0.2, 0.1)


def test_parse_variant() -> None:
    assert parse_variant("no-moa").overrides == ("model.moa.layers=[]",)
    custom = parse_variant("r16=model.moa.rank=16; model.decoder.tap_layers=[2, 5, 8, 11]")
    assert custom.name == "r16"
    assert custom.overrides == ("model.moa.rank=16", "model.decoder.tap_layers=[2, 5, 8, 11]")
    for bad in ("nope", "x=", "x=model.moa.rank", "a/b=model.moa.rank=1", "=model.moa.rank=1"):
        with pytest.raises(ConfigError):
            parse_variant(bad)


def test_ablate_refuses_a_variant_folder_holding_any_part_of_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variant folder with only a metrics file (a run stopped early) is a run too: never mixed."""
    out = tmp_path / "ablation"
    (out / "full").mkdir(parents=True)
    (out / "full" / "metrics.jsonl").write_text('{"step": 1}\n')
    argv = ["ablate", "--preset", "tiny", "--variant", "full", "--set", "run.max_steps=1", "--out", str(out)]
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "full" / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_ablate_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ablation"
    argv = ["ablate", "--preset", "tiny", "--variant", "full", "--variant", "nomoa=model.moa.layers=[]"]
    argv += ["--set", "run.max_steps=2", "data.train_scenes=4", "data.val_scenes=3", "--out", str(out)]
    assert main(argv) == 0
    table = (out / "ablation.md").read_text()
    data = json.loads((out / "ablation.json").read_text())
    assert [v["name"] for v in data["variants"]] == ["full", "nomoa"]
    full, nomoa = data["variants"]
    assert full["parameters"]["trainable_by_group"]["moa"] > 0
    assert nomoa["parameters"]["trainable_by_group"]["moa"] == 0
    assert (
        nomoa["parameters"]["trainable_parameters"]
        == full["parameters"]["trainable_parameters"] - full["parameters"]["trainable_by_group"]["moa"]
    )
    for variant in data["variants"]:
        assert variant["steps"] == 2
        assert variant["evaluation"]["counts"]["evaluated"] == 3
        assert all(math.isfinite(variant["evaluation"]["mean"][m]) for m in ("abs_rel", "delta1", "rmse"))
        assert (out / variant["name"] / "final" / "config.json").is_file()  # an ordinary run folder
    # paired intervals of the second variant against the first, on the same images
    for metric in ("abs_rel", "delta1"):
        interval = nomoa["vs_reference"][metric]
        assert interval["images"] == 3 and interval["low"] <= interval["difference"] <= interval["high"]
        mean_diff = nomoa["evaluation"]["mean"][metric] - full["evaluation"]["mean"][metric]
        assert interval["difference"] == pytest.approx(mean_diff, abs=1e-9)
    rows = [line for line in table.splitlines() if line.startswith("| full") or line.startswith("| nomoa")]
    assert len(rows) == 2 and "reference" in rows[0]
    assert f"{full['parameters']['trainable_parameters']:,}" in rows[0]
    assert "moa-depthclip ablate --preset tiny" in table
    assert "| full" in capsys.readouterr().out

    # an existing run folder is not silently overwritten; --resume re-scores the finished runs
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    again = json.loads((out / "ablation.json").read_text())
    assert again["variants"][1]["evaluation"]["mean"] == nomoa["evaluation"]["mean"]
