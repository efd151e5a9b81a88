"""The Triton TopKBiasAttention kernel against the reference op (docs/design.md, "The amplification op").

Without CUDA the kernel runs in Triton's interpreter (set up in tests/conftest.py), which is slow:
shapes stay tiny (B=1, H=2, D=16), and only every VAR scale in two fast combinations is unmarked.
"""
import itertools

import pytest
import torch

from hieramp.model import amp_op
from hieramp.plugins import triton_attention
from hieramp.plugins.triton_attention import topk_bias_attention

SIZES = [1, 4, 9, 16, 25, 36, 64, 100, 169, 256]  # n per scale at 256 px: 1, 2, 3, 4, 5, 6, 8, 10, 13, 16 squared
CACHED = dict(zip(SIZES, itertools.accumulate([0] + SIZES)))  # P: tokens of the earlier scales
ATOL = {torch.float32: 1e-5, torch.float16: 1e-4, torch.bfloat16: 1e-4}

if not torch.cuda.is_available() and isinstance(triton_attention.topk_bias_attention_kernel,
                                                triton_attention.triton.runtime.JITFunction):
    pytest.skip("triton was imported before TRITON_INTERPRET=1 was set and there is no GPU",
                allow_module_level=True)


def inputs(n, P=None, B=1, H=2, D=16, dtype=torch.float32, seed=0, device="cpu"):
    P = CACHED[n] if P is None else P
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, L, D, generator=g) for L in (n + 1, P + n + 1, P + n + 1))
    return [t.to(device=device, dtype=dtype) for t in (q, k, v)]


