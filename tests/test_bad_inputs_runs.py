"""Bad inputs around training runs, checkpoints and configurations, one test per case, on a real
pre-existing run (a tiny model trained for two steps, a checkpoint after each)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from moa_depthclip.cli.main import main
from moa_depthclip.errors import CheckpointError, ConfigError
from moa_depthclip.inference.loading import load_depth_model
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training import checkpoint as ckpt
from moa_depthclip.training.config import build_config
from moa_depthclip.training.trainer import Trainer

OVERRIDES = ["run.max_steps=4", "run.checkpoint_every=1", "data.train_scenes=8", "data.val_scenes=2"]


def tiny(*overrides: str):
    return build_config("tiny", overrides=[*OVERRIDES, *overrides])


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped at step 2 of 4 (mid-epoch, before any validation): checkpoints step 1 and 2,
    no best/ or final/ yet."""
    run = tmp_path_factory.mktemp("runs") / "run"
    Trainer(tiny(), run).train(stop_at_step=2)
    assert ckpt.holds_run(run) == ["train_config.yaml", "checkpoints", "metrics.jsonl", "tensorboard"]
    return run


@pytest.fixture
def run_copy(tmp_path: Path, stopped_run: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(stopped_run, copy)
    return copy


# -------------------------------------------------------------------------------------------------
# lost or mixed work


def test_new_run_into_existing_run_is_refused(capsys, run_copy: Path) -> None:
    before = sorted(p.name for p in (run_copy / "checkpoints").iterdir())
    code = main(["train", "--preset", "tiny", "--out", str(run_copy)])
    err = capsys.readouterr().err
    assert code == 2
    assert "already holds a training run" in err and "--resume auto" in err and "--overwrite" in err
    assert sorted(p.name for p in (run_copy / "checkpoints").iterdir()) == before  # untouched


def test_overwrite_deletes_the_old_run_first(run_copy: Path) -> None:
    (run_copy / "notes.txt").write_text("the user's own file")
    ckpt.prepare_run_dir(run_copy, resume=None, overwrite=True)
    assert ckpt.holds_run(run_copy) == []
    assert (run_copy / "notes.txt").is_file()  # only the run's own entries go
    assert Trainer(tiny(), run_copy).step == 0


def test_partial_last_metrics_line_is_dropped_on_resume(run_copy: Path) -> None:
    metrics = run_copy / "metrics.jsonl"
    with open(metrics, "a") as handle:
        handle.write('{"step": 2, "loss/tot')  # a write cut short by a full disk
    trainer = Trainer(tiny(), run_copy, resume="auto")
    assert trainer.step == 2
    lines = metrics.read_text().splitlines()
    assert lines and all(json.loads(line)["step"] <= 2 for line in lines)


def test_crash_leftovers_are_removed(run_copy: Path) -> None:
    leftovers = [
        run_copy / ".best.k2j3",  # a save_pretrained copy of the weights cut short
        run_copy / ".final.x9.old",
        run_copy / "checkpoints" / ".step_00000003.ab.tmp",
    ]
    for folder in leftovers:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    tmp_files = [run_copy / "checkpoints" / ".latest.json.q1.tmp", run_copy / ".best.json.z.tmp"]
    for file in tmp_files:
        file.write_text("{")
    Trainer(tiny(), run_copy, resume="auto")
    assert not any(path.exists() for path in leftovers + tmp_files)
    assert ckpt.latest_checkpoint(run_copy).name == "step_00000002"


def test_corrupt_checkpoint_points_to_the_last_readable_one(capsys, run_copy: Path) -> None:
    latest = run_copy / "checkpoints" / "step_00000002"
    weights = latest / ckpt.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    previous = run_copy / "checkpoints" / "step_00000001"
    with pytest.raises(CheckpointError, match=f"last readable checkpoint is {previous}"):
        Trainer(tiny(), run_copy, resume="auto")
    code = main(["train", "--out", str(run_copy), "--resume", str(latest)])
    err = capsys.readouterr().err
    assert code == 2 and f"--resume {previous}" in err and len(err.strip().splitlines()) == 1


# -------------------------------------------------------------------------------------------------
# checkpoints are not saved models; every run folder loads


def test_checkpoint_is_not_a_saved_model_folder(stopped_run: Path) -> None:
    step = stopped_run / "checkpoints" / "step_00000002"
    assert not (step / "config.json").exists() and not (step / "model.safetensors").exists()
    with pytest.raises(Exception, match="not a saved MoADepthCLIP folder"):
        MoADepthCLIP.from_pretrained(step)


def test_run_without_saved_model_loads_its_latest_checkpoint(stopped_run: Path) -> None:
    notes: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = notes.append  # type: ignore[method-assign]
    logger = logging.getLogger("moa_depthclip.inference.loading")
    logger.addHandler(handler)
    try:
        model = load_depth_model(str(stopped_run))
    finally:
        logger.removeHandler(handler)
    note = " ".join(record.getMessage() for record in notes)
    assert "step 2" in note and "step_00000002" in note
    state = ckpt.read_checkpoint_model(stopped_run / "checkpoints" / "step_00000002")[1]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    older = load_depth_model(str(stopped_run / "checkpoints" / "step_00000001"))
    assert not all(torch.equal(older.state_dict()[k], v) for k, v in state.items())


def test_checkpoint_of_the_previous_layout_still_loads_and_resumes(run_copy: Path) -> None:
    step = run_copy / "checkpoints" / "step_00000002"
    (step / ckpt.CONFIG_FILE).rename(step / "config.json")  # the names of earlier versions
    (step / ckpt.MODEL_FILE).rename(step / "model.safetensors")
    assert isinstance(load_depth_model(str(step)), MoADepthCLIP)
    assert Trainer(tiny(), run_copy, resume="auto").step == 2


# -------------------------------------------------------------------------------------------------
# configurations: validated completely, never changed by their readers


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=0", "data.batch_size=0: must be at least 1"),
        ("data.batch_size=-4", "data.batch_size=-4: must be at least 1"),
        ("optim.accumulation_steps=0", "optim.accumulation_steps=0: must be at least 1"),
        ("optim.lr=-0.1", "optim.lr=-0.1: must be at least 0"),
        ("data.num_workers=-1", "data.num_workers=-1: must be at least 0"),
        ("model.head.num_bins=0", "model.head.num_bins=0: must be at least 2"),
        ("model.moa.layers=[2,5,40]", "model.moa.layers: block(s) [40] do not exist"),
        ("run.max_steps=-5", "run.max_steps=-5: must be at least 1"),
        ("run.precision=fp64", "run.precision=fp64: must be one of auto, fp32, bf16"),
        ("run.precision=bf32", "run.precision=bf32: must be one of"),
        ("run.best_metric=bogus", "run.best_metric=bogus: must be one of the validation metrics"),
        ("model.head.bin_spacing=cubic", "model.head.bin_spacing=cubic: must be one of linear, log"),
        ("model.head.min_depth=20", "model.head.min_depth=20 is not below model.head.max_depth=10"),
        ("data.crop_size=5", "data.crop_size=5: must be [height, width]"),
        (
            "data.crop_size=[40,64]",
            "data.crop_size=[40, 64]: must be [height, width], positive multiples of 32",
        ),
        ("run.device=nonsense", "run.device=nonsense: is not a device"),
    ],
)
def test_out_of_range_config_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        tiny(override)
    assert str(info.value).startswith(message), str(info.value)


def test_model_config_is_checked_when_the_model_is_built() -> None:
    config = tiny().model
    config.head.blend = "sometimes"
    with pytest.raises(ConfigError, match="head.blend=sometimes: must be one of"):
        MoADepthCLIP(config)


def test_trainer_never_changes_the_callers_config(tmp_path: Path) -> None:
    config = tiny("loss.max_depth=3")
    before = config.to_dict()
    trainer = Trainer(config, tmp_path / "run")
    assert config.to_dict() == before
    assert trainer.config.loss.max_depth == trainer.model.config.head.max_depth == 10.0
    assert trainer.config.model.backbone.clip_config is not None


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_setting_is_applied(tmp_path: Path, deterministic: bool) -> None:
    previous = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    try:
        Trainer(tiny(f"run.deterministic={str(deterministic).lower()}"), tmp_path / "run")
        assert torch.are_deterministic_algorithms_enabled() is deterministic
        assert torch.backends.cudnn.deterministic is deterministic
        assert torch.backends.cudnn.benchmark is not deterministic
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark = previous[1]
