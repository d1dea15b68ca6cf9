"""Training: configuration, deterministic data, schedule, exact resume, atomic checkpoints, run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training import checkpoint as ckpt
from moa_depthclip.training.config import ConfigError, OptimConfig, build_config
from moa_depthclip.training.data import SeededAugmentDataset, ShardedBatchSampler
from moa_depthclip.training.optim import lr_factor
from moa_depthclip.training.trainer import Trainer


def tiny(*overrides: str):
    return build_config("tiny", overrides=list(overrides))


# -------------------------------------------------------------------------------------------------
# configuration


def test_overrides_are_parsed_and_checked() -> None:
    config = tiny("optim.lr=1e-4", "data.batch_size=4", "data.crop_size=[32, 32]", "run.max_steps=3.0")
    assert config.optim.lr == pytest.approx(1e-4)
    assert config.data.batch_size == 4
    assert config.data.crop_size == (32, 32)
    assert config.run.max_steps == 3 and isinstance(config.run.max_steps, int)
    assert config.model.backbone.clip_config["vision_config"]["hidden_size"] == 64
    with pytest.raises(ConfigError, match="unknown"):
        tiny("optim.learning_rate=1")
    with pytest.raises(ConfigError, match="number"):
        tiny("optim.lr=fast")
    with pytest.raises(ConfigError, match="key=value"):
        tiny("optim.lr")
    with pytest.raises(ConfigError, match="preset"):
        build_config("huge")


@pytest.mark.parametrize("preset", ["demo", "nyu", "tiny"])
def test_presets_load(preset: str) -> None:
    config = build_config(preset)
    assert config.model.moa.layers == (2, 5, 8, 11)
    assert config.model.head.num_bins == 128


def test_config_file_round_trip(tmp_path: Path) -> None:
    config = tiny("optim.lr=0.002")
    path = tmp_path / "run.yaml"
    path.write_text(config.to_yaml())
    again = build_config(config_file=path)
    assert again.to_dict() == config.to_dict()


# -------------------------------------------------------------------------------------------------
# data order and schedule


def test_multi_process_shards_equal_single_process_accumulation() -> None:
    single = ShardedBatchSampler(20, 2, world_size=1, rank=0, accumulation_steps=2, seed=3)
    ranks = [ShardedBatchSampler(20, 2, world_size=2, rank=r, seed=3) for r in range(2)]
    for sampler in (single, *ranks):
        sampler.set_position(epoch=1)
    single_batches = list(single)
    rank_batches = [list(s) for s in ranks]
    assert len(single_batches) == 2 * len(rank_batches[0]) == 10
    for step in range(5):
        assert single_batches[2 * step] == rank_batches[0][step]
        assert single_batches[2 * step + 1] == rank_batches[1][step]
    # a new epoch reshuffles; resuming mid-epoch continues the same order
    single.set_position(epoch=2)
    assert list(single) != single_batches
    single.set_position(epoch=1, start_step=3)
    assert list(single) == single_batches[6:]


def test_augmentation_depends_only_on_seed_epoch_index() -> None:
    class Plain(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, index: int) -> dict:
            generator = torch.Generator().manual_seed(index)
            return {"image": torch.rand(3, 16, 16, generator=generator), "depth": torch.ones(1, 16, 16)}

    from moa_depthclip.data.transforms import TrainAugment

    dataset = SeededAugmentDataset(Plain(), TrainAugment(crop_size=(8, 8)), seed=5)
    first = dataset[(0, 2)]["image"]
    torch.manual_seed(123)  # the global stream must not matter
    dataset[(0, 1)]
    assert torch.equal(dataset[(0, 2)]["image"], first)
    assert not torch.equal(dataset[(1, 2)]["image"], first)


def test_warmup_then_cosine() -> None:
    config = OptimConfig(warmup_steps=4, min_lr_ratio=0.1)
    factors = [lr_factor(step, 20, config) for step in range(21)]
    assert factors[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert factors[4] == pytest.approx(1.0)
    assert factors[12] == pytest.approx(0.1 + 0.9 * 0.5)
    assert factors[20] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))


# -------------------------------------------------------------------------------------------------
# exact resume


def _optimizer_tensors(trainer: Trainer) -> list[torch.Tensor]:
    tensors = []
    for state in trainer.optimizer.state_dict()["state"].values():
        tensors.extend(v for v in state.values() if isinstance(v, torch.Tensor))
    return tensors


def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path: Path) -> None:
    # 8 scenes / batch 2 = 4 steps per epoch; the interruption at step 3 is mid-epoch and the run
    # crosses into epoch 1. Augmentation is on; accumulation 2 exercises micro-batching.
    overrides = [
        "data.train_scenes=16",
        "run.max_steps=6",
        "run.checkpoint_every=3",
        "optim.accumulation_steps=2",
    ]
    full = Trainer(tiny(*overrides), tmp_path / "full")
    full.train()

    first = Trainer(tiny(*overrides), tmp_path / "split")
    first.train(stop_at_step=3)
    assert ckpt.latest_checkpoint(tmp_path / "split").name == "step_00000003"
    resumed = Trainer(tiny(*overrides), tmp_path / "split", resume="auto")
    assert resumed.step == 3
    resumed.train()

    assert [r["names"] for r in first.history + resumed.history] == [r["names"] for r in full.history]
    assert [r["total"] for r in first.history + resumed.history] == [r["total"] for r in full.history]
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for name in full_state:
        assert torch.equal(full_state[name], resumed_state[name]), name
    for a, b in zip(_optimizer_tensors(full), _optimizer_tensors(resumed), strict=True):
        assert torch.equal(a, b)
    assert full.scheduler.state_dict()["last_epoch"] == resumed.scheduler.state_dict()["last_epoch"] == 6
    assert (full.epoch, full.step_in_epoch) == (resumed.epoch, resumed.step_in_epoch)


def test_resume_auto_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    trainer = Trainer(tiny("run.max_steps=1"), tmp_path / "run", resume="auto")
    assert trainer.step == 0


def test_resume_from_missing_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointError):
        ckpt.resolve_resume(str(tmp_path / "nothing"), tmp_path)


# -------------------------------------------------------------------------------------------------
# checkpoints and run folders


def _tiny_model() -> MoADepthCLIP:
    from tiny_clip import tiny_model_config

    return MoADepthCLIP(tiny_model_config())


def test_failure_mid_write_keeps_latest_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny_model()
    ckpt.save_checkpoint(tmp_path, 1, model, {"model": {}}, {"step": 1})

    def crash(obj: object, path: object, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, 2, model, {"model": {}}, {"step": 2})
    monkeypatch.undo()

    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step_00000001"
    assert ckpt.load_checkpoint(latest).state == {"step": 1}
    assert not (tmp_path / ckpt.CHECKPOINTS / "step_00000002").exists()
    assert not list((tmp_path / ckpt.CHECKPOINTS).glob(".step_*"))  # temporary folder removed

    # a crash while replacing latest.json leaves the old pointer intact
    def failing_replace(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(ckpt.os, "replace", failing_replace)
    with pytest.raises(OSError, match="power cut"):
        ckpt.atomic_write_text(tmp_path / ckpt.CHECKPOINTS / ckpt.LATEST, "garbage")
    monkeypatch.undo()
    pointer = json.loads((tmp_path / ckpt.CHECKPOINTS / ckpt.LATEST).read_text())
    assert pointer["checkpoint"] == "step_00000001"


def test_old_checkpoints_are_pruned(tmp_path: Path) -> None:
    model = _tiny_model()
    for step in range(1, 5):
        ckpt.save_checkpoint(tmp_path, step, model, {"model": {}}, {"step": step}, keep=2)
    names = sorted(p.name for p in (tmp_path / ckpt.CHECKPOINTS).iterdir())
    assert names == ["latest.json", "step_00000003", "step_00000004"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    model = _tiny_model()
    path = ckpt.save_checkpoint(tmp_path, 1, model, {"model": {}}, {"step": 1})
    (path / ckpt.MODEL_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ckpt.CheckpointError, match="cannot be read"):
        ckpt.load_checkpoint(path)


def test_trained_run_directory_loads_for_prediction(tmp_path: Path) -> None:
    trainer = Trainer(tiny("run.max_steps=2"), tmp_path / "run")
    result = trainer.train()
    assert result.steps == 2 and result.random_init
    for name in ("final", "best"):
        assert (tmp_path / "run" / name / "model.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "best.json").read_text())["metric"] == "abs_rel"
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any("loss/silog" in line for line in lines) and any("val/abs_rel" in line for line in lines)

    from moa_depthclip.inference.loading import load_depth_model

    loaded = load_depth_model(str(tmp_path / "run"))
    images = torch.rand(1, 3, 64, 64)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(images).depth, trainer.model(images).depth)


def test_time_limit_finishes_the_run_early(tmp_path: Path) -> None:
    result = Trainer(tiny("run.max_steps=100"), tmp_path / "run").train(time_limit_s=0.0)
    assert result.steps == 1
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
