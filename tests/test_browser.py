"""The web app in a real browser (Debian's headless Chromium driven by selenium).

Skips, saying why, where Gradio, selenium, Chromium or chromedriver is missing; ``.ci/run`` installs
Chromium when it can. The same check runs by hand: ``python scripts/browser_check.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from tiny_clip import tiny_model_config

from moa_depthclip.model.moa_depthclip import MoADepthCLIP

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _browser_check():  # the script is the one implementation; the test imports it
    spec = importlib.util.spec_from_file_location("browser_check", SCRIPTS / "browser_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("browser_check", module)
    spec.loader.exec_module(module)
    return module


browser_check = _browser_check()
REASON = browser_check.missing_requirements()


@pytest.mark.skipif(REASON is not None, reason=f"browser test needs Chromium + selenium + Gradio: {REASON}")
def test_upload_in_headless_chromium_shows_depth_and_serves_downloads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    MoADepthCLIP.from_clip(tiny_model_config()).save_pretrained(model_dir)
    image = browser_check.demo_image(tmp_path / "room.png")
    screenshot = tmp_path / "app.png"

    check = browser_check.run_check([str(model_dir)], image, screenshot, timeout=180)

    assert browser_check.verify(check) == []
    assert "Processed 1 of 1" in check.message and "RANDOM weights" in check.message
    assert check.panel_count >= 1
    assert {name.split("_", 1)[1] for name in check.downloads} == {
        "room_depth.png",
        "room_depth.npy",
        "room.ply",
    }
    assert screenshot.stat().st_size > 10_000
