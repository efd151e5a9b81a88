"""Generator: the public entry point that runs a model on a backend."""
from collections import Counter

import torch

from .. import checks
from ..errors import UserError
from ..model.amp_config import AmpConfig
from ..model.sampling import SamplingParams, batch_noise
from .backends import backend_class
from .loop import run_scales


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
        checks.device(device)
        self.backend = backend_class(backend)(model, device=device, **backend_options)

    @property
    def cfg(self):
        return self.model.cfg

    def check_labels(self, labels):
        return check_labels(labels, self.cfg.num_classes)

    def check(self, batch_size: int, amp=AmpConfig(), sampling=None):
        """The run's amplification plan; refuses, before any work, settings this backend cannot
        run: amplification its export or engines do not hold, batches larger than its engines.
        (`sampling` belongs to the generator interface, docs/design.md "A second backbone"; VAR's
        checks do not depend on it.)"""
        plan = amp.resolve(self.cfg) if amp is not None else None
        self.backend.check(batch_size, plan)
        return plan

    def run(self, labels, seed=0, cfg=None, top_k=None, top_p=None, amp=AmpConfig(), forced_tokens=None,
            return_logits=False, indices=None, sampling: SamplingParams = None):
        """Generate one image per label. Image i's noise comes from (seed, labels[i], indices[i]);
        `indices` defaults to each label's occurrence count within `labels`. Sampling settings
        come as `sampling=SamplingParams(...)` or as the keywords `cfg` (the guidance weight,
        named as on the command line), `top_k`, `top_p` (the defaults of SamplingParams for those
        not given), not both."""
        sampling = _sampling(sampling, cfg=cfg, top_k=top_k, top_p=top_p)
        labels = self.check_labels(labels)
        seed = checks.seed(seed)
        indices = default_indices(labels) if indices is None else [int(i) for i in indices]
        plan = self.check(len(labels), amp)
        if forced_tokens is not None:
            self._check_forced(forced_tokens, len(labels))
        noise = batch_noise(seed, labels, indices, self.cfg.patch_nums)
        return run_scales(self.backend, torch.tensor(labels), noise, sampling, plan, forced_tokens, return_logits)

    def _check_forced(self, forced_tokens, batch):
        expected = [(batch, pn * pn) for pn in self.cfg.patch_nums]
        got = [tuple(t.shape) for t in forced_tokens]
        if got != expected:
            raise UserError(f"forced_tokens must have shapes {expected} (one per scale), got {got}")


def _sampling(sampling, cfg, top_k, top_p) -> SamplingParams:
    given = {name: value for name, value in (("guidance", cfg), ("top_k", top_k), ("top_p", top_p)) if value is not None}
    if sampling is None:
        return SamplingParams(**given)
    if given:
        names = ", ".join("cfg" if name == "guidance" else name for name in given)
        raise UserError(f"pass the sampling settings either as sampling=SamplingParams(...) or as keywords, "
                        f"not both (got sampling= and {names})")
    return sampling
