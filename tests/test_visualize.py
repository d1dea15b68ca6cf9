"""Figures drawn with matplotlib: colour maps by name, colour bars with real ticks, panels, curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moa_depthclip import visualize as vis
from moa_depthclip.cli.main import main
from moa_depthclip.errors import ConfigError


def _ramp(height: int = 24, width: int = 32, low: float = 0.7, high: float = 3.9) -> np.ndarray:
    return np.linspace(low, high, height * width, dtype=np.float32).reshape(height, width)


def test_any_matplotlib_colormap_by_name() -> None:
    depth = _ramp()
    pictures = {
        name: vis.colorize(depth, 0.7, 3.9, cmap=name) for name in ("magma", "turbo", "Spectral_r", "gray")
    }
    assert all(p.shape == (24, 32, 3) and p.dtype == np.uint8 for p in pictures.values())
    assert not np.array_equal(pictures["magma"], pictures["turbo"])
    assert vis.colormap("cividis", 16).shape == (16, 3)
    # default: near = bright, so the nearest pixel is lighter than the farthest
    lightness = pictures["magma"].astype(float) @ [0.299, 0.587, 0.114]
    assert lightness[0, 0] > lightness[-1, -1] + 100
    assert vis.DEFAULT_CMAP == "magma"


def test_unknown_colormap_is_a_one_line_error_saying_how_to_list_names() -> None:
    with pytest.raises(ConfigError) as info:
        vis.colorize(_ramp(), cmap="magmaa")
    message = str(info.value)
    assert "\n" not in message and "'magmaa'" in message
    assert "did you mean magma" in message and "sorted(matplotlib.colormaps)" in message


def test_predict_rejects_unknown_cmap_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    code = main(
        ["predict", str(image), "--model", "no-such-model-folder", "--out", str(tmp_path), "--cmap", "nope"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown colour map 'nope'" in err and "Traceback" not in err


@pytest.mark.parametrize(("low", "high"), [(0.7, 3.9), (2.01, 2.03), (0.0, 0.0123), (1.2, 9.7), (0.5, 80.0)])
def test_nice_ticks_are_round_inside_and_at_least_three(low: float, high: float) -> None:
    ticks = vis.nice_ticks(low, high)
    assert len(ticks) >= 3 and all(low - 1e-12 <= t <= high + 1e-12 for t in ticks)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])


def test_small_panel_colour_bars_have_at_least_three_ticks_in_range() -> None:
    depth = _ramp()
    rng = np.random.default_rng(0)
    pred = depth * 1.1 + rng.random(depth.shape).astype(np.float32) * 0.2
    image = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    rendered = vis.render_panel(image, depth, pred, titles={})
    vmin, vmax = vis.depth_range(depth)
    assert len(rendered.ticks["depth"]) >= 3 and len(rendered.ticks["error"]) >= 3
    assert all(vmin <= t <= vmax for t in rendered.ticks["depth"])
    # small inputs are enlarged so that the titles and tick labels stay readable
    assert rendered.image.shape[0] >= 200 and rendered.image.shape[1] > 4 * 200
    bar = vis.render_colorbar(48, 0.7, 3.9)
    assert bar.image.shape[0] == 48 and len(bar.ticks["bar"]) >= 3


def test_panel_without_titles_and_inference_pair() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    titled = vis.make_panel(image, depth_pred=_ramp(300, 400), titles={})
    plain = vis.make_panel(image, depth_pred=_ramp(300, 400), titles=None)
    assert plain.shape[0] < titled.shape[0]
    big = vis.make_panel(np.zeros((2000, 1000, 3), np.uint8), depth_pred=_ramp(50, 25), max_height=480)
    assert big.shape[0] <= 480 + 40


def test_colorize_with_bar_keeps_depth_pixels(tmp_path: Path) -> None:
    depth = _ramp(120, 160)
    depth[5, 5] = np.nan
    picture = vis.colorize_with_bar(depth, 0.7, 3.9)
    assert picture.shape[0] == 120 and picture.shape[1] > 160
    assert np.array_equal(picture[:, :160], vis.colorize(depth, 0.7, 3.9))
    assert tuple(picture[5, 5]) == vis.INVALID_COLOR
    path = tmp_path / "c.png"
    Image.fromarray(picture).save(path)
    assert Image.open(path).size == (picture.shape[1], 120)


def test_training_curves_png_has_axes_and_size(tmp_path: Path) -> None:
    from matplotlib import _pylab_helpers

    managers = _pylab_helpers.Gcf.get_num_fig_managers()
    out = tmp_path / "curve.png"
    series = {
        "training loss": [(step, 1.0 / (step + 1)) for step in range(40)],
        "validation AbsRel": [(10 * i, 0.5 - 0.02 * i) for i in range(4)],
    }
    ticks = vis.plot_curves(series, out, xlabel="optimizer step", width=480, row_height=200)
    with Image.open(out) as picture:
        assert picture.size == (480, 400)
    assert len(ticks["training loss"]) >= 3 and len(ticks["validation AbsRel"]) >= 3
    assert min(ticks["training loss"]) >= 0.0 - 0.05
    assert _pylab_helpers.Gcf.get_num_fig_managers() == managers  # no pyplot figures left behind
    with pytest.raises(ValueError, match="non-empty"):
        vis.plot_curves({"empty": []}, tmp_path / "x.png")
