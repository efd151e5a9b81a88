"""HierAmpModel: a VAR and its VQVAE, plus where they came from."""
from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class ModelSource:
    """Identifies the weights: a preset name or checkpoint paths with their sha256."""
    name: str
    var_sha256: str
    vae_sha256: str
    files: tuple = field(default=())

    @property
    def fingerprint(self) -> str:
        return f"{self.var_sha256[:16]}-{self.vae_sha256[:16]}"


class HierAmpModel(nn.Module):
    def __init__(self, var, vae, source: ModelSource):
        super().__init__()
        self.var, self.vae, self.source = var, vae, source

    @property
    def cfg(self):
        return self.var.cfg
