"""The optimiser step every trainer here runs: backward (scaled for fp16, divided over accumulation
steps), gradient clipping, the optimiser step, cleared gradients; and VAR's weight-decay groups."""
from typing import Optional

import torch

# Parameters without weight decay in the public VAR recipe, besides 1-D tensors and biases.
NO_DECAY_KEYS = ("cls_token", "pos_start", "pos_1LC", "lvl_embed", "ada_gss", "scale_mul")


def decays(name: str, p: torch.Tensor) -> bool:
    return not (p.ndim == 1 or name.endswith("bias") or any(k in name for k in NO_DECAY_KEYS))


def param_groups(named_params, weight_decay: float) -> list:
    """[decayed, not decayed] AdamW groups (empty groups left out)."""
    named = [(n, p) for n, p in named_params if p.requires_grad]
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class Stepper:
    """`backward(loss)` every micro-batch, `step()` after the last one of an optimiser step."""

    def __init__(self, optimizer: torch.optim.Optimizer, clip: float = 0.0, accum: int = 1,
                 scaler: Optional[torch.amp.GradScaler] = None):
        self.optimizer, self.clip, self.accum, self.scaler = optimizer, clip, accum, scaler
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def backward(self, loss: torch.Tensor):
        loss = loss / self.accum if self.accum > 1 else loss
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self) -> Optional[torch.Tensor]:
        """Clip, step, clear; returns the gradient norm before clipping (None without clipping), as a
        tensor so that the device need not synchronise unless it is read."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip) if self.clip > 0 else None
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm
