"""Running DiT: the denoising loop, its torch and onnxruntime step backends, the generator."""
from .generator import DiTGenerator
from .loop import DiTResult

__all__ = ["DiTGenerator", "DiTResult"]
