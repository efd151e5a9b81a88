"""Generator: the public entry point that runs a model on a backend."""
from collections import Counter

import torch

from ..errors import UserError
from ..model.amp_config import AmpConfig
from ..model.sampling import batch_noise
from .backends import backend_class
from .loop import SamplingParams, run_scales


def default_indices(labels):
    """Image index of each label: its occurrence count so far (labels 3, 3, 5 -> 0, 1, 0)."""
    seen = Counter()
    indices = []
    for c in labels:
        indices.append(seen[c])
        seen[c] += 1
    return indices


def check_labels(labels, num_classes: int) -> list:
    """The labels as ints, each a class of the model, at least one."""
    labels = [int(c) for c in labels]
    for c in labels:
        if not 0 <= c < num_classes:
            raise UserError(f"class {c} is out of range: this model has {num_classes} classes (0-{num_classes - 1})")
    if not labels:
        raise UserError("no labels given: pass at least one class")
    return labels


class Generator:
    def __init__(self, model, backend="torch", device="cpu", **backend_options):
        self.model = model
        self.backend = backend_class(backend)(model, device=device, **backend_options)

    @property
    def cfg(self):
        return self.model.cfg

    def check_labels(self, labels):
        return check_labels(labels, self.cfg.num_classes)

    def check(self, labels, sampling, amp):
        """The amplification plan of a run, or a UserError before any work: the backend refuses
        what it cannot run (an export made for other blocks, a batch larger than its engines)."""
        plan = amp.resolve(self.cfg) if amp is not None else None
        self.backend.begin(torch.tensor(self.check_labels(labels)), plan)
        return plan

    def run(self, labels, seed=0, cfg=4.0, top_k=900, top_p=0.95, amp=AmpConfig(), forced_tokens=None,
            return_logits=False, indices=None, sampling: SamplingParams = None):
        """Generate one image per label. Image i's noise comes from (seed, labels[i], indices[i]);
        `indices` defaults to each label's occurrence count within `labels`. `sampling` replaces
        cfg, top_k and top_p when given."""
        if sampling is not None:
            cfg, top_k, top_p = sampling.cfg, sampling.top_k, sampling.top_p
        labels = self.check_labels(labels)
        indices = default_indices(labels) if indices is None else [int(i) for i in indices]
        plan = amp.resolve(self.cfg) if amp is not None else None
        if forced_tokens is not None:
            self._check_forced(forced_tokens, len(labels))
        noise = batch_noise(seed, labels, indices, self.cfg.patch_nums)
        return run_scales(self.backend, torch.tensor(labels), noise, SamplingParams(cfg, top_k, top_p), plan,
                          forced_tokens, return_logits)

    def _check_forced(self, forced_tokens, batch):
        expected = [(batch, pn * pn) for pn in self.cfg.patch_nums]
        got = [tuple(t.shape) for t in forced_tokens]
        if got != expected:
            raise UserError(f"forced_tokens must have shapes {expected} (one per scale), got {got}")
