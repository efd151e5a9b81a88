"""The reference `TopKBiasAttention` op and its constants (docs/design.md, "The amplification op").

Shapes: q (B, H, Lq, D) with Lq = n + 1 and the class-token query last; k, v (B, H, P + Lq, D):
P cached keys of earlier scales, the scale's n spatial keys, then the class token's key.
Every other implementation (ONNX function, Triton kernel, TensorRT plugin) is tested against
this one, and takes its constants (modes, k_sel, the neutral beta) from here.
"""
import math

import torch

MODES = ("logit", "weight")
NEUTRAL_BETA = {"logit": 0.0, "weight": 1.0}  # the beta that gives plain scale-restricted attention


def k_sel(rho: float, n: int) -> int:
    """How many of n positions are amplified: max(1, floor(rho * n)), rho * n in float64."""
    return max(1, math.floor(float(rho) * n))


def topk_indicator(saliency_Bn: torch.Tensor, rho: float) -> torch.Tensor:
    """a in {0,1}^n: 1 for the k_sel(rho, n) most salient positions.

    Ties go to the lower index: a stable descending sort ranks equal values by position.
    """
    n = saliency_Bn.shape[-1]
    order = torch.sort(saliency_Bn, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(n, device=order.device).expand_as(order))
    return (rank < k_sel(rho, n)).to(torch.float32)


def class_row_mask(P: int, Lq: int, device) -> torch.Tensor:
    """Additive mask (Lq, P + Lq): the class row (last) sees only its own scale."""
    mask = torch.zeros(Lq, P + Lq, device=device)
    mask[Lq - 1, :P] = float("-inf")
    return mask


def restricted_logits(q, k, softmax_scale) -> torch.Tensor:
    """Steps 1-2, in float32: softmax_scale * q @ k^T, the class row hidden from the P cached keys."""
    Lq, Lk = q.shape[-2], k.shape[-2]
    logits = softmax_scale * (q.float() @ k.float().transpose(-1, -2))                 # (B, H, Lq, Lk)
    return logits + class_row_mask(Lk - Lq, Lq, q.device)


def saliency(logits_BHLqLk: torch.Tensor) -> torch.Tensor:
    """Step 3: the mean over heads of the class row's softmax over the scale's n spatial keys (B, n)."""
    Lq, Lk = logits_BHLqLk.shape[-2:]
    P, n = Lk - Lq, Lq - 1
    return torch.softmax(logits_BHLqLk[:, :, Lq - 1, P:P + n].float(), dim=-1).mean(dim=1)


def amplified_set(q, k, rho, softmax_scale) -> torch.Tensor:
    """Steps 1-4: the indicator a (B, n) of the positions the op amplifies."""
    return topk_indicator(saliency(restricted_logits(q, k, softmax_scale)), rho)


def topk_bias_attention(q, k, v, beta, rho, softmax_scale, mode="logit"):
    """Scale-restricted attention with top-k saliency amplification; output float32 (B, H, Lq, D)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    Lq = q.shape[-2]
    n = Lq - 1
    P = k.shape[-2] - Lq
    beta = float(beta)
    logits = restricted_logits(q, k, softmax_scale)                                  # (B, H, Lq, P+Lq)
    a = topk_indicator(saliency(logits), rho)[:, None, None, :]                      # (B, 1, 1, n)
    if mode == "logit":
        logits[..., P:P + n] += beta * a
        weights = torch.softmax(logits, dim=-1)
    else:
        weights = torch.softmax(logits, dim=-1)
        weights[..., P:P + n] *= 1.0 + (beta - 1.0) * a
    return weights @ v.float()


def scale_restricted_attention(q, k, v, softmax_scale):
    """Steps 1, 2, 6 of the op: the attention of class-token models at scales without amplification."""
    Lq = q.shape[-2]
    P = k.shape[-2] - Lq
    mask = class_row_mask(P, Lq, q.device).to(q.dtype)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=softmax_scale)
