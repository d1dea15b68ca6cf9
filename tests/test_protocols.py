"""The published evaluation settings, each against a direct re-computation of every step:

* DepthCLIP as its official code evaluates it (``nyu-depthclip``): the 416x544 region at rows
  56:472, cols 60:604, ImageNet mean/std, raw layer-4 features normalised over all channels with
  every second channel kept, flip averaging, the zero 480x640 canvas, DepthCLIP's Eigen crop
  (cols 46:601) and the prediction > 1e-3 rule;
* NYU ground truth: an evaluation from the labeled .mat (raw) equals one from the equivalent
  sync-layout files;
* the authors' earlier protocol (``nyu-adadepthclip``) on a hand example;
* one dataset vocabulary for training and evaluation (KITTI included).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F
from PIL import Image
from test_data_nyu import write_labeled_mat
from torch import nn
from transformers import CLIPTextConfig

from moa_depthclip.baselines.clip_resnet import ModifiedResNetConfig
from moa_depthclip.baselines.constant import ConstantDepth
from moa_depthclip.baselines.depthclip import DEPTHCLIP_BIN_DEPTHS, DepthCLIP
from moa_depthclip.cli.main import main
from moa_depthclip.data.nyu import NYUDepthV2Mat, NYUSync
from moa_depthclip.data.registry import DATASET_NAMES, DatasetOptions, build_dataset
from moa_depthclip.evaluation.protocol import get_protocol
from moa_depthclip.evaluation.report import markdown_table
from moa_depthclip.evaluation.runner import evaluate
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.training.config import DataConfig
from moa_depthclip.training.data import build_datasets

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TEXT = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1, vocab_size=520,
    max_position_embeddings=40, hidden_act="quick_gelu", bos_token_id=512, eos_token_id=513, pad_token_id=513,
)  # fmt: skip
# Joint space half the trunk width, as RN50's 1024 vs 2048 (the official channel subsampling needs it).
TINY_RESNET = ModifiedResNetConfig(layers=(1, 1, 1, 1), width=8, output_dim=128, heads=4, input_resolution=64)


@pytest.fixture(scope="module")
def depthclip() -> DepthCLIP:
    torch.manual_seed(0)
    return DepthCLIP.from_resnet(
        "random", architecture=TINY_RESNET, text_config=CLIPTextConfig(**TEXT, projection_dim=128)
    )


def nyu_like_samples(count: int = 2, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(count):
        image = torch.randint(0, 256, (3, 480, 640), generator=generator).float() / 255.0
        depth = 0.5 + 11.0 * torch.rand(1, 480, 640, generator=generator)  # some beyond the 10 m cap
        depth[:, ::5, ::7] = 0.0  # holes
        samples.append({"image": image, "depth": depth, "name": f"frame_{i}"})
    return samples


class Listed(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


# -- DepthCLIP's official evaluation ------------------------------------------------------------------


@torch.no_grad()
def official_depthclip_metrics(model: DepthCLIP, samples: list[dict]) -> tuple[dict[str, float], list[int]]:
    """Every step of the official evaluation written out, from the image to the mean metrics."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    bins = torch.tensor(DEPTHCLIP_BIN_DEPTHS).view(1, -1, 1, 1)
    text = model.text_features  # encoded prompts (the text side is tested in test_depthclip)

    def coarse(x: torch.Tensor) -> torch.Tensor:
        grid = model.encoder.resnet.feature_map((x - mean) / std)  # raw layer 4 (trunk: test_clip_resnet)
        assert grid.shape[1:] == (256, 13, 17)
        features = (grid / grid.norm(dim=1, keepdim=True))[:, 0::2]  # all channels, then every second
        logits = 100.0 * torch.einsum("bchw,kc->bkhw", features, text) / 0.1
        return (logits.softmax(dim=1) * bins).sum(dim=1, keepdim=True)

    totals = {"delta1": 0.0, "abs_rel": 0.0, "rmse": 0.0, "log10": 0.0}
    counts = []
    for sample in samples:
        x = sample["image"][None, :, 56:472, 60:604]
        assert x.shape[-2:] == (416, 544)
        depth = 0.5 * (coarse(x) + coarse(x.flip(-1)).flip(-1))
        depth = F.interpolate(depth, size=(416, 544), mode="bilinear", align_corners=True)[0, 0]
        canvas = torch.zeros(480, 640)
        canvas[56:472, 60:604] = depth
        gt = sample["depth"][0]
        crop = torch.zeros(480, 640, dtype=torch.bool)
        crop[45:471, 46:601] = True
        valid = (gt < 10) & (gt > 1e-3) & (canvas > 1e-3) & crop
        g, p = gt[valid].double().clamp(1e-3, 10), canvas[valid].double().clamp(1e-3, 10)
        totals["delta1"] += float((torch.maximum(g / p, p / g) < 1.25).double().mean())
        totals["abs_rel"] += float(((g - p).abs() / g).mean())
        totals["rmse"] += float(((g - p) ** 2).mean().sqrt())
        totals["log10"] += float((g.log10() - p.log10()).abs().mean())
        counts.append(int(valid.sum()))
    return {k: v / len(samples) for k, v in totals.items()}, counts


