"""Peak memory of a piece of work on the CPU (resident set) or the GPU (allocator), in MiB.

``tracemalloc`` does not see torch's allocations, so on the CPU the figure is the growth of the
process's peak resident set: freed memory the C allocator still holds is first handed back to the
system (glibc ``malloc_trim``; otherwise a repeated measurement would find the previous call's
buffers resident and report ~0), then the kernel's peak mark is reset to the current RSS
(``/proc/self/clear_refs``, Linux >= 4.0) and read back after the work (``VmHWM``). Where the mark
cannot be reset, ``ru_maxrss`` growth is used, which understates when an earlier peak was higher.
Run it in a fresh process per model so that nothing else shares the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from collections.abc import Callable
from typing import Any

import torch


def status_mib(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux) in MiB, or None where there is none."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark, so the peak reflects only what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def release_free_memory() -> bool:
    """Return the C allocator's free pages to the system (glibc); False where there is no such call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


def max_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def rss_peak_probe(work: Callable[[], Any], runtime: Any, times: int = 1) -> dict[str, Any]:
    """Run ``work`` ``times`` times; the peak memory it added above what was resident before."""
    device = getattr(runtime, "device", "cpu")
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2**20
        for _ in range(times):
            work()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        kind = "torch.cuda.max_memory_allocated"
    else:
        release_free_memory()
        current = status_mib("VmRSS")
        if current is not None and reset_peak_rss():
            before, kind = current, "VmHWM (peak RSS, reset before the work)"
        else:
            before, kind = max_rss_mib(), "ru_maxrss"
        for _ in range(times):
            work()
        peak = (status_mib("VmHWM") or max_rss_mib()) if kind.startswith("VmHWM") else max_rss_mib()
    return {"kind": kind, "before_mib": before, "peak_mib": peak, "step_peak_mib": peak - before}
