"""DiT + HierAmp, the public API: `load_dit(path)`, models, generation and export
(docs/design.md, "A second backbone")."""
from ..export.dit import export_dit
from ..model.dit import DiT, DiTAmpConfig, DiTConfig, DiTModel, load_dit, load_dit_model, random_dit_model
from ..model.dit.diffusion import DiTSampling
from ..runtime.dit import DiTGenerator, DiTResult

__all__ = ["DiT", "DiTAmpConfig", "DiTConfig", "DiTGenerator", "DiTModel", "DiTResult", "DiTSampling", "export_dit",
           "load_dit", "load_dit_model", "random_dit_model"]
