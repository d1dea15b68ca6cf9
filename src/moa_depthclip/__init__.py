"""MoA-DepthCLIP: prompt-guided Mixture-of-Adapters on CLIP for metric monocular depth."""

__version__ = "0.1.0"
