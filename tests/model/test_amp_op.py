import math

import pytest
import torch

from hieramp import topk_bias_attention
from hieramp.model.amp_op import scale_restricted_attention, topk_indicator

VAR_SCALES = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def inputs(B=2, H=3, n=9, P=14, D=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, n + 1, D, generator=g)
    k = torch.randn(B, H, P + n + 1, D, generator=g)
    v = torch.randn(B, H, P + n + 1, D, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def plain_restricted(q, k, v, scale):
    Lq = q.shape[2]
    P = k.shape[2] - Lq
    logits = scale * q @ k.transpose(-1, -2)
    logits[..., Lq - 1, :P] = float("-inf")
    return torch.softmax(logits, -1) @ v


def test_neutral_beta_gives_scale_restricted_attention():
    q, k, v = inputs()
    expected = plain_restricted(q, k, v, 0.3)
    torch.testing.assert_close(topk_bias_attention(q, k, v, 0.0, 0.5, 0.3, "logit"), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(topk_bias_attention(q, k, v, 1.0, 0.5, 0.3, "weight"), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(scale_restricted_attention(q, k, v, 0.3), expected, atol=1e-6, rtol=0)


def test_renormalised_weight_mode_equals_logit_mode_with_log_beta():
    q, k, v = inputs(n=16, P=30)
    ones = torch.ones_like(v)
    beta = 4.0
    weighted = topk_bias_attention(q, k, v, beta, 0.25, 0.5, "weight")
    row_sums = topk_bias_attention(q, k, ones, beta, 0.25, 0.5, "weight")
    torch.testing.assert_close(weighted / row_sums, topk_bias_attention(q, k, v, math.log(beta), 0.25, 0.5, "logit"),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n,rho,k_sel", [(1, 0.5, 1), (4, 0.5, 2), (9, 0.5, 4), (10, 0.05, 1), (25, 1.0, 25), (169, 0.3, 50)])
def test_k_sel_is_floor_of_rho_n_at_least_one(n, rho, k_sel):
    saliency = torch.rand(3, n, generator=torch.Generator().manual_seed(n))
    a = topk_indicator(saliency, rho)
    assert a.sum(-1).tolist() == [k_sel] * 3
    top = saliency.topk(k_sel, dim=-1).indices
    assert torch.all(a.gather(-1, top) == 1)


def test_ties_go_to_the_lower_index():
    saliency = torch.tensor([[0.1, 0.3, 0.3, 0.3, 0.0, 0.3]])
    assert topk_indicator(saliency, 0.5).tolist() == [[0, 1, 1, 1, 0, 0]]
    assert topk_indicator(torch.zeros(1, 8), 0.25).tolist() == [[1, 1, 0, 0, 0, 0, 0, 0]]


def test_ties_in_full_op_select_lowest_indices():
    # Identical spatial keys make the class row's saliency uniform: positions 0..k_sel-1 must win.
    B, H, n, P, D = 1, 2, 8, 5, 4
    q, k, v = inputs(B, H, n, P, D)
    k[:, :, P:P + n] = k[:, :, P:P + 1]
    v = torch.zeros_like(v)
    v[:, :, P:P + n, 0] = torch.arange(n, dtype=torch.float32)
    out = topk_bias_attention(q, k, v, 50.0, 0.25, 1.0, "logit")
    # With a huge bias the spatial weight concentrates on positions 0 and 1 (value 0 and 1).
    assert torch.all(out[..., 0] < 0.5 + 1e-3)


def test_class_row_never_sees_earlier_scales():
    q, k, v = inputs(P=20)
    v2 = v.clone()
    v2[:, :, :20] = 1e3                   # change only the cached values
    k2 = k.clone()
    k2[:, :, :20] *= 5
    for mode, beta in (("logit", 5.0), ("weight", 3.0)):
        a = topk_bias_attention(q, k, v, beta, 0.5, 0.7, mode)[:, :, -1]
        b = topk_bias_attention(q, k2, v2, beta, 0.5, 0.7, mode)[:, :, -1]
        torch.testing.assert_close(a, b)


def test_bias_reaches_every_row():
    q, k, v = inputs()
    base = topk_bias_attention(q, k, v, 0.0, 0.5, 1.0, "logit")
    biased = topk_bias_attention(q, k, v, 5.0, 0.5, 1.0, "logit")
    assert torch.all((base - biased).abs().amax(dim=-1) > 1e-4)


def test_saliency_is_per_batch_element():
    q, k, v = inputs(B=2)
    out = topk_bias_attention(q, k, v, 5.0, 0.5, 1.0, "logit")
    q1, k1, v1 = q[1:].clone(), k[1:].clone(), v[1:].clone()
    torch.testing.assert_close(out[1:], topk_bias_attention(q1, k1, v1, 5.0, 0.5, 1.0, "logit"))
    q[0] = -q[0]                          # changing element 0 leaves element 1 alone
    torch.testing.assert_close(topk_bias_attention(q, k, v, 5.0, 0.5, 1.0, "logit")[1:], out[1:])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_computed_in_float32(dtype):
    q, k, v = inputs(dtype=dtype)
    out = topk_bias_attention(q, k, v, 5.0, 0.5, 1.0, "logit")
    assert out.dtype == torch.float32
    ref = topk_bias_attention(q.float(), k.float(), v.float(), 5.0, 0.5, 1.0, "logit")
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("pn", VAR_SCALES)
def test_every_var_scale_size_runs_with_cache(pn):
    n = pn * pn
    P = sum(p * p for p in VAR_SCALES if p < pn)
    q, k, v = inputs(B=1, H=2, n=n, P=P, D=4)
    for mode in ("logit", "weight"):
        out = topk_bias_attention(q, k, v, 5.0, 0.5, 1.0, mode)
        assert out.shape == (1, 2, n + 1, 4) and torch.isfinite(out).all()
