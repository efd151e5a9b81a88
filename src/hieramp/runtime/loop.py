"""The one scale loop every backend runs (docs/design.md, "Data flow")."""
from dataclasses import dataclass
from typing import Optional

import torch

from ..model.sampling import SamplingParams, guidance_scales


@dataclass
class GenerationResult:
    images: torch.Tensor            # (B, 3, H, W) float32 in [0, 1], CPU
    tokens: list                    # per scale (B, n_s) int64, CPU
    logits: Optional[list] = None   # per scale (B, n_s, V) float32 after guidance, CPU


def run_scales(backend, labels_B, noise, sampling: SamplingParams, plan, forced_tokens=None, return_logits=False):
    """Runs steps, sampling and VQ updates scale by scale, then decodes.

    `noise` and `forced_tokens` are per-scale CPU tensors; they move to the backend once, before
    the loop, and results come back once, after it, so the loop itself never waits on the host.
    """
    num_scales = len(noise)
    backend.begin(labels_B, plan)
    noise = [backend.put(u) for u in noise]
    forced = None if forced_tokens is None else [backend.put(ids) for ids in forced_tokens]
    t = guidance_scales(sampling.guidance, num_scales)
    beta, rho = (plan.beta, plan.rho) if plan is not None else ((0.0,) * num_scales, (1.0,) * num_scales)
    f_hat, feats = backend.empty_fhat(len(labels_B)), None
    tokens, logits = [], []
    for si in range(num_scales):
        logits_BnV = backend.step(si, feats, beta[si], rho[si], t[si])
        ids = forced[si] if forced is not None else backend.sample(logits_BnV, noise[si], sampling.top_k, sampling.top_p)
        f_hat, feats = backend.update(si, ids, f_hat)
        tokens.append(ids)
        if return_logits:
            logits.append(logits_BnV)
    images = backend.decode(f_hat)
    return GenerationResult(
        images=backend.fetch(images).float(),
        tokens=[backend.fetch(ids).long() for ids in tokens],
        logits=[backend.fetch(x).float() for x in logits] if return_logits else None,
    )
