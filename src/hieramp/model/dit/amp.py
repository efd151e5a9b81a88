"""HierAmp on DiT (paper, appendix B; docs/design.md, "A second backbone"): at chosen blocks and
sampling steps the attention output A becomes A * (1 + (beta - 1) M), M binary on the token grid:
the top rho share of a saliency map.

Saliency sources (`--dit-mask`): `cfg-diff`, the channel norm of the conditional minus
unconditional noise prediction of the previous step, pooled over each token's patch;
`attention`, the head-mean attention mass each token received at the amplified blocks in the
previous step; `file:DIR`, masks of an external segmenter, DIR/<class>/<index>.png. Both
previous-step sources leave the first step without a mask, hence the default steps 1 .. S-1.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import UserError
from ..amp_config import default_amp_layers
from ..amp_op import topk_indicator
from .config import DiTConfig

MASK_SOURCES = ("cfg-diff", "attention", "file:DIR")


@dataclass(frozen=True)
class DiTAmpPlan:
    beta: float
    rho: float
    layers: tuple
    steps: tuple
    source: str                 # "cfg-diff", "attention" or "file"
    mask_dir: Optional[str] = None     # a str, so that the plan is JSON-ready (distill manifests)
    mode = "gain"               # not a field: what exports record as the amplification mode (check_amp_plan)

    def active(self, i: int) -> bool:
        return i in self.steps


@dataclass(frozen=True)
class DiTAmpConfig:
    beta: float = 5.0
    rho: float = 0.5
    layers: Optional[Sequence[int]] = None      # default: the paper's block 14 of 16, scaled to the depth
    steps: Optional[Sequence[int]] = None       # default: every sampling step but the first
    mask: str = "cfg-diff"
    enabled: bool = True

    def resolve(self, cfg: DiTConfig, num_steps: int) -> Optional[DiTAmpPlan]:
        """Check against the model and the number of sampling steps; None when amplification is off."""
        if not self.enabled:
            return None
        source, _, folder = self.mask.partition(":")
        if source not in ("cfg-diff", "attention", "file") or (source == "file") != bool(folder):
            raise UserError(f"unknown --dit-mask {self.mask!r}: use cfg-diff, attention or file:DIR")
        mask_dir = folder or None
        if mask_dir is not None and not Path(mask_dir).is_dir():
            raise UserError(f"mask directory {mask_dir} does not exist: pass file:DIR with DIR/<class>/<index>.png masks")
        if not 0 < float(self.rho) <= 1:
            raise UserError(f"--rho must lie in (0, 1], got {self.rho}")
        layers = tuple(sorted(set(self.layers))) if self.layers is not None else default_amp_layers(cfg.depth)
        for layer in layers:
            if not 0 <= layer < cfg.depth:
                raise UserError(f"amplification layer {layer} does not exist: this DiT has {cfg.depth} "
                                f"blocks (0-{cfg.depth - 1}); pass --amp-layers within that range")
        steps = tuple(sorted(set(self.steps))) if self.steps is not None else tuple(range(1, num_steps))
        for i in steps:
            if not 0 <= i < num_steps:
                raise UserError(f"amplification step {i} does not exist: sampling runs {num_steps} steps "
                                f"(0-{num_steps - 1}); pass --amp-steps within that range")
        if source != "file" and 0 in steps:
            raise UserError(f"--dit-mask {source} reads the previous step, so step 0 cannot be amplified: "
                            f"pass --amp-steps from 1")
        return DiTAmpPlan(float(self.beta), float(self.rho), layers, steps, source, mask_dir)


def cfg_diff_saliency(eps_cond, eps_uncond, patch_size: int):
    """(B, C, H, W) twice -> (B, N): channel norm of the difference, averaged over each token's patch."""
    diff = (eps_cond - eps_uncond).float().norm(dim=1, keepdim=True)       # (B, 1, H, W)
    return F.avg_pool2d(diff, patch_size).flatten(1)


def object_mask(saliency_BN, rho: float):
    """M in {0, 1}^(B, N): k = max(1, floor(rho N)) ones per image at the most salient tokens,
    ties to the lower index."""
    return topk_indicator(saliency_BN, rho)


def gain(mask_BN, beta):
    """The per-token factor 1 + (beta - 1) M, shaped to multiply an attention output: (B, N, 1)."""
    return (1 + (beta - 1) * mask_BN).unsqueeze(-1)


def file_saliency(mask_dir: Path, labels, indices, grid: int, image_size: int):
    """(B, N) saliency from DIR/<class>/<index>.png: the image's size or the token grid's,
    area-averaged to the grid."""
    maps = []
    for c, i in zip(labels, indices):
        path = Path(mask_dir) / str(c) / f"{i}.png"
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        except FileNotFoundError:
            raise UserError(f"mask {path} is missing: --dit-mask file:DIR needs DIR/<class>/<index>.png for every image") from None
        except OSError as err:
            raise UserError(f"cannot read mask {path} ({err}): write it as a grayscale PNG") from None
        if arr.shape not in ((image_size, image_size), (grid, grid)):
            raise UserError(f"mask {path} is {arr.shape[1]}x{arr.shape[0]}: masks must be {image_size}x{image_size} "
                            f"(the image) or {grid}x{grid} (the token grid)")
        maps.append(F.adaptive_avg_pool2d(torch.from_numpy(arr)[None, None], grid).flatten())
    return torch.stack(maps)
