"""The demo end to end at a toy size: trains, evaluates against both floors with paired intervals and
correlations, writes a report; ``--clip`` is honoured in quick mode."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from tiny_clip import tiny_clip_config
from transformers import CLIPModel

from moa_depthclip.cli.main import main
from moa_depthclip.demo.report import readme_block
from moa_depthclip.tokenizer import build_byte_level_clip_tokenizer


def test_quick_demo_writes_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--set", "run.max_steps=10", "run.log_every=2"]) == 0
    console = capsys.readouterr().out
    assert "RANDOM" in console and "constant" in console and "(10 steps)" in console
    report = (out / "report.md").read_text()
    assert "| model |" in report and "constant" in report and "random initialisation" in report
    # every comparison carries an interval and a verdict read from it
    assert "95 % CI" in report
    comparisons = [line for line in report.splitlines() if line.startswith("| MoA-DepthCLIP")]
    assert len(comparisons) == 1 + 2 + 1  # metrics row, two comparison rows, correlation row
    assert all(any(v in line for v in ("better", "level", "worse")) for line in comparisons[1:3])
    assert "scale r" in report and "structure r" in report
    metrics = json.loads((out / "metrics.json").read_text())
    layout = next(name for name in metrics["comparisons"] if name.startswith("layout"))
    abs_rel = metrics["comparisons"][layout]["abs_rel"]
    assert abs_rel["low"] <= abs_rel["difference"] <= abs_rel["high"]
    assert abs_rel["verdict"] in report
    assert set(metrics["correlations"]) == {r["model"] for r in metrics["results"]}
    block = readme_block([("moa-depthclip demo --quick", metrics)])  # what the README shows
    assert "`moa-depthclip demo --quick` (random-init backbone; 10 optimizer steps" in block
    assert "95 % CI" in block and f"{abs_rel['difference']:+.3f}" in block
    for index in range(4):
        with Image.open(out / f"panel_{index}.png") as panel:
            assert panel.width > 3 * panel.height  # image | GT | prediction | error
    with Image.open(out / "training_curve.png") as curve:
        assert curve.width > 0
    assert (out / "run" / "final" / "model.safetensors").is_file()


def test_quick_demo_uses_given_clip_weights(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    CLIPModel(tiny_clip_config()).save_pretrained(tmp_path / "clip")
    build_byte_level_clip_tokenizer(tmp_path / "clip")
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--steps", "3", "--set", "run.log_every=1"]) == 0
    # a second demo into the same folder replaces the first one's run
    assert main(["demo", "--quick", "--clip", str(tmp_path / "clip"), "--out", str(out), "--steps", "2",
                 "--set", "run.log_every=1"]) == 0  # fmt: skip
    assert "pretrained" in capsys.readouterr().out
    records = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss/total" in r] == [1, 2]
    report = (out / "report.md").read_text()
    assert "pretrained CLIP" in report and str(tmp_path / "clip") in report
    assert "random initialisation" not in report and "random-init" not in report


def test_demo_rejects_bad_budget(capsys) -> None:
    assert main(["demo", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_train_command_prints_config_and_rejects_missing_preset(capsys) -> None:
    assert main(["train", "--preset", "tiny", "--set", "optim.lr=0.01", "--print-config"]) == 0
    assert "lr: 0.01" in capsys.readouterr().out
    assert main(["train", "--out", "nowhere"]) == 2
    assert "--preset" in capsys.readouterr().err
