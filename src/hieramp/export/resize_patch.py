"""Export-time patch: bicubic and area resizes become constant matrix products.

ONNX Resize has no area mode and its cubic mode differs from PyTorch's at the borders, so
while the VQ update is traced, `F.interpolate` with those modes and an explicit size is
replaced by `hieramp.model.resample` matrices (tested against F.interpolate). Other calls pass
through. The patch is process-wide while active and always restored on exit.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..model.resample import area_matrix, bicubic_matrix, resample_2d

MATRICES = {"bicubic": bicubic_matrix, "area": area_matrix}


def _constant(mode, src, dst, dtype):
    """The matrix as a fresh tensor: a trace records its construction, but the numpy round trip
    cuts that data flow, so the graph holds the matrix as a constant."""
    return torch.from_numpy(MATRICES[mode](src, dst, dtype).numpy().copy())


@contextmanager
def resize_as_matrices():
    original = F.interpolate

    def interpolate(x, size=None, scale_factor=None, mode="nearest", *args, **kwargs):
        if mode not in MATRICES or size is None or x.dim() != 4:
            return original(x, size, scale_factor, mode, *args, **kwargs)
        (h, w), (H, W) = x.shape[-2:], size
        return resample_2d(x, _constant(mode, int(h), int(H), x.dtype), _constant(mode, int(w), int(W), x.dtype))  # (B, C, H, W)

    F.interpolate = interpolate
    try:
        yield
    finally:
        F.interpolate = original
