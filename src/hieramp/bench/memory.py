"""Peak memory of this process between a reset and a reading: resident set size on CPU, device
memory on GPU. Linux lets a process reset its RSS high-water mark (clear_refs); elsewhere the
reading is the peak since the process started."""
import resource
import sys
from pathlib import Path

import torch

PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK_RSS = "5"


def _rss_high_water_mb():
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024                    # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, kB elsewhere


def _reset_rss_high_water():
    try:
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
    except OSError:
        pass


class PeakMemory:
    """`reset()` then `peak_mb()`. On a CUDA device: the torch allocator's peak reservation plus
    the device memory the backend holds outside it (`backend.device_memory_bytes()`)."""

    def __init__(self, device, backend=None):
        self.on_device = torch.device(device).type == "cuda"
        self.backend = backend

    @property
    def kind(self) -> str:
        return "device memory" if self.on_device else "process RSS"

    def reset(self):
        if self.on_device:
            torch.cuda.reset_peak_memory_stats()
        else:
            _reset_rss_high_water()

    def peak_mb(self) -> float:
        if not self.on_device:
            return _rss_high_water_mb()
        outside_torch = self.backend.device_memory_bytes() if self.backend is not None else 0
        return (torch.cuda.max_memory_reserved() + outside_torch) / 2 ** 20
