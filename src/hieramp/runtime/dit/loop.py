"""The denoising loop every DiT backend runs: per step, the mask from the plan, one guided step
on the backend, the sampler's update; then the backend decodes."""
from dataclasses import dataclass
from typing import Optional

import torch

from ...model.dit.amp import object_mask
from ...model.dit.diffusion import Sampler


@dataclass
class DiTResult:
    images: torch.Tensor            # (B, 3, H, W) float32 in [0, 1], CPU
    latents: torch.Tensor           # (B, C, h, w) final latents, CPU
    masks: Optional[list] = None    # per step: (B, N) float M, or None where the step was not amplified
    inputs: Optional[list] = None   # per step: the latents x_t it denoised (B, C, h, w), CPU
    outputs: Optional[list] = None  # per step: the guided model output (B, out_channels, h, w), CPU


def denoise(backend, sampler: Sampler, labels_B, noise, cfg: float, plan, file_saliency=None,
            return_masks=False, forced_latents=None, return_outputs=False) -> DiTResult:
    """`forced_latents` (per step, CPU) replaces each step's input by the given latents, so that
    two backends can be compared on the same path; the masks still come from this run's steps."""
    backend.begin(labels_B, plan)
    noise = backend.put(noise)
    y = backend.put(labels_B)
    x = noise[:, 0]
    B = x.shape[0]
    want_mass = plan is not None and plan.source == "attention"
    previous, masks, inputs, outputs = None, [], [], []
    file_mask = None
    if plan is not None and plan.source == "file":
        file_mask = object_mask(backend.put(file_saliency), plan.rho)          # the same at every step
    for i in range(sampler.steps):
        if forced_latents is not None:
            x = backend.put(forced_latents[i])
        t = torch.full((B,), sampler.timestep(i), dtype=torch.int64, device=y.device)
        mask = None
        if plan is not None and plan.active(i):
            mask = file_mask if file_mask is not None else object_mask(previous, plan.rho)
        guided, cfg_diff, mass = backend.step(i, x, t, y, cfg, mask, plan.beta if mask is not None else 1.0, want_mass)
        previous = mass if want_mass else cfg_diff
        if return_outputs:
            inputs.append(x.cpu())
            outputs.append(guided.cpu())
        x = sampler.update(i, x, guided, noise[:, i + 1] if sampler.uses_noise else None)
        if return_masks:
            masks.append(None if mask is None else mask.cpu())
    return DiTResult(images=backend.decode(x).cpu(), latents=x.cpu(), masks=masks if return_masks else None,
                     inputs=inputs if return_outputs else None, outputs=outputs if return_outputs else None)
