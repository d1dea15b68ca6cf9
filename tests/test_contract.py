"""The depth-model contract: every model kind follows it, flips happen once, configs are not
mutated, and the model layer imports nothing above it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from inference_helpers import tiny_depth_model
from test_depthclip import RESNET_EMBED, TEXT, TINY_RESNET
from tiny_clip import tiny_clip_config, tiny_model_config
from transformers import CLIPModel, CLIPTextConfig

from moa_depthclip.baselines.constant import ConstantDepth
from moa_depthclip.baselines.depthclip import DepthCLIP
from moa_depthclip.baselines.layout_prior import LayoutPriorDepth
from moa_depthclip.data.transforms import CLIP_MEAN, CLIP_STD
from moa_depthclip.evaluation.protocol import synthetic_protocol
from moa_depthclip.evaluation.runner import evaluate
from moa_depthclip.model.contract import DepthModel, PretrainedDepthModel, model_card_renderer
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.model.prediction import predict_batch
from moa_depthclip.tokenizer import build_byte_level_clip_tokenizer

SRC = Path(__file__).resolve().parents[1] / "src" / "moa_depthclip"


def _depthclip() -> DepthCLIP:
    torch.manual_seed(0)
    return DepthCLIP.from_resnet(
        "random", architecture=TINY_RESNET, text_config=CLIPTextConfig(**TEXT, projection_dim=RESNET_EMBED)
    )


MODELS = {
    "moa-depthclip": tiny_depth_model,
    "depthclip": _depthclip,
    "constant": lambda: ConstantDepth(2.5),
    "layout-prior": lambda: LayoutPriorDepth(torch.linspace(1.0, 4.0, 12).reshape(3, 4)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def kind_and_model(request) -> tuple[str, PretrainedDepthModel]:
    return request.param, MODELS[request.param]()


@torch.no_grad()
def test_every_model_follows_the_contract(kind_and_model, tmp_path) -> None:
    kind, model = kind_and_model
    assert isinstance(model, PretrainedDepthModel) and isinstance(model, DepthModel)
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    output = model(images)
    assert isinstance(output, DepthOutput) and output.depth.shape == (2, 1, 64, 96)
    assert torch.isfinite(output.depth).all() and (output.depth > 0).all()

    depth = model.predict(np.full((50, 70, 3), 128, np.uint8), long_side=64)
    assert depth.shape == (50, 70) and depth.dtype == np.float32

    # is_random_init is a property of the class, never an attribute patched onto the instance.
    assert isinstance(model.is_random_init, bool) and "is_random_init" not in vars(model)
    assert isinstance(type(model).is_random_init, property)

    model.save_pretrained(tmp_path / kind)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in (tmp_path / kind).iterdir()}
    # The model card is the package's (moa_depthclip.model_card), not the mixin's template.
    card = model_card_renderer()
    assert card is not None
    readme = (tmp_path / kind / "README.md").read_text()
    assert readme.strip() == ModelCard(card(model)).content.strip()
    restored = type(model).from_pretrained(tmp_path / kind)
    assert not restored.training and restored.is_random_init == model.is_random_init
    torch.testing.assert_close(restored(images).depth, output.depth, rtol=0, atol=0)


def test_depthclip_loads_a_folder_written_by_the_previous_version(tmp_path) -> None:
    """The previous DepthCLIP.save_pretrained wrote this config.json by hand; it still loads."""
    from safetensors.torch import save_model

    model = _depthclip()
    model.config.normalization = "clip"  # what every folder written before the option used
    model.pixel_mean.copy_(torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
    model.pixel_std.copy_(torch.tensor(CLIP_STD).view(1, 3, 1, 1))
    previous = {k: v for k, v in model.config.to_dict().items() if k != "normalization"}
    meta = {
        "model_type": "depthclip",
        "backbone": "resnet",
        "source": "random",
        "is_random_init": True,
        "text_dim": RESNET_EMBED,
        "depthclip": previous,
        "encoder": {"resnet": TINY_RESNET.to_dict()},
    }
    (tmp_path / "config.json").write_text(json.dumps(meta, indent=2, default=str))
    save_model(model, str(tmp_path / "model.safetensors"))
    restored = DepthCLIP.from_pretrained(tmp_path)
    assert restored.config.normalization == "clip"
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(restored(images).depth, model(images).depth, rtol=0, atol=0)
    # And the mixin writes the same keys, so older code reads new folders too.
    model.save_pretrained(tmp_path / "new")
    assert set(json.loads((tmp_path / "new" / "config.json").read_text())) == set(meta)


# -- one flip ----------------------------------------------------------------------------------------


class _Counting(DepthModel):
    """Depth = 1 + the image's left-right position ramp; counts forward calls."""

    def __init__(self, default_flip: bool = False) -> None:
        super().__init__()
        self.calls = 0
        self._default_flip = default_flip

    @property
    def default_flip(self) -> bool:
        return self._default_flip

    def forward(self, images: torch.Tensor) -> DepthOutput:
        self.calls += 1
        ramp = torch.linspace(1.0, 2.0, images.shape[-1]).expand(images.shape[0], 1, *images.shape[-2:])
        return DepthOutput(depth=ramp.clone())


