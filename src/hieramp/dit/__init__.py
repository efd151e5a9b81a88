"""DiT + HierAmp: the paper's backbone-agnostic extension (appendix B)."""
from .checkpoint import load_dit
from .config import DiTConfig
from .model import DiT

__all__ = ["DiT", "DiTConfig", "load_dit"]