def test_depthclip_official_setting_matches_direct_recomputation(depthclip: DepthCLIP) -> None:
    config = depthclip.config
    assert (config.resnet_features, config.normalization, config.resnet_positional_embedding) == (
        "released_code", "imagenet", False,
    )  # fmt: skip
    samples = nyu_like_samples()
    result = evaluate(depthclip, Listed(samples), get_protocol("nyu-depthclip"), progress=False)
    expected, counts = official_depthclip_metrics(depthclip, samples)
    for name, value in expected.items():
        assert result.mean[name] == pytest.approx(value, abs=1e-5), name
    assert [row["valid_pixels"] for row in result.rows] == counts
    # The canvas and DepthCLIP's crop matter: rows 45:56 hold no prediction, cols 41:46 are not scored.
    standard = evaluate(depthclip, Listed(samples), get_protocol("nyu"), progress=False)
    assert standard.rows[0]["valid_pixels"] > counts[0]
    assert "rows 56:472, cols 60:604" in result.protocol and "cols 46:601" in result.protocol
    assert "flip averaging" in result.protocol and get_protocol("depthclip-official") == get_protocol(
        "nyu-depthclip"
    )


def test_depthclip_spec_defaults_to_the_official_protocol_on_nyu() -> None:
    from types import SimpleNamespace

    from moa_depthclip.cli.evaluate import protocol_names

    args = SimpleNamespace(protocol=None, dataset="nyu-mat")
    assert protocol_names(args, "depthclip-rn50:weights/RN50.pt") == ["nyu-depthclip"]
    assert protocol_names(args, "constant") == ["nyu"]
    assert protocol_names(SimpleNamespace(protocol=None, dataset="synthetic"), "depthclip-rn50") == [
        "synthetic"
    ]
    both = SimpleNamespace(protocol=["nyu", "nyu-adadepthclip"], dataset="nyu-sync")
    assert protocol_names(both, "depthclip-rn50") == ["nyu", "nyu-adadepthclip"]


# -- NYU ground truth: .mat (raw) == sync layout --------------------------------------------------------


def write_sync_from_mat(mat: Path, indices: list[int], root: Path) -> Path:
    """What the BTS extraction writes for frames ``indices`` (0-based): uint16 mm PNG of rawDepths x 1000
    (truncated), RGB with only rows 7:474, cols 7:632 kept (PNG here, so the pixels stay exact)."""
    import h5py

    lines = []
    with h5py.File(mat, "r") as handle:
        for i in indices:
            image = np.asarray(handle["images"][i]).transpose(2, 1, 0)
            raw = np.asarray(handle["rawDepths"][i]).T
            black = np.zeros_like(image)
            black[7:474, 7:632] = image[7:474, 7:632]
            folder = root / "living_room"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(black).save(folder / f"rgb_{i:05d}.png")
            Image.fromarray((raw * 1000.0).astype(np.uint16)).save(folder / f"sync_depth_{i:05d}.png")
            lines.append(f"living_room/rgb_{i:05d}.png living_room/sync_depth_{i:05d}.png 518.8579")
    (root / "test_files.txt").write_text("\n".join(lines) + "\n")
    return root / "test_files.txt"


