"""The reference `TopKBiasAttention` op (DESIGN.md, "The amplification op").

Shapes: q (B, H, Lq, D) with Lq = n + 1 and the class-token query last; k, v (B, H, P + Lq, D):
P cached keys of earlier scales, the scale's n spatial keys, then the class token's key.
Every other implementation (ONNX function, Triton kernel, TensorRT plugin) is tested against
this one.
"""
import math

import torch

MODES = ("logit", "weight")


def topk_indicator(saliency_Bn: torch.Tensor, rho: float) -> torch.Tensor:
    """a in {0,1}^n: 1 for the k_sel = max(1, floor(rho * n)) most salient positions.

    Ties go to the lower index: a stable descending sort ranks equal values by position.
    """
    n = saliency_Bn.shape[-1]
    k_sel = max(1, math.floor(float(rho) * n))
    order = torch.sort(saliency_Bn, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(n, device=order.device).expand_as(order))
    return (rank < k_sel).to(torch.float32)


def class_row_mask(P: int, Lq: int, device) -> torch.Tensor:
    """Additive mask (Lq, P + Lq): the class row (last) sees only its own scale."""
    mask = torch.zeros(Lq, P + Lq, device=device)
    mask[Lq - 1, :P] = float("-inf")
    return mask


def amplified_set(q, k, rho, scale) -> torch.Tensor:
    """The indicator a (B, n) that the op computes from these inputs (steps 1-4, in float32)."""
    Lq = q.shape[-2]
    n, P = Lq - 1, k.shape[-2] - Lq
    logits = scale * (q.float() @ k.float().transpose(-1, -2)) + class_row_mask(P, Lq, q.device)    # (B, H, Lq, P + Lq)
    return topk_indicator(torch.softmax(logits[:, :, Lq - 1, P:P + n], dim=-1).mean(dim=1), rho)


def topk_bias_attention(q, k, v, beta, rho, scale, mode="logit"):
    """Scale-restricted attention with top-k saliency amplification; output float32 (B, H, Lq, D)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    q, k, v = q.float(), k.float(), v.float()
    Lq = q.shape[-2]
    n = Lq - 1
    P = k.shape[-2] - Lq
    beta = float(beta)
    logits = scale * (q @ k.transpose(-1, -2)) + class_row_mask(P, Lq, q.device)  # (B, H, Lq, P+Lq)
    saliency = torch.softmax(logits[:, :, Lq - 1, P:P + n], dim=-1).mean(dim=1)    # (B, n)
    a = topk_indicator(saliency, rho)[:, None, None, :]                              # (B, 1, 1, n)
    if mode == "logit":
        logits[..., P:P + n] += beta * a
        weights = torch.softmax(logits, dim=-1)
    else:
        weights = torch.softmax(logits, dim=-1)
        weights[..., P:P + n] *= 1.0 + (beta - 1.0) * a
    return weights @ v


def scale_restricted_attention(q, k, v, scale):
    """Steps 1, 2, 6 of the op: the attention of class-token models at scales without amplification."""
    Lq = q.shape[-2]
    P = k.shape[-2] - Lq
    mask = class_row_mask(P, Lq, q.device).to(q.dtype)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
