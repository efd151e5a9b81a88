"""DiTGenerator: DiT images per label on a backend, noise from (seed, class, index). Its methods
are Generator's (run, check_labels, check), so distill, bench and the commands serve both."""
import torch

from ...model.dit.amp import DiTAmpConfig, file_saliency
from ...model.dit.diffusion import DiTSampling, Sampler, batch_latent_noise
from ..backends import backend_class
from ..generator import check_labels, default_indices
from .loop import denoise


class DiTGenerator:
    def __init__(self, model, backend="torch", device="cpu", **backend_options):
        self.model = model
        self.backend = backend_class(backend, "dit")(model, device=device, **backend_options)

    @property
    def cfg(self):
        return self.model.cfg

    def check_labels(self, labels):
        return check_labels(labels, self.cfg.num_classes)

    def check(self, batch_size: int, amp=DiTAmpConfig(), sampling=DiTSampling()):
        """The run's amplification plan, or a UserError before any work: sampler, steps,
        amplification, and what the backend refuses (an export made for other blocks)."""
        plan = amp.resolve(self.cfg, Sampler(sampling.sampler, sampling.steps).steps) if amp is not None else None
        self.backend.check(batch_size, plan)
        return plan

    def run(self, labels, seed=0, sampling=DiTSampling(), amp=DiTAmpConfig(), indices=None, return_masks=False,
            forced_latents=None, return_outputs=False):
        """One image per label; image i's noise comes from (seed, labels[i], indices[i]), `indices`
        defaulting to each label's occurrence count within `labels`. `forced_latents` (per step)
        teacher-forces each step's input, to compare backends; `return_outputs` keeps every step's
        input and guided output."""
        labels = self.check_labels(labels)
        indices = default_indices(labels) if indices is None else [int(i) for i in indices]
        sampler = Sampler(sampling.sampler, sampling.steps)
        plan = self.check(len(labels), amp, sampling)
        saliency = None
        if plan is not None and plan.source == "file":
            saliency = file_saliency(plan.mask_dir, labels, indices, self.cfg.grid, self.model.image_size)
        shape = (self.cfg.in_channels, self.cfg.input_size, self.cfg.input_size)
        noise = batch_latent_noise(seed, labels, indices, sampler.steps, shape)
        with torch.no_grad():
            return denoise(self.backend, sampler, torch.tensor(labels), noise,
                           sampling.guidance, plan, saliency, return_masks, forced_latents, return_outputs)
