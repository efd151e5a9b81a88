"""The PyTorch reference: ground truth for every other backend."""
from .amp_config import AmpConfig, AmpPlan
from .amp_op import topk_bias_attention
from .bundle import HierAmpModel
from .checkpoint import load_model
from .config import VARConfig, VQVAEConfig
from .presets import resolve_model

__all__ = ["AmpConfig", "AmpPlan", "HierAmpModel", "VARConfig", "VQVAEConfig", "load_model", "resolve_model", "topk_bias_attention"]