def test_mat_raw_and_sync_files_give_identical_numbers(tmp_path: Path, depthclip: DepthCLIP) -> None:
    mat = write_labeled_mat(tmp_path / "labeled.mat", 3, 480, 640)
    splits = tmp_path / "splits.mat"
    scipy.io.savemat(splits, {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[2], [3]])})
    files = write_sync_from_mat(mat, [1, 2], tmp_path / "sync")
    from_mat = NYUDepthV2Mat(mat, splits, "test")
    from_sync = NYUSync(tmp_path / "sync", files)
    for model, protocol in (
        (depthclip, "nyu-depthclip"),
        (ConstantDepth(2.0), "nyu"),
        (ConstantDepth(2.0), "nyu-adadepthclip"),
    ):
        a = evaluate(model, from_mat, get_protocol(protocol), progress=False)
        b = evaluate(model, from_sync, get_protocol(protocol), progress=False)
        assert a.mean == b.mean, protocol
        assert [r["valid_pixels"] for r in a.rows] == [r["valid_pixels"] for r in b.rows]
    # The choice matters: the filled depths give other numbers, and every table says which was used.
    filled = evaluate(ConstantDepth(2.0), NYUDepthV2Mat(mat, splits, "test", ground_truth="filled"), get_protocol("nyu"), progress=False)  # fmt: skip
    assert filled.mean != b.mean
    assert "Ground truth: raw (NYUDepthV2Mat)." in markdown_table([a])
    assert "Ground truth: filled (NYUDepthV2Mat)." in markdown_table([filled])


# -- the authors' earlier protocol ----------------------------------------------------------------------


