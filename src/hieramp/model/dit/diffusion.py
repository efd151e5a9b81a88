"""DiT's diffusion: the linear 1000-step beta schedule, respaced to the sampling steps, and the
DDPM (learned-range variance) and DDIM (eta = 0) updates of the official sampler.

Constants are computed in float64 and cast to float32 where they meet tensors, as the official
code does. Step i of a run of S steps denoises at respaced index S - 1 - i.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import UserError
from ..sampling import image_generator

TRAIN_STEPS = 1000
SAMPLERS = ("ddpm", "ddim")


@dataclass(frozen=True)
class DiTSampling:
    """What decides how DiT denoises (besides the seed)."""
    guidance: float = 4.0    # classifier-free guidance weight, on latent channels 0-2
    steps: int = 50          # the 1000 training steps respaced to this many
    sampler: str = "ddpm"    # or "ddim" (eta = 0: deterministic given the initial noise)

    def record(self) -> dict:
        """As run.json, manifest lines and reports write it (the guidance under its flag's name, as VAR's)."""
        return {"cfg": self.guidance, "steps": self.steps, "sampler": self.sampler}


def linear_betas(num_steps: int = TRAIN_STEPS) -> np.ndarray:
    scale = 1000 / num_steps
    return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


def spaced_timesteps(num_steps: int, count: int) -> list:
    """`count` timesteps evenly spread over 0 .. num_steps-1 (fractional stride, rounded)."""
    if not 1 <= count <= num_steps:
        raise UserError(f"--steps must lie in 1-{num_steps}, got {count}")
    stride = (num_steps - 1) / (count - 1) if count > 1 else 1
    return sorted({round(i * stride) for i in range(count)})


@dataclass(frozen=True)
class Schedule:
    timesteps: tuple            # original timestep of each respaced index, ascending
    betas: np.ndarray           # respaced betas (float64)

    @classmethod
    def respaced(cls, steps: int, num_steps: int = TRAIN_STEPS) -> "Schedule":
        base_cumprod = np.cumprod(1.0 - linear_betas(num_steps))
        used = spaced_timesteps(num_steps, steps)
        kept = base_cumprod[used]
        betas = 1.0 - kept / np.append(1.0, kept[:-1])
        return cls(tuple(used), betas)

    def __len__(self):
        return len(self.timesteps)

    @property
    def alphas_cumprod(self):
        return np.cumprod(1.0 - self.betas)

    @property
    def alphas_cumprod_prev(self):
        return np.append(1.0, self.alphas_cumprod[:-1])

    def constants(self, k: int) -> dict:
        """Float64 coefficients of respaced index k."""
        ac, ac_prev, beta = self.alphas_cumprod[k], self.alphas_cumprod_prev[k], self.betas[k]
        return {
            "recip": math.sqrt(1.0 / ac), "recipm1": math.sqrt(1.0 / ac - 1),
            "coef1": beta * math.sqrt(ac_prev) / (1.0 - ac), "coef2": (1.0 - ac_prev) * math.sqrt(1.0 - beta) / (1.0 - ac),
            # log variances, used only for k >= 1 (index 0 adds no noise): the posterior's and beta's
            "min_log": math.log(beta * (1.0 - ac_prev) / (1.0 - ac)) if k else 0.0, "max_log": math.log(beta),
            "ac_prev": ac_prev,
        }


def _f32(value):
    return torch.tensor(value, dtype=torch.float64).float()


class Sampler:
    """One denoising update x_t -> x_{t-1} from the guided model output."""

    def __init__(self, kind: str, steps: int):
        if kind not in SAMPLERS:
            raise UserError(f"unknown sampler {kind!r}: use one of {', '.join(SAMPLERS)}")
        self.kind, self.schedule = kind, Schedule.respaced(steps)

    @property
    def steps(self) -> int:
        return len(self.schedule)

    @property
    def uses_noise(self) -> bool:
        return self.kind == "ddpm"

    def timestep(self, i: int) -> int:
        """The model's (original) timestep at sampling step i; step 0 is the noisiest."""
        return self.schedule.timesteps[self.steps - 1 - i]

    def update(self, i: int, x_BCHW, model_out, noise_BCHW=None):
        k = self.steps - 1 - i
        c = self.schedule.constants(k)
        C = x_BCHW.shape[1]
        eps = model_out[:, :C]
        x0 = _f32(c["recip"]) * x_BCHW - _f32(c["recipm1"]) * eps
        if self.kind == "ddim":
            eps = (_f32(c["recip"]) * x_BCHW - x0) / _f32(c["recipm1"])
            return x0 * _f32(math.sqrt(c["ac_prev"])) + _f32(math.sqrt(1.0 - c["ac_prev"])) * eps
        mean = _f32(c["coef1"]) * x0 + _f32(c["coef2"]) * x_BCHW
        if k == 0:
            return mean
        if model_out.shape[1] == 2 * C:          # learned range between the clipped posterior and beta
            frac = (model_out[:, C:] + 1) / 2
            log_var = frac * _f32(c["max_log"]) + (1 - frac) * _f32(c["min_log"])
        else:
            log_var = _f32(c["max_log"])     # the official fixed-large variance
        return mean + torch.exp(0.5 * log_var) * noise_BCHW


def latent_noise(seed: int, label: int, index: int, steps: int, shape_CHW) -> torch.Tensor:
    """(steps + 1, C, H, W) standard normal noise of one image: the initial latent, then one draw
    per step (DDPM). It depends on (seed, class, index) only, as VAR's token noise does."""
    return torch.randn((steps + 1, *shape_CHW), generator=image_generator(seed, label, index))


def batch_latent_noise(seed, labels, indices, steps, shape_CHW) -> torch.Tensor:
    """(B, steps + 1, C, H, W) on the CPU; an image's noise ignores its batch neighbours."""
    return torch.stack([latent_noise(seed, int(c), int(i), steps, shape_CHW) for c, i in zip(labels, indices)])
