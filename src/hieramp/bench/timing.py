"""A timing proxy around any backend: the shared loop (VAR's scales, DiT's denoising steps) runs
unchanged and each of its calls is timed under its stage name."""
import time
from collections import defaultdict


def stage_names(num_scales: int):
    """Every stage a breakdown reports, in loop order; `other` is the rest of an iteration
    (noise generation, transfers, Python overhead)."""
    return ("begin", *(f"step {si}" for si in range(num_scales)), "sample", "update", "decode", "other")


class TimedBackend:
    """Wraps a backend; `seconds` holds the time spent per stage since creation.

    `synchronize` (None on CPU) is called around every timed call so that asynchronous device
    work is charged to the call that queued it; on a GPU that adds a wait per call, so the
    benchmark times its headline iterations without this proxy.
    """

    def __init__(self, backend, synchronize=None):
        self._backend = backend
        self._synchronize = synchronize or (lambda: None)
        self.seconds = defaultdict(float)

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def _timed(self, stage, fn, *args):
        self._synchronize()
        start = time.perf_counter()
        out = fn(*args)
        self._synchronize()
        self.seconds[stage] += time.perf_counter() - start
        return out

    def begin(self, labels_B, plan):
        return self._timed("begin", self._backend.begin, labels_B, plan)

    def step(self, si, *args):
        """VAR: step(si, feats, beta, rho, t); DiT: step(i, x, t, y, cfg, mask, beta, want_mass)."""
        return self._timed(f"step {si}", self._backend.step, si, *args)

    def sample(self, logits, noise, top_k, top_p):
        return self._timed("sample", self._backend.sample, logits, noise, top_k, top_p)

    def update(self, si, ids, f_hat):
        return self._timed("update", self._backend.update, si, ids, f_hat)

    def decode(self, f_hat):
        return self._timed("decode", self._backend.decode, f_hat)
