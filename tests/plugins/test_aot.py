"""Ahead-of-time compilation of the kernel for sm_80 and sm_90, on a machine without a GPU."""
import pytest
import torch

from hieramp.plugins.aot import compile_kernel


@pytest.mark.parametrize("arch", [80, 90])
def test_cubin_for_each_arch(arch):
    kernel = compile_kernel(arch, torch.float16, 64, mode="logit")
    assert kernel.cubin[:4] == b"\x7fELF"
    assert f".target sm_{arch}" in kernel.ptx and f".entry {kernel.name}(" in kernel.ptx
    assert kernel.n_regs > 0 and kernel.shared_bytes > 0
    assert kernel.spill_bytes == 0  # kernel_config's tiles are chosen to avoid spills
    assert (kernel.block_m, kernel.n_max, kernel.num_warps) == (32, 256, 4)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_float32_path_weight_mode(dtype):
    kernel = compile_kernel(90, dtype, 128, mode="weight", scale=0.125)
    assert kernel.cubin[:4] == b"\x7fELF" and kernel.n_regs > 0 and kernel.spill_bytes == 0
    assert (kernel.block_m, kernel.num_warps, kernel.scale) == (16, 8, 0.125)


@pytest.mark.parametrize("kwargs,message", [
    (dict(arch=75), "arch"),
    (dict(dtype=torch.float64), "dtype"),
    (dict(head_dim=48), "head_dim"),
    (dict(mode="bias"), "mode"),
])
def test_invalid_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compile_kernel(**{**dict(arch=90, dtype=torch.float16, head_dim=64), **kwargs})
