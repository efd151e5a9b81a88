"""What a fine-tune run is: the settings that decide its weights (compared when a run resumes),
checked before any work."""
import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

from ..errors import UserError

PUBLIC_BATCH = 768               # HierAmp's d16 fine-tune: 8 GPUs x 96
PUBLIC_EPOCHS = 5
LR_PER_256 = 1e-4                # peak lr per 256 images of global batch
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class FinetuneSettings:
    model: str                   # checkpoint path or preset name
    vae: Optional[str]
    data: str
    random_init: bool = False
    epochs: int = PUBLIC_EPOCHS
    steps: Optional[int] = None  # overrides epochs
    batch_size: int = PUBLIC_BATCH
    accum: int = 1
    lr: Optional[float] = None   # default: LR_PER_256 x batch_size / 256
    precision: Optional[str] = None
    cls_scales: Optional[tuple] = None    # None: every scale
    cls_weight: float = 1.0
    classes: Optional[str] = None
    hflip: bool = False
    seed: int = 0
    weight_decay: float = 0.05
    clip: float = 2.0

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else LR_PER_256 * self.batch_size / 256

    def check(self, world_size: int):
        for name in ("epochs", "steps", "batch_size", "accum"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a finite number above 0, got {self.lr}")
        if not (math.isfinite(self.cls_weight) and self.cls_weight >= 0):
            raise UserError(f"--cls-weight must be a finite number, 0 or more, got {self.cls_weight}")
        if self.seed < 0:
            raise UserError(f"--seed must be 0 or more, got {self.seed}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size % (world_size * self.accum):
            raise UserError(f"--batch-size {self.batch_size} is not divisible by {world_size} ranks x --accum {self.accum}: "
                            f"choose a multiple of {world_size * self.accum}")

    def to_json(self) -> dict:
        return {**asdict(self), "cls_scales": None if self.cls_scales is None else list(self.cls_scales)}

    @classmethod
    def from_json(cls, data: dict) -> "FinetuneSettings":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if data.get("cls_scales") is not None:
            data["cls_scales"] = tuple(data["cls_scales"])
        return cls(**data)

    def differences(self, other: "FinetuneSettings") -> list:
        """'name: ours (theirs)' for every setting that differs."""
        ours, theirs = self.to_json(), other.to_json()
        return [f"{k}={ours[k]!r} (the run there has {theirs[k]!r})" for k in ours if ours[k] != theirs[k]]

