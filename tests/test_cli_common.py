"""One spelling of the shared flags across commands; the library's tolerant per-file loop;
docs/architecture.md names every module."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moa_depthclip.baselines.constant import ConstantDepth
from moa_depthclip.cli.common import normalise_legacy_sizes, parse_size
from moa_depthclip.cli.main import build_parser, main
from moa_depthclip.errors import DataError, UserFacingError
from moa_depthclip.inference.predict import iter_predictions

ROOT = Path(__file__).resolve().parents[1]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_shared_flags_are_spelled_once_everywhere() -> None:
    commands = _subcommands()
    expected = {
        "predict": {"--input-size", "--device", "--tokenizer"},
        "export": {"--input-size", "--tokenizer"},
        "info": {"--input-size", "--tokenizer"},
        "evaluate": {"--input-size", "--device", "--tokenizer", "--num-workers"},
        "train": {"--device", "--num-workers"},
        "demo": {"--device", "--num-workers"},
        "ablate": {"--device", "--num-workers"},
    }
    for name, flags in expected.items():
        assert flags <= _flags(commands[name]), name
    # The same flag means the same thing: --input-size parses HxW to a tuple everywhere.
    args = commands["info"].parse_args(["--input-size", "64x96", "--input-size", "32x32"])
    assert args.input_size == [(64, 96), (32, 32)]
    args = commands["predict"].parse_args(["a.png", "--model", "m", "--out", "o", "--input-size", "416x544"])
    assert args.input_size == (416, 544)


def test_training_commands_pass_device_and_workers_to_the_config(capsys) -> None:
    assert main(["train", "--preset", "tiny", "--device", "cpu", "--num-workers", "3", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "num_workers: 3" in printed and "device: cpu" in printed


def test_size_parsing_and_old_spellings(capsys) -> None:
    assert parse_size("416x544") == (416, 544) and parse_size("64X96") == (64, 96)
    for bad in ("416", "416x", "80x64x32", "100x64", "0x64"):
        with pytest.raises(UserFacingError, match="--input-size"):
            parse_size(bad)
    assert normalise_legacy_sizes(["predict", "a.png", "--input-size", "64", "96", "b.png"]) == [
        "predict", "a.png", "--input-size", "64x96", "b.png",
    ]  # fmt: skip
    assert normalise_legacy_sizes(["info", "--size", "224", "224"]) == ["info", "--size", "224x224"]
    assert normalise_legacy_sizes(["predict", "--input-size", "64x96", "7.png"]) == [
        "predict", "--input-size", "64x96", "7.png",
    ]  # fmt: skip
    # A bad size is a one-line usage error (exit code 2), not a traceback.
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--input-size", "65x64"])
    assert exit_info.value.code == 2
    assert "multiples of 32" in capsys.readouterr().err


def test_iter_predictions_reports_bad_inputs_and_goes_on(tmp_path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    inputs = [good, broken, tmp_path / "missing.png", np.zeros((10, 12), np.uint8)]
    results = list(iter_predictions(ConstantDepth(3.0), inputs, long_side=64))
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, False, True]
    assert isinstance(results[1].error, DataError) and "broken.png" in str(results[1].error)
    assert results[0].depth.shape == (20, 30) and results[0].image.shape == (20, 30, 3)
    np.testing.assert_allclose(results[3].depth, 3.0)


def test_architecture_doc_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "src" / "moa_depthclip"
    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name != "__init__.py" and path.name not in text
    ]
    assert not missing, f"docs/architecture.md does not list: {missing}"


def test_a_bad_flag_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's whole usage block is replaced by one line that names the flag and points to --help."""
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--dataset", "synthetic", "--batch-size", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--batch-size" in err and "moa-depthclip evaluate --help" in err
