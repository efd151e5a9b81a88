"""DiT, the second backbone (paper, appendix B): the transformer with the official names, its
checkpoints, the diffusion schedule and samplers, the object-mask amplification, the SD VAE."""
from .amp import DiTAmpConfig, DiTAmpPlan
from .checkpoint import is_dit_state_dict, load_dit
from .config import DiTConfig
from .presets import DiTModel, load_dit_model, random_dit_model
from .transformer import DiT

__all__ = ["DiT", "DiTAmpConfig", "DiTAmpPlan", "DiTConfig", "DiTModel", "is_dit_state_dict", "load_dit",
           "load_dit_model", "random_dit_model"]
