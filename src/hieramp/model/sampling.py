"""Guidance, top-k / top-p filtering and inverse-CDF sampling with per-image noise streams.

The inverse CDF walks the tokens in descending-logit order (stable: ties keep the lower index),
the same order a sorted TopK yields, so every backend draws the same token from the same noise.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks


@dataclass(frozen=True)
class SamplingParams:
    """What decides how tokens are drawn from the guided logits (besides the seed)."""
    guidance: float = 4.0    # classifier-free guidance weight at the last scale (t_s ramps up to it)
    top_k: int = 900         # 0: no top-k filter
    top_p: float = 0.95      # 1: no top-p filter

    def __post_init__(self):
        checks.cfg(self.guidance)
        checks.top_k(self.top_k)
        checks.top_p(self.top_p)

    def record(self) -> dict:
        """As run.json, manifest lines and reports write it: the guidance weight under its
        command-line name `cfg`, so that files written before the rename still match."""
        return {"cfg": self.guidance, "top_k": self.top_k, "top_p": self.top_p}


def guidance_scales(guidance: float, num_scales: int):
    """t_s = guidance * s / (S - 1): guidance grows linearly over the scales."""
    return [guidance * s / max(num_scales - 1, 1) for s in range(num_scales)]


def guide(logits_2BnV, t):
    B = logits_2BnV.shape[0] // 2
    return (1 + t) * logits_2BnV[:B] - t * logits_2BnV[B:]


def image_generator(seed: int, label: int, index: int) -> torch.Generator:
    """A CPU generator for one image, derived from (seed, class, image index) only."""
    state = np.random.SeedSequence([seed, label, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def image_noise(seed: int, label: int, index: int, seq_len: int) -> torch.Tensor:
    """Uniform [0, 1) noise for every token position of one image: (L,) float32."""
    return torch.rand(seq_len, generator=image_generator(seed, label, index))


def batch_noise(seed, labels, indices, patch_nums):
    """Per scale (B, n_s) float32 noise on the CPU; an image's noise ignores its batch neighbours."""
    seq_len = sum(pn * pn for pn in patch_nums)
    noise_BL = torch.stack([image_noise(seed, int(c), int(i), seq_len) for c, i in zip(labels, indices)])
    sizes = [pn * pn for pn in patch_nums]
    return list(noise_BL.split(sizes, dim=1))


def filter_sorted(sorted_logits, top_k: int, top_p: float):
    """-inf out the tokens top-k and top-p drop; input and output sorted descending (..., V)."""
    V = sorted_logits.shape[-1]
    out = sorted_logits
    if 0 < top_k < V:
        kth = sorted_logits[..., top_k - 1:top_k]
        out = out.masked_fill(sorted_logits < kth, float("-inf"))
    if 0 < top_p < 1:
        probs = torch.softmax(out.float(), dim=-1)
        tail_mass = probs.flip(-1).cumsum(-1).flip(-1)            # ascending cumulative probability
        drop = tail_mass <= 1 - top_p
        drop[..., 0] = False                                       # the largest is always kept
        out = out.masked_fill(drop, float("-inf"))
    return out


def sample_tokens(logits_BnV, noise_Bn, top_k: int, top_p: float):
    """Token ids (B, n) int64 by inverse CDF of the filtered distribution."""
    sorted_logits, order = torch.sort(logits_BnV.float(), dim=-1, descending=True, stable=True)
    probs = torch.softmax(filter_sorted(sorted_logits, top_k, top_p), dim=-1)
    cdf = probs.cumsum(-1)
    threshold = noise_Bn.to(cdf.device, cdf.dtype).unsqueeze(-1) * cdf[..., -1:]
    pos = (cdf <= threshold).sum(-1, keepdim=True).clamp_max(cdf.shape[-1] - 1)
    return order.gather(-1, pos).squeeze(-1)
