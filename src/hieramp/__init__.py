"""hieramp: deploy HierAmp-VAR for generative dataset distillation."""
from .errors import UserError
from .model import AmpConfig, HierAmpModel, load_model, resolve_model, topk_bias_attention
from .model.sampling import SamplingParams
from .runtime.generator import Generator
from .runtime.loop import GenerationResult

__all__ = ["AmpConfig", "GenerationResult", "Generator", "HierAmpModel", "SamplingParams", "UserError", "load_model",
           "resolve_model", "topk_bias_attention"]
