"""Speed, memory and scaling benchmarks of MoA-DepthCLIP against the bare CLIP backbone.

Run them all with ``python benchmarks/run_all.py --out benchmarks/results`` (see docs/benchmarks.md).
"""
