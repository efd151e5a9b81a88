"""AmpConfig: where and how strongly attention is amplified, resolved to a per-scale plan."""
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .. import checks
from ..errors import UserError
from .amp_op import MODES

Schedule = Union[float, Sequence[float]]


def stages(num_scales: int):
    """Scales 1 .. S-1 split into coarse, mid and fine (1-3, 4-6, 7-9 for S = 10)."""
    return [tuple(int(s) for s in part) for part in np.array_split(np.arange(1, num_scales), 3)]


def per_scale(values: Schedule, num_scales: int, name: str, check=float):
    """One value, three stage values or one per scale -> a tuple of S values, each passing `check`."""
    vals = [check(values)] if isinstance(values, (int, float)) else [check(v) for v in values]
    if len(vals) == 1:
        return tuple(vals * num_scales)
    if len(vals) == num_scales:
        return tuple(vals)
    if len(vals) == 3:
        out = [vals[0]] * num_scales
        for stage_value, scales in zip(vals, stages(num_scales)):
            for s in scales:
                out[s] = stage_value
        return tuple(out)
    raise UserError(f"{name} takes 1, 3 (coarse, mid, fine) or {num_scales} (one per scale) values, got {len(vals)}")


def default_amp_layers(depth: int):
    """The paper amplifies block 14 of 16; other depths use the same relative position."""
    return (min(depth - 1, round(depth * 14 / 16)),)


@dataclass(frozen=True)
class AmpPlan:
    """A resolved AmpConfig: per-scale beta and rho, and which (layer, scale) pairs amplify."""
    mode: str
    layers: tuple
    scales: tuple
    beta: tuple
    rho: tuple

    def active(self, si: int) -> bool:
        return si in self.scales


@dataclass(frozen=True)
class AmpConfig:
    mode: str = "logit"
    beta: Schedule = 5.0
    rho: Schedule = 0.5
    layers: Sequence[int] = (14,)
    scales: Optional[Sequence[int]] = None
    enabled: bool = True

    def resolve(self, cfg) -> Optional[AmpPlan]:
        """Check against a VARConfig; None when amplification is off."""
        if not self.enabled:
            return None
        if not cfg.cls_token_scales:
            raise UserError("amplification needs a model with class tokens (a HierAmp fine-tune); "
                            "this model has none: turn amplification off or load an ar-ckpt-*.pth fine-tune")
        if self.mode not in MODES:
            raise UserError(f"unknown amplification mode {self.mode!r}: use one of {', '.join(MODES)}")
        S = cfg.num_scales
        for layer in self.layers:
            if checks.integer("an amplification layer", layer) not in range(cfg.depth):
                raise UserError(f"amplification layer {layer} does not exist: this model has {cfg.depth} "
                                f"blocks (0-{cfg.depth - 1}); amplify layers within that range")
        scales = tuple(s for s in range(1, S) if s in cfg.cls_token_scales) if self.scales is None else tuple(self.scales)
        for s in scales:
            if checks.integer("an amplification scale", s) not in cfg.cls_token_scales:
                raise UserError(f"amplification scale {s} has no class token (class tokens at "
                                f"{list(cfg.cls_token_scales)}); amplify scales among those")
        rho = per_scale(self.rho, S, "rho", checks.rho)
        return AmpPlan(self.mode, tuple(sorted(set(self.layers))), scales, per_scale(self.beta, S, "beta", checks.beta), rho)