def check(q, k, v, beta=5.0, rho=0.5, mode="logit", scale=None, atol=None):
    """The kernel on q, k, v against the reference on the same values in float32."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    out = topk_bias_attention(q, k, v, beta, rho, scale, mode)
    ref = amp_op.topk_bias_attention(q.float(), k.float(), v.float(), beta, rho, scale, mode)
    assert out.dtype == torch.float32 and out.shape == q.shape
    torch.testing.assert_close(out, ref, atol=atol or ATOL[q.dtype], rtol=0)
    return out


@pytest.mark.parametrize("n", SIZES)
def test_every_scale_logit_float32(n):
    check(*inputs(n), mode="logit")


@pytest.mark.parametrize("n", SIZES)
def test_every_scale_weight_float16(n):
    check(*inputs(n, dtype=torch.float16), mode="weight")


@pytest.mark.parametrize("n", [4, 36])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", amp_op.MODES)
def test_dtypes_and_modes(n, dtype, mode):
    check(*inputs(n, dtype=dtype), mode=mode)


@pytest.mark.slow
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype,mode", [(torch.float32, "weight"), (torch.float16, "logit"),
                                        (torch.bfloat16, "logit"), (torch.bfloat16, "weight")])
def test_every_scale_all_combinations(n, dtype, mode):
    check(*inputs(n, B=2, dtype=dtype), mode=mode)


@pytest.mark.parametrize("D", [32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_head_dims(D, dtype):
    check(*inputs(16, H=3, D=D, dtype=dtype), mode="weight", rho=0.25)


@pytest.mark.parametrize("beta,rho", [(0.0, 0.5), (1.0, 0.5), (5.0, 0.0), (5.0, 0.3), (5.0, 1.0),
                                      (5.0, 1.7), (-2.0, 0.5), (0.25, 0.75)])
@pytest.mark.parametrize("mode", amp_op.MODES)
def test_beta_rho(beta, rho, mode):
    check(*inputs(25, B=2), beta=beta, rho=rho, mode=mode)


@pytest.mark.parametrize("mode,beta", [("logit", 0.0), ("weight", 1.0)])
def test_neutral_beta_is_scale_restricted_attention(mode, beta):
    q, k, v = inputs(36)
    out = topk_bias_attention(q, k, v, beta, 0.5, 0.25, mode)
    torch.testing.assert_close(out, amp_op.scale_restricted_attention(q, k, v, 0.25), atol=1e-5, rtol=0)


def test_scalars_as_tensors():
    q, k, v = inputs(16, B=2)
    check(q, k, v, beta=torch.tensor(3.0), rho=torch.tensor([0.4], dtype=torch.float64), mode="weight")


def test_k_sel_rounds_like_the_reference():
    """floor(rho * n) in float64: 0.7 * 100 -> 70 as a Python float, 69 as a float32 tensor."""
    q, k, v = inputs(100, P=20)
    python_float = check(q, k, v, beta=5.0, rho=0.7)
    float32_tensor = check(q, k, v, beta=5.0, rho=torch.tensor(0.7))
    assert not torch.allclose(python_float, float32_tensor)


@pytest.mark.parametrize("n", [9, 64])
@pytest.mark.parametrize("rho", [0.1, 0.5])
def test_ties_select_the_lowest_indices(n, rho):
    """A zero class query gives every spatial key the same saliency: the first k_sel win."""
    q, k, v = inputs(n, B=2)
    q[:, :, n] = 0
    out = check(q, k, v, beta=3.0, rho=rho, mode="weight")
    P, k_sel = CACHED[n], max(1, int(rho * n))
    weights = torch.softmax(0.25 * q @ k.transpose(-1, -2) + amp_op.class_row_mask(P, n + 1, q.device), -1)
    weights[..., P:P + k_sel] *= 3.0
    torch.testing.assert_close(out, weights @ v, atol=1e-5, rtol=0)


def test_duplicate_keys_tie_exactly():
    """Integer-valued q and k with repeated spatial keys: exact ties inside the top-k boundary."""
    n, g = 25, torch.Generator().manual_seed(1)
    q, k, v = inputs(n, B=2)
    q = torch.randint(-2, 3, q.shape, generator=g).float()
    k = torch.randint(-2, 3, k.shape, generator=g).float()
    P = CACHED[n]
    k[:, :, P:P + n] = k[:, :, P:P + 5].repeat(1, 1, 5, 1)  # five groups of five equal keys
    check(q, k, v, beta=5.0, rho=0.5, mode="logit", scale=0.5)


def test_non_contiguous_inputs():
    q, k, v = (t.transpose(-1, -2).contiguous().transpose(-1, -2) for t in inputs(16))
    assert not q.is_contiguous()
    check(q, k, v, mode="weight")


@pytest.mark.parametrize("change,message", [
    (lambda q, k, v: (q[0], k, v), "4-D"),
    (lambda q, k, v: (q.double(), k, v), "dtype"),
    (lambda q, k, v: (q, k.half(), v), "share one dtype"),
    (lambda q, k, v: (q[..., :1, :], k, v), "n >= 1"),
    (lambda q, k, v: (q[..., :12], k[..., :12], v[..., :12]), "power of two"),
    (lambda q, k, v: (q, k[:, :1], v), "k must be"),
    (lambda q, k, v: (q, k, v[..., :-1, :]), "v must have"),
])
def test_invalid_tensors(change, message):
    with pytest.raises(ValueError, match=message):
        topk_bias_attention(*change(*inputs(4)), 5.0, 0.5, 0.25, "logit")


@pytest.mark.parametrize("beta,rho,mode,message", [
    (5.0, 0.5, "bias", "mode"),
    ("5", 0.5, "logit", "beta"),
    (5.0, torch.ones(2), "logit", "rho"),
])
def test_invalid_arguments(beta, rho, mode, message):
    with pytest.raises(ValueError, match=message):
        topk_bias_attention(*inputs(4), beta, rho, 0.25, mode)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", amp_op.MODES)
def test_gpu_var_d16_shapes(dtype, mode):
    """Depth-16 shapes (16 heads of 64) with CFG batch 4, every scale, scalars on the device.

    On the GPU float32 runs as 3xTF32 and exp is approximate: 1e-4 rather than 1e-5.
    """
    for n in SIZES:
        q, k, v = inputs(n, B=4, H=16, D=64, dtype=dtype, device="cuda")
        beta, rho = torch.tensor(5.0, device="cuda"), torch.tensor(0.5, device="cuda")
        check(q, k, v, beta=beta, rho=rho, mode=mode, atol=1e-4)
