import pytest
import torch
import torch.nn.functional as F

from hieramp.model.config import TINY_VAE, VAR_PATCH_NUMS
from hieramp.model.resample import area_matrix, bicubic_matrix, resample_2d

# Every (src, dst) pair the VQ update uses: bicubic pn -> P, area P -> pn, for both scale lists.
PAIRS = sorted({(pn, pns[-1]) for pns in (VAR_PATCH_NUMS, TINY_VAE.patch_nums) for pn in pns})
UP = [("bicubic", bicubic_matrix, src, dst) for src, dst in PAIRS]
DOWN = [("area", area_matrix, dst, src) for src, dst in PAIRS]


def interpolate_matrix(src, dst, mode):
    """The (dst, src) matrix F.interpolate applies along one axis, read off one-hot inputs."""
    one_hot = torch.eye(src).reshape(src, 1, src, 1)  # (src, 1, src, 1): sample j is the j-th basis vector
    return F.interpolate(one_hot, size=(dst, 1), mode=mode)[:, 0, :, 0].T  # (dst, src)


@pytest.mark.parametrize("mode, build, src, dst", UP + DOWN)
def test_matrix_equals_interpolate(mode, build, src, dst):
    M = build(src, dst)
    assert M.shape == (dst, src) and M.dtype == torch.float32
    torch.testing.assert_close(M, interpolate_matrix(src, dst, mode), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode, build, src, dst", UP + DOWN)
def test_resample_2d_equals_interpolate(mode, build, src, dst):
    x = torch.randn(2, 8, src, src, generator=torch.Generator().manual_seed(src * 100 + dst))  # (B, C, src, src)
    M = build(src, dst)
    got = resample_2d(x, M, M)  # (B, C, dst, dst)
    torch.testing.assert_close(got, F.interpolate(x, size=(dst, dst), mode=mode), rtol=0, atol=1e-6)


def test_rectangular_and_float64():
    x = torch.randn(1, 3, 5, 13, dtype=torch.float64)  # (B, C, h, w)
    got = resample_2d(x, bicubic_matrix(5, 16, torch.float64), bicubic_matrix(13, 16, torch.float64))
    torch.testing.assert_close(got, F.interpolate(x, size=(16, 16), mode="bicubic"), rtol=0, atol=1e-12)
    got = resample_2d(x, area_matrix(5, 2, torch.float64), area_matrix(13, 4, torch.float64))
    torch.testing.assert_close(got, F.interpolate(x, size=(2, 4), mode="area"), rtol=0, atol=1e-12)


def test_rows_sum_to_one():
    for src, dst in PAIRS:
        torch.testing.assert_close(bicubic_matrix(src, dst).sum(1), torch.ones(dst))
        torch.testing.assert_close(area_matrix(dst, src).sum(1), torch.ones(src))
