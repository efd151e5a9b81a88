"""The backend contract (docs/design.md, "Backends"): the steps of the scale loop that every
backend implements, the optional capabilities with their defaults, and the code they share.

A backend never runs a loop of its own: `runtime.loop.run_scales` calls, per batch,
`begin`, then per scale `step`, `sample` (unless the tokens are forced) and `update`, then
`decode`. Letters: B images, 2B the guidance-doubled batch (conditional rows, then
unconditional), n = patch_nums[s] ** 2 tokens at scale s, V the codebook size, C the width,
Cv the VQVAE channels, side the last scale's side.
"""
from typing import Optional

import torch

from ...model.kv_cache import KVCache


class Backend:
    name: str                              # as in the registry (`hieramp.runtime.backends.BACKENDS`)
    # The export or engine directory this backend runs (its manifest and the manifest's id, which
    # distill records per image), or None for backends that run the model itself.
    manifest = None
    artifact_id: Optional[str] = None
    # What the backend computes in (hieramp.precision): fp32, bf16, fp16, or int8 for a quantised
    # export; `hieramp compare` picks its gates by it and distill records it.
    precision: str = "fp32"

    def __init__(self, cfg, device, dtype):
        self.cfg, self.device, self.dtype = cfg, torch.device(device), dtype
        self.plan = None
        self._caches = {}                  # batch size -> KVCache, allocated once

    @classmethod
    def unavailable(cls, device: torch.device) -> Optional[str]:
        """Why this backend cannot run on `device` here (a missing library or provider), or None.
        Cheap: nothing heavy is loaded. The registry checks the CUDA device itself."""
        return None

    # ----- the steps of the scale loop ------------------------------------------------------

    def check(self, batch_size: int, plan):
        """Refuse, with a UserError, a run this backend cannot do: a batch larger than its
        engines, an amplification plan its graphs do not hold. Called by `begin`, and by callers
        that want to know before any work (`Generator.check`)."""

    def begin(self, labels_B, plan):
        """Start a batch: labels (B,) int64 on the CPU; `plan` an `AmpPlan` or None."""
        raise NotImplementedError

    def empty_fhat(self, batch: int) -> torch.Tensor:
        """The zero VQVAE feature map (B, Cv, side, side) the updates accumulate into."""
        side = self.cfg.patch_nums[-1]
        return torch.zeros(batch, self.cfg.vae.Cvae, side, side, dtype=self.dtype, device=self.device)

    def step(self, si: int, feats, beta: float, rho: float, t: float) -> torch.Tensor:
        """Scale si through every block: `feats` is the previous `update`'s (2B, n, C) (None at
        scale 0); beta and rho the scale's amplification, t its guidance weight. Returns the
        guided logits (B, n, V) float32, and keeps the scale's keys and values in the cache."""
        raise NotImplementedError

    def sample(self, logits, noise, top_k: int, top_p: float) -> torch.Tensor:
        """Token ids (B, n) int64 from logits (B, n, V) and uniform noise (B, n)."""
        raise NotImplementedError

    def update(self, si: int, ids, f_hat):
        """The VQ update of scale si: (f_hat (B, Cv, side, side), the next scale's input
        (2B, n', C), or None after the last scale)."""
        raise NotImplementedError

    def decode(self, f_hat) -> torch.Tensor:
        """Images (B, 3, H, W) float32 in [0, 1] on the backend's device."""
        raise NotImplementedError

    # ----- moving tensors -------------------------------------------------------------------

    def put(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU tensor onto the backend's device (before the loop)."""
        return tensor.to(self.device, non_blocking=True)

    def fetch(self, tensor: torch.Tensor) -> torch.Tensor:
        """A result back to the CPU (after the loop)."""
        return tensor.cpu()

    def cache_for(self, batch: int) -> KVCache:
        """The static KV cache of a batch of `batch` images (2B rows), allocated on first use."""
        if batch not in self._caches:
            self._caches[batch] = KVCache.for_model(self.cfg, 2 * batch, self.dtype, self.device)
        return self._caches[batch]

    # ----- optional capabilities, with what a backend without them does -------------------

    # Per step of the last batch, {layer: (2B, n) float 0/1}: the amplified set of every op node,
    # kept once `record_amp_sets()` has returned True.
    amp_indicators: tuple = ()

    def record_amp_sets(self) -> bool:
        """From now on, keep the amplified sets in `amp_indicators` (for `hieramp compare`).
        Returns whether this backend can; the default cannot."""
        return False

    def device_memory_bytes(self) -> int:
        """Device memory held outside the torch allocator (benchmarks add it to torch's peak)."""
        return 0
