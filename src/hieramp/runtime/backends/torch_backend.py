"""The PyTorch reference backend (eager, CPU or CUDA)."""
from functools import partial

import torch

from ...model.amp_op import topk_bias_attention
from ...model.kv_cache import KVCache
from ...model.sampling import guide, sample_tokens


class TorchBackend:
    name = "torch"

    def __init__(self, model, device="cpu", kernel=None):
        """`kernel`: "reference" or "triton" for the amplification op; CUDA defaults to Triton."""
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.var, self.vae = model.var, model.vae
        kernel = kernel or ("triton" if self.device.type == "cuda" else "reference")
        if kernel == "triton":
            from ...plugins import topk_bias_attention as op
        else:
            op = topk_bias_attention
        self.amp_op = op
        self.dtype = next(self.var.parameters()).dtype
        self._caches = {}

    def put(self, tensor):
        return tensor.to(self.device, non_blocking=True)

    def fetch(self, tensor):
        return tensor.cpu()

    @torch.no_grad()
    def begin(self, labels_B, plan):
        batch = len(labels_B)
        if batch not in self._caches:
            self._caches[batch] = KVCache.for_model(self.var.cfg, 2 * batch, self.dtype, self.device)
        self.cache = self._caches[batch]
        self.cond = self.var.condition(torch.as_tensor(labels_B, device=self.device))
        self.plan = plan

    def empty_fhat(self, batch):
        cfg = self.var.cfg
        side = cfg.patch_nums[-1]
        return torch.zeros(batch, cfg.vae.Cvae, side, side, dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def step(self, si, feats, beta, rho, t):
        x = self.cond.sos if si == 0 else self.var.embed_scale(si, feats)
        amp, layers = None, ()
        if self.plan is not None and self.plan.active(si):
            amp = partial(self._amp_attention, beta=beta, rho=rho, mode=self.plan.mode)
            layers = self.plan.layers
        return guide(self.var.step(si, x, self.cond, self.cache, amp, layers), t)

    def _amp_attention(self, q, k, v, scale, beta, rho, mode):
        return self.amp_op(q, k, v, beta, rho, scale, mode)

    @torch.no_grad()
    def sample(self, logits, noise, top_k, top_p):
        return sample_tokens(logits, noise, top_k, top_p)

    # The update and the decoder run one image at a time: convolutions pick their algorithm by
    # batch size, and an image's pixels must not depend on its batch neighbours (DESIGN: seeds).
    @torch.no_grad()
    def update(self, si, ids, f_hat):
        parts = [self.vae.vq_update(si, ids[i:i + 1], f_hat[i:i + 1]) for i in range(len(ids))]
        f_hat = torch.cat([f for f, _ in parts])
        return f_hat, None if parts[0][1] is None else torch.cat([feats for _, feats in parts])

    @torch.no_grad()
    def decode(self, f_hat):
        images = torch.cat([self.vae.fhat_to_img(f_hat[i:i + 1]) for i in range(len(f_hat))])
        return (images.float() + 1) / 2
