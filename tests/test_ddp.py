"""Data-parallel training: 2 CPU processes (gloo, launched by torchrun) equal one process on the same
global batch (one process accumulating the two micro-batches the two processes compute)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from moa_depthclip.training.config import build_config
from moa_depthclip.training.trainer import Trainer

OVERRIDES = ["run.max_steps=3", "run.checkpoint_every=0", "data.batch_size=2"]


def test_two_process_gloo_run_matches_single_process(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "moa_depthclip.cli.main", "train", "--preset", "tiny", "--out", str(tmp_path / "ddp"),
        "--set", *OVERRIDES,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "global batch 4 (2 process(es))" in done.stdout + done.stderr

    single = Trainer(
        build_config("tiny", overrides=[*OVERRIDES, "optim.accumulation_steps=2"]), tmp_path / "one"
    )
    single.train()
    assert single.sampler.global_batch == 4

    ddp_state = load_file(str(tmp_path / "ddp" / "final" / "model.safetensors"))
    one_state = load_file(str(tmp_path / "one" / "final" / "model.safetensors"))
    assert ddp_state.keys() == one_state.keys()
    for name, tensor in one_state.items():
        assert torch.allclose(ddp_state[name], tensor, rtol=1e-4, atol=1e-6), name
    # the run really trained: the final weights differ from a fresh build
    fresh = Trainer(build_config("tiny", overrides=OVERRIDES), tmp_path / "fresh").model.state_dict()
    assert any(not torch.allclose(fresh[name], one_state[name]) for name in one_state)
    # only rank 0 wrote files: one checkpoint series, one metrics log
    assert (tmp_path / "ddp" / "checkpoints" / "latest.json").is_file()
