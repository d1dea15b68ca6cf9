"""Bad inputs, one test per case: each ends in a one-line error naming the file or setting and what
to do (exit code 2 on the command line), or in correct handling. Real artefacts throughout: saved
folders without tokenizer files, truncated safetensors, folders of broken files, unwritable paths.
Runs, checkpoints and configurations: ``test_bad_inputs_runs.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_clip import tiny_clip_config, tiny_model_config
from transformers import CLIPConfig, CLIPModel

from moa_depthclip.cli.main import main
from moa_depthclip.clip_loading import check_text_features, load_clip
from moa_depthclip.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    WeightsNotFoundError,
    state_dict_mismatch,
    user_message,
)
from moa_depthclip.inference.loading import load_depth_model
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.tokenizer import write_byte_level_clip_tokenizer_files


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    """The lines of stderr that are not progress or warning noise."""
    return [line for line in err.splitlines() if line.startswith("error:") or "Traceback" in line]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "model"
    MoADepthCLIP(tiny_model_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def blocked_dir(tmp_path: Path) -> Path:
    """An output path that cannot be created, even as root: a folder below a regular file."""
    (tmp_path / "afile").write_text("a file, not a folder")
    return tmp_path / "afile" / "out"


# -------------------------------------------------------------------------------------------------
# silent wrong answers


def test_clip_folder_without_tokenizer_files_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    CLIPModel(tiny_clip_config()).save_pretrained(folder)  # weights + config, no vocab.json/merges.txt
    assert load_clip(str(folder)).tokenizer is None
    config = tiny_model_config(str(folder))
    with pytest.raises(WeightsNotFoundError, match="tokenizer"):
        MoADepthCLIP.from_clip(config)


def test_tokenizer_of_special_tokens_only_is_refused(tmp_path: Path) -> None:
    # What transformers builds offline when the vocabulary files are missing: 2 tokens, no error.
    folder = tmp_path / "clip"
    CLIPModel(tiny_clip_config()).save_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer"}))
    with pytest.raises(WeightsNotFoundError, match="only 2 tokens.*huggingface-cli download"):
        load_clip(str(folder), tokenizer_source=str(folder))


def test_identical_prompt_embeddings_are_refused(tmp_path: Path) -> None:
    # A real folder whose text tower pools at an id its tokenizer never produces (49407 vs 513):
    # every prompt gets the start token's embedding.
    folder = tmp_path / "clip"
    CLIPModel(CLIPConfig.from_dict({**tiny_clip_config().to_dict(), "text_config": {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 1,
    }})).save_pretrained(folder)  # fmt: skip
    write_byte_level_clip_tokenizer_files(folder)
    with pytest.raises(WeightsNotFoundError, match="same text embedding"):
        MoADepthCLIP.from_clip(tiny_model_config(str(folder)))
    distinct = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert check_text_features(distinct, "x") is distinct


def test_random_mode_prompt_bank_is_full_rank() -> None:
    model = MoADepthCLIP.from_clip(tiny_model_config("random"))
    bank = model.context.prompt_bank
    assert int(torch.linalg.matrix_rank(bank)) == min(bank.shape)
    assert not torch.allclose(bank[0], bank[1])


def test_model_built_inside_inference_mode_runs() -> None:
    with torch.inference_mode():
        model = MoADepthCLIP.from_clip(tiny_model_config("random"))
        first = model(torch.rand(1, 3, 64, 96)).depth
        again = model(torch.rand(1, 3, 64, 96)).depth
    assert first.shape == again.shape == (1, 1, 64, 96)


# -------------------------------------------------------------------------------------------------
# damaged model files


def test_truncated_model_safetensors_is_one_line(
    capsys, tmp_path: Path, saved_model: Path, image_file: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(saved_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        MoADepthCLIP.from_pretrained(broken)
    code, _, err = run_cli(capsys, "predict", image_file, "--model", broken, "--out", tmp_path / "pred")
    assert code == 2
    assert error_lines(err) == [line for line in error_lines(err) if line.startswith("error:")]
    assert len(error_lines(err)) == 1 and str(broken) in err and "save it again" in err


def test_shape_mismatch_names_the_keys(tmp_path: Path, saved_model: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(saved_model, mixed)
    config = json.loads((mixed / "config.json").read_text())
    config["head"]["num_bins"] = 64
    (mixed / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"head\.classifier\.\w+ \[128.*\] in the file vs \[64.*\]"
    ) as info:
        load_depth_model(str(mixed))
    assert "\n" not in str(info.value)


def test_state_dict_error_lists_missing_and_unexpected_keys() -> None:
    model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict({"weight": torch.zeros(2, 2), "extra": torch.zeros(1)})
    assert state_dict_mismatch(info.value) == "missing keys bias; unexpected keys extra"


# -------------------------------------------------------------------------------------------------
# data


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images whose depth files are not images at all."""
    folder = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / f"im{index}.png")
        (folder / f"im{index}_depth.png").write_bytes(b"this is not a PNG")
    return folder