class _Recorder(nn.Module):
    """Predicts a constant and remembers the input sizes it was given."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value, self.sizes = value, []
        self.register_buffer("anchor", torch.zeros(()))

    def forward(self, images: torch.Tensor) -> DepthOutput:
        self.sizes.append(tuple(images.shape[-2:]))
        return DepthOutput(depth=torch.full((images.shape[0], 1, *images.shape[-2:]), self.value))


def test_adadepthclip_protocol_hand_example() -> None:
    """Garg fractions of a 10x10 frame keep rows 4:9, cols 0:9; the prediction (20 m, clamped to 10)
    is median-scaled per batch of 2 and the metrics pool the pixels of a batch.

    Batch 1: ground truth 1 m (image 1) and 3 m (image 2); torch's median of the 90 pixels is the lower
    middle value, 1 m, so the prediction becomes 1 m: AbsRel = (0 + 2/3) / 2, RMSE = sqrt(2),
    delta1 = 0.5. Batch 2: 2 m everywhere, exact. Means over the two batches: AbsRel 1/6,
    RMSE sqrt(2)/2, delta1 0.75 (per-image averaging with per-image scaling would give all exact).
    """
    samples = []
    for i, value in enumerate((1.0, 3.0, 2.0)):
        depth = torch.full((1, 10, 10), 7.0)  # outside the crop: must not be scored
        depth[:, 4:9, 0:9] = value
        samples.append({"image": torch.rand(3, 10, 10), "depth": depth, "name": f"f{i}"})
    protocol = get_protocol("nyu-adadepthclip", batch_size=2)
    model = _Recorder(20.0)
    result = evaluate(model, Listed(samples), protocol, progress=False, batch_size=1)
    assert set(model.sizes) == {(224, 224)}
    assert len(result.rows) == 2 and result.counts["batches"] == 2 and result.counts["evaluated"] == 3
    assert result.rows[0]["valid_pixels"] == 90 and result.rows[1]["valid_pixels"] == 45
    assert result.mean["abs_rel"] == pytest.approx(1 / 6)
    assert result.mean["rmse"] == pytest.approx(math.sqrt(2) / 2)
    assert result.mean["delta1"] == pytest.approx(0.75)
    assert "median scaling per batch of 2" in result.protocol and "averaged over batches" in result.protocol
    # Per image, with per-image median scaling, the same predictions are exact.
    per_image = evaluate(model, Listed(samples), protocol.with_options(aggregation="image", median_scaling="image"), progress=False)  # fmt: skip
    assert per_image.mean["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_validation_feeds_the_model_what_the_protocol_says() -> None:
    from moa_depthclip.training.validation import validate

    samples = [{"image": torch.rand(3, 48, 64), "depth": torch.full((1, 48, 64), 2.0), "name": "a"}]
    model = _Recorder(2.0)
    metrics = validate(model, Listed(samples), "nyu-adadepthclip", torch.device("cpu"))
    assert model.sizes == [(224, 224)] and metrics["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    model.sizes.clear()
    validate(model, Listed(samples), "nyu", torch.device("cpu"))
    assert model.sizes == [(64, 64)]  # whole frame, each side rounded to a multiple of 32


def test_standard_and_authors_protocol_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mat = write_labeled_mat(tmp_path / "labeled.mat", 3)
    splits = tmp_path / "splits.mat"
    scipy.io.savemat(splits, {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[2], [3]])})
    code = main(
        ["evaluate", "--dataset", "nyu_mat", "--mat", str(mat), "--splits", str(splits), "--model", "constant:2",
         "--protocol", "nyu", "--protocol", "nyu-adadepthclip", "--no-progress"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "| constant (2 m) | P1 |" in printed and "| constant (2 m) | P2 |" in printed
    assert "Protocol P1: nyu protocol" in printed and "Protocol P2: nyu-adadepthclip protocol" in printed
    assert "Ground truth: raw (NYUDepthV2Mat)." in printed


# -- one dataset vocabulary: training and evaluation ---------------------------------------------------


def write_kitti(root: Path) -> Path:
    lines = []
    for i in range(3):
        image = root / "raw" / "2011_09_26_drive_0001_sync" / "image_02" / "data" / f"{i:010d}.png"
        depth = root / "gt" / "2011_09_26_drive_0001_sync" / "proj_depth" / f"{i:010d}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        depth.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 80, 3), 40 * i, dtype=np.uint8)).save(image)
        values = np.zeros((24, 80), dtype=np.uint16)
        values[12:, ::3] = int((10.0 + i) * 256)  # sparse LiDAR-like ground truth, metres * 256
        Image.fromarray(values).save(depth)
        lines.append(f"{image.relative_to(root / 'raw')} {depth.relative_to(root / 'gt')} 721.5377")
    lines.append("2011_09_26_drive_0001_sync/image_02/data/0000000099.png None 721.5377")
    (root / "files.txt").write_text("\n".join(lines) + "\n")
    return root / "files.txt"


def test_kitti_is_trainable_and_names_are_shared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = write_kitti(tmp_path)
    config = DataConfig(
        dataset="kitti", data_root=str(tmp_path / "raw"), gt_root=str(tmp_path / "gt"),
        train_filenames=str(files), val_filenames=str(files),
    )  # fmt: skip
    train, val = build_datasets(config)
    assert len(train) == len(val) == 3 and val.skipped == [
        "2011_09_26_drive_0001_sync/image_02/data/0000000099.png"
    ]
    assert float(train[1]["depth"].max()) == pytest.approx(11.0)
    # The same name and files evaluate.
    code = main(
        ["evaluate", "--dataset", "kitti", "--data-root", str(tmp_path / "raw"), "--gt-root", str(tmp_path / "gt"),
         "--filenames", str(files), "--model", "constant:10.5", "--no-progress"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "kitti protocol" in printed and "1 dataset entries without ground truth" in printed
    # Underscore spellings of older configs name the same dataset; every registry name is a CLI choice.
    assert DataConfig(dataset="nyu_mat").dataset == "nyu-mat"
    assert set(DATASET_NAMES) == {"synthetic", "nyu-mat", "nyu-sync", "kitti", "folder"}


def test_missing_dataset_option_names_config_key_and_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from moa_depthclip.errors import DataError

    with pytest.raises(DataError, match=r"mat_path \(data.mat_path / --mat\)"):
        build_dataset("nyu-mat", DatasetOptions(), "train")
    with pytest.raises(DataError, match="unknown dataset 'nyu'"):
        build_dataset("nyu", DatasetOptions(), "test")
    assert main(["evaluate", "--dataset", "kitti", "--no-progress"]) == 2
    assert "--filenames" in capsys.readouterr().err
