"""DiTGenerator: DiT images per label on a backend, noise from (seed, class, index)."""
import torch

from ...errors import UserError
from ...model.dit.amp import DiTAmpConfig, file_saliency
from ...model.dit.diffusion import Sampler
from ...model.dit.vae import decode
from ..generator import default_indices
from .backends import OrtStep, TorchStep
from .loop import batch_latent_noise, denoise

BACKENDS = {"torch": TorchStep, "onnxruntime": OrtStep}


class DiTGenerator:
    def __init__(self, model, backend="torch", device="cpu", **backend_options):
        if backend not in BACKENDS:
            raise UserError(f"backend {backend!r} does not run DiT: use {' or '.join(BACKENDS)}")
        self.model = model
        self.device = torch.device(device) if backend == "torch" else torch.device("cpu")
        self.backend = BACKENDS[backend](model, device=device, **backend_options)
        model.vae.to(self.device)

    @property
    def cfg(self):
        return self.model.cfg

    def run(self, labels, seed=0, cfg=4.0, steps=50, sampler="ddpm", amp=DiTAmpConfig(), indices=None, return_masks=False):
        labels = [int(c) for c in labels]
        n = self.cfg.num_classes
        if not labels:
            raise UserError("no labels given: pass at least one class")
        for c in labels:
            if not 0 <= c < n:
                raise UserError(f"class {c} is out of range: this model has {n} classes (0-{n - 1})")
        indices = default_indices(labels) if indices is None else [int(i) for i in indices]
        sampler = Sampler(sampler, steps)
        plan = amp.resolve(self.cfg, sampler.steps) if amp is not None else None
        saliency = None
        if plan is not None and plan.source == "file":
            saliency = file_saliency(plan.mask_dir, labels, indices, self.cfg.grid, self.model.image_size)
        shape = (self.cfg.in_channels, self.cfg.input_size, self.cfg.input_size)
        noise = batch_latent_noise(seed, labels, indices, sampler.steps, shape)
        with torch.no_grad():
            return denoise(self.backend, lambda x: decode(self.model.vae, x), sampler, torch.tensor(labels), noise, cfg,
                           plan, saliency, return_masks)