def test_dataloader_worker_error_is_one_line(capsys, bad_folder: Path) -> None:
    argv = [
        "evaluate",
        "--dataset",
        "folder",
        "--data-root",
        bad_folder,
        "--model",
        "constant:2",
        "--no-progress",
    ]
    code, _, err = run_cli(capsys, *argv, "--num-workers", "2")
    assert code == 2
    assert err.strip().startswith("error: depth file is not a readable image") and "im0_depth.png" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err_single = run_cli(capsys, *argv, "--num-workers", "0")
    assert code == 2 and err_single.strip() == err.strip()


def test_worker_message_reduced_to_the_original() -> None:
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise DataError("bad file: a.png")\n'
        "moa_depthclip.errors.DataError: bad file: a.png\n"
    )
    assert user_message(wrapped) == "bad file: a.png"
    assert user_message(DataError("plain")) == "plain"


def test_all_zero_depth_is_listed_and_masked_pixels_counted(capsys, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for index in range(3):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / f"im{index}.png")
    Image.fromarray(np.zeros((64, 64), np.uint16)).save(tmp_path / "im0_depth.png")  # all zero
    Image.fromarray(np.full((64, 64), 60000, np.uint16)).save(tmp_path / "im1_depth.png")  # all 60 m
    depth = rng.uniform(0.5, 3.0, (64, 64)).astype(np.float32)
    depth[:10] = np.nan
    depth[10:12] = np.inf
    np.save(tmp_path / "im2_depth.npy", depth)
    code, out, err = run_cli(
        capsys,
        "evaluate",
        "--dataset",
        "folder",
        "--data-root",
        tmp_path,
        "--model",
        "constant:2",
        "--no-progress",
    )
    assert code == 0
    assert "1 of 3 images evaluated, 2 without valid pixels" in out
    assert f"{12 * 64} NaN/inf/negative depth pixels masked" in out
    assert "not scored (no valid ground-truth pixel): im0, im1" in err


# -------------------------------------------------------------------------------------------------
# output folders: checked before any work


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--model", "constant:2", "--num", "2", "--no-progress"],
        ["train", "--preset", "tiny"],
        ["make-synthetic", "--num", "1"],
        ["demo", "--quick"],
        ["predict", "IMAGE", "--model", "constant:2"],
    ],
    ids=lambda c: c[0],
)
def test_unwritable_output_is_refused_before_work(
    capsys, blocked_dir: Path, image_file: Path, command
) -> None:
    argv = [image_file if part == "IMAGE" else part for part in command]
    started = time.perf_counter()
    code, _, err = run_cli(capsys, *argv, "--out", blocked_dir)
    assert code == 2
    assert (
        err.strip()
        == f"error: --out {blocked_dir}: cannot write there (a file is in the way: part of the path is a file, not a folder); choose a folder you can write to"
    )
    assert time.perf_counter() - started < 5  # refused up front, not after the work


# -------------------------------------------------------------------------------------------------
# out-of-range values on the command line


@pytest.mark.parametrize(
    "argv, named",
    [
        (["evaluate", "--batch-size", "0"], "--batch-size"),
        (["evaluate", "--num", "-3"], "--num"),
        (["evaluate", "--depth-scale", "-5"], "--depth-scale"),
        (["evaluate", "--depth-scale", "0"], "--depth-scale"),
        (["evaluate", "--limit", "-1"], "--limit"),
        (["evaluate", "--num-workers", "-1"], "--num-workers"),
        (["evaluate", "--device", "nonsense"], "--device"),
        (["train", "--preset", "tiny", "--device", "nonsense"], "--device"),
    ],
)
def test_out_of_range_command_line_values(capsys, argv: list[str], named: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {named}:" in err and "Traceback" not in err


def test_vmin_above_vmax_is_refused(capsys, tmp_path: Path, image_file: Path) -> None:
    code, _, err = run_cli(
        capsys,
        "predict",
        image_file,
        "--model",
        "constant:2",
        "--out",
        tmp_path,
        "--vmin",
        "5",
        "--vmax",
        "1",
    )
    assert code == 2 and "--vmin 5 must be below --vmax 1" in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_cuda_device_without_cuda_is_refused(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the case is a CPU-only PyTorch")
    with pytest.raises(ConfigError, match=r"run.device=cuda: .*no CUDA GPU"):
        from moa_depthclip.training.config import build_config

        build_config("tiny", overrides=["run.device=cuda"])
    with pytest.raises(SystemExit):
        main(["evaluate", "--device", "cuda"])
    assert "no CUDA GPU" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------
# network and CLIP sources


def test_offline_hub_id_fails_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match="moa-depthclip-tests/no-such-model"):
        load_depth_model("moa-depthclip-tests/no-such-model")
    with pytest.raises(WeightsNotFoundError, match="moa-depthclip-tests/no-such-clip"):
        load_clip("moa-depthclip-tests/no-such-clip")
    assert time.perf_counter() - started < 10
    assert constants.HF_HUB_OFFLINE is True  # the probe switched to the local cache only


def test_demo_quick_honours_clip(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "no-clip-here"
    code, _, err = run_cli(capsys, "demo", "--quick", "--clip", missing, "--out", tmp_path / "demo")
    assert code == 2 and str(missing) in err and "does not exist" in err