def test_flip_is_done_once_wherever_it_is_asked_for() -> None:
    images = torch.rand(2, 3, 32, 64)
    plain = _Counting()
    depth = predict_batch(plain, images)
    assert plain.calls == 1 and not torch.allclose(depth, depth.flip(-1))
    flipped = predict_batch(plain, images, flip=True)
    assert plain.calls == 3
    torch.testing.assert_close(flipped, torch.full_like(flipped, 1.5))  # ramp + mirrored ramp
    # Asked by the model's config and by the caller: still one mirrored pass.
    both = _Counting(default_flip=True)
    predict_batch(both, images, flip=True)
    assert both.calls == 2
    # The evaluation runner goes through the same path: protocol flip + model flip = one flip.
    sample = {"image": torch.rand(3, 32, 64), "depth": torch.full((1, 32, 64), 1.5), "name": "a"}
    result = evaluate(both, [sample], synthetic_protocol(flip=True), progress=False)
    assert both.calls == 4 and result.mean["abs_rel"] < 1e-6 and "flip averaging" in result.protocol


# -- from_clip -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("clip")
    CLIPModel(tiny_clip_config()).save_pretrained(directory)
    build_byte_level_clip_tokenizer(directory)
    return directory


def test_from_clip_accepts_a_source_string(clip_dir) -> None:
    model = MoADepthCLIP.from_clip(str(clip_dir))
    assert model.config.backbone.source == str(clip_dir) and model.config.backbone.pretrained
    assert not model.is_random_init
    reference = CLIPModel.from_pretrained(clip_dir).vision_model.embeddings.patch_embedding.weight
    torch.testing.assert_close(model.backbone.embeddings.patch_embedding.weight, reference)


def test_from_clip_leaves_the_callers_config_untouched(clip_dir) -> None:
    config = tiny_model_config(str(clip_dir))
    config.backbone.clip_config = None  # from_clip fills in the loaded architecture: on its copy
    before = config.to_dict()
    model = MoADepthCLIP.from_clip(config)
    assert config.to_dict() == before
    assert model.config is not config and model.config.backbone.clip_config is not None
    assert model.config.backbone.pretrained and not config.backbone.pretrained


# -- layering ------------------------------------------------------------------------------------------


def _package_imports(path: Path) -> set[str]:
    """Every ``moa_depthclip.*`` module a file imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("moa_depthclip.")}


def _module_file(name: str) -> Path | None:
    relative = Path(*name.split(".")[1:])
    for candidate in (SRC / relative.with_suffix(".py"), SRC / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module


def test_model_layer_imports_nothing_above_it() -> None:
    """Following every import from moa_depthclip.model (lazy ones included, transitively) never
    reaches baselines/, evaluation/, inference/, training/, demo/ or cli/."""
    above = ("baselines", "evaluation", "inference", "training", "demo", "cli", "hf", "app")
    seen: set[Path] = set()
    todo = [(path, "model") for path in (SRC / "model").glob("*.py")]
    while todo:
        path, chain = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _package_imports(path):
            layer = name.split(".")[1]
            assert layer not in above, f"{chain} -> {path.relative_to(SRC)} imports {name}"
            target = _module_file(name)
            if target is not None:
                todo.append((target, f"{chain} -> {path.relative_to(SRC)}"))
    assert SRC / "model" / "prediction.py" in seen and SRC / "data" / "transforms.py" in seen


def test_onnx_runtime_wrapper_follows_the_contract(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from moa_depthclip.inference.export_onnx import OnnxDepthModel, export_onnx

    source = LayoutPriorDepth(torch.linspace(1.0, 4.0, 12).reshape(3, 4))
    onnx_model = OnnxDepthModel(export_onnx(source, tmp_path / "prior.onnx", 64, 96))
    assert isinstance(onnx_model, DepthModel) and not isinstance(onnx_model, PretrainedDepthModel)
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = source(images).depth
    output = onnx_model(images)
    assert isinstance(output, DepthOutput)
    torch.testing.assert_close(output.depth, expected, rtol=1e-5, atol=1e-5)
    depth = onnx_model.predict(np.zeros((50, 70, 3), np.uint8), long_side=64)
    assert depth.shape == (50, 70)
    assert onnx_model.is_random_init is False and isinstance(type(onnx_model).is_random_init, property)
    assert onnx_model.default_flip is False


def test_size_hint_and_working_size_round_the_same_way() -> None:
    """80 is 2.5 patches: the backbone's hint and the prediction path both round it up to 96."""
    from moa_depthclip.errors import InputSizeError
    from moa_depthclip.model.prediction import working_size

    model = tiny_depth_model()
    with pytest.raises(InputSizeError, match="96x64"):
        model.backbone.token_grid(80, 64)
    assert working_size(80, 64, long_side=None) == (96, 64)


@pytest.mark.parametrize("kind", ["constant", "layout"])
@pytest.mark.parametrize("with_model_type", [True, False])
def test_saved_floors_load_by_path_through_the_model_spec(tmp_path, kind, with_model_type):
    """A saved constant or layout-prior folder is a model spec like any other saved model,
    also when written before config.json recorded its ``model_type``."""
    from moa_depthclip.inference.loading import load_depth_model

    if kind == "constant":
        model = ConstantDepth(2.5)
    else:
        model = LayoutPriorDepth(torch.linspace(1.0, 4.0, 48).reshape(6, 8))
    model.save_pretrained(tmp_path / "saved")
    config_file = tmp_path / "saved" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["model_type"] == type(model).MODEL_TYPE
    if not with_model_type:
        config.pop("model_type")
        config_file.write_text(json.dumps(config))
    loaded = load_depth_model(str(tmp_path / "saved"))
    assert type(loaded) is type(model)
    images = torch.rand(1, 3, 32, 64)
    torch.testing.assert_close(loaded(images).depth, model(images).depth)
