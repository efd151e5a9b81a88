"""Fixed-size linear resamplings as constant matrices, for graphs without PyTorch's resize modes.

ONNX Resize has no area mode and its cubic mode differs from PyTorch's at the borders, so the
VQ update is exported as matrix products. Each matrix M (dst, src) resamples one axis exactly as
`F.interpolate(..., align_corners=False)` does; a 2-D resize is `M_h @ x @ M_w^T`. The matrices
are built in float64 and cast to the requested dtype.
"""
import math

import torch

CUBIC_A = -0.75  # PyTorch's bicubic kernel constant


def _cubic_weights(t: float) -> tuple:
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 for a fraction t in [0, 1)."""
    A = CUBIC_A

    def near(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def bicubic_matrix(src: int, dst: int, dtype=torch.float32) -> torch.Tensor:
    """(dst, src): `mode="bicubic"` along one axis; out-of-range taps are clamped to the border."""
    M = torch.zeros(dst, src, dtype=torch.float64)
    scale = src / dst
    for i in range(dst):
        x = (i + 0.5) * scale - 0.5  # not clamped at 0 in cubic mode, unlike linear
        x0 = math.floor(x)
        for offset, w in zip(range(-1, 3), _cubic_weights(x - x0)):
            M[i, min(max(x0 + offset, 0), src - 1)] += w
    return M.to(dtype)


def area_matrix(src: int, dst: int, dtype=torch.float32) -> torch.Tensor:
    """(dst, src): `mode="area"` along one axis, i.e. adaptive average pooling over [start, end)."""
    M = torch.zeros(dst, src, dtype=torch.float64)
    for i in range(dst):
        start, end = (i * src) // dst, -((-(i + 1) * src) // dst)  # floor and ceil
        M[i, start:end] = 1.0 / (end - start)
    return M.to(dtype)


def resample_2d(x_BChw: torch.Tensor, M_h: torch.Tensor, M_w: torch.Tensor) -> torch.Tensor:
    """Resize the last two axes: (B, C, h, w) -> (B, C, H, W) with M_h (H, h) and M_w (W, w)."""
    return M_h @ x_BChw @ M_w.transpose(0, 1)  # (B, C, H, W)
