"""The PyTorch reference backend (eager, CPU or CUDA), in fp32, bf16 or fp16, optionally compiled."""
import copy
from functools import partial

import torch

from ...model.amp_op import amplified_set, topk_bias_attention
from ...model.kv_cache import KVCache
from ...model.sampling import guide, sample_tokens
from ...precision import check_precision, decoder_in, transformer_in


def compiled_blocks(var):
    """`var` with the two halves of every block around the attention compiled by torch.compile
    (dynamic token counts: one compilation serves every scale). Changes `var`: pass a copy."""
    for block in var.blocks:
        block.attention_input = torch.compile(block.attention_input, dynamic=True)
        block.attention_output = torch.compile(block.attention_output, dynamic=True)
    return var


class TorchBackend:
    name = "torch"

    def __init__(self, model, device="cpu", kernel=None, precision="fp32", compile=False):
        """`kernel`: "reference" or "triton" for the amplification op; CUDA defaults to Triton.
        `precision`: fp32, bf16 or fp16 (GPU only) for the transformer and the decoder; what stays
        float32 is listed in hieramp.precision. `compile`: torch.compile the blocks (compiled_blocks)."""
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = check_precision(precision, self.device)
        self.model = model.to(self.device)
        self.vae = model.vae                                           # VQ updates: float32
        self.var = transformer_in(model.var, self.dtype, self.device)
        self.decoder = decoder_in(model.vae, self.dtype, self.device)
        if compile:
            self.var = compiled_blocks(self.var if self.var is not model.var else copy.deepcopy(self.var))
        kernel = kernel or ("triton" if self.device.type == "cuda" else "reference")
        if kernel == "triton":
            from ...plugins import topk_bias_attention as op
        else:
            op = topk_bias_attention
        self.amp_op = op
        self._caches = {}
        self.record_amp = False
        self._sets = []            # the current step's recorded sets, in block order
        self.amp_indicators = []   # per step of the last batch, {layer: (2B, n) float 0/1}, when recording

    def record_amp_sets(self):
        """From now on, keep the amplified set of every op call per step in `amp_indicators` (for
        `hieramp compare`), computed from the op's inputs as the reference op computes it."""
        self.record_amp = True

    def put(self, tensor):
        return tensor.to(self.device, non_blocking=True)

    def fetch(self, tensor):
        return tensor.cpu()

    @torch.no_grad()
    def begin(self, labels_B, plan):
        batch = len(labels_B)
        if batch not in self._caches:
            self._caches[batch] = KVCache.for_model(self.var.cfg, 2 * batch, torch.float32, self.device)
        self.cache = self._caches[batch]
        self.cond = self.var.condition(torch.as_tensor(labels_B, device=self.device))
        self.plan = plan
        self.amp_indicators = []

    def empty_fhat(self, batch):
        cfg = self.var.cfg
        side = cfg.patch_nums[-1]
        return torch.zeros(batch, cfg.vae.Cvae, side, side, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def step(self, si, feats, beta, rho, t):
        x = self.cond.sos if si == 0 else self.var.embed_scale(si, feats)
        amp, layers = None, ()
        if self.plan is not None and self.plan.active(si):
            amp = partial(self._amp_attention, beta=beta, rho=rho, mode=self.plan.mode)
            layers = self.plan.layers
        self._sets = []
        logits = guide(self.var.step(si, x, self.cond, self.cache, amp, layers), t)
        if self.record_amp:
            self.amp_indicators.append(dict(zip(layers, self._sets)))     # the op runs in block order
        return logits

    def _amp_attention(self, q, k, v, scale, beta, rho, mode):
        if self.record_amp:
            self._sets.append(amplified_set(q, k, rho, scale).cpu())
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
        images = torch.cat([self.decoder.fhat_to_img(f_hat[i:i + 1].to(self.dtype)) for i in range(len(f_hat))])
        return (images.float() + 1) / 2
