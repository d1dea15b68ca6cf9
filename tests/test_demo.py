"""The demo end to end at a toy size: trains, evaluates against the constant baseline, writes a report."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from moa_depthclip.cli.main import main


def test_quick_demo_writes_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--set", "run.max_steps=10", "run.log_every=2"]) == 0
    console = capsys.readouterr().out
    assert "RANDOM" in console and "constant" in console
    report = (out / "report.md").read_text()
    assert "| model |" in report and "constant" in report and "random initialisation" in report
    for index in range(4):
        with Image.open(out / f"panel_{index}.png") as panel:
            assert panel.width > 3 * panel.height  # image | GT | prediction | error
    with Image.open(out / "training_curve.png") as curve:
        assert curve.width > 0
    assert (out / "metrics.json").is_file()
    assert (out / "run" / "final" / "model.safetensors").is_file()


def test_train_command_prints_config_and_rejects_missing_preset(capsys) -> None:
    assert main(["train", "--preset", "tiny", "--set", "optim.lr=0.01", "--print-config"]) == 0
    assert "lr: 0.01" in capsys.readouterr().out
    assert main(["train", "--out", "nowhere"]) == 2
    assert "--preset" in capsys.readouterr().err
