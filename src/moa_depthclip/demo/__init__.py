"""The one-command demo: ``run`` orchestrates (train, evaluate, compare), ``report`` writes the page."""

from moa_depthclip.demo.run import DemoResult, demo_config, find_local_clip, run_demo

__all__ = ["DemoResult", "demo_config", "find_local_clip", "run_demo"]
