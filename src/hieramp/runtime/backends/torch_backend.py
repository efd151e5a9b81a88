"""The PyTorch reference backend (eager, CPU or CUDA), in fp32, bf16 or fp16, optionally compiled."""
import copy
from functools import partial

import torch

from ...model.amp_op import amplified_set, topk_bias_attention
from ...model.sampling import guide, sample_tokens
from ...precision import check_precision, decoder_in, transformer_in
from .base import Backend


def compiled_blocks(var):
    """`var` with the two halves of every block around the attention compiled by torch.compile
    (dynamic token counts: one compilation serves every scale). Changes `var`: pass a copy."""
    for block in var.blocks:
        block.attention_input = torch.compile(block.attention_input, dynamic=True)
        block.attention_output = torch.compile(block.attention_output, dynamic=True)
    return var


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model, device="cpu", kernel=None, precision="fp32", compile=False):
        """`kernel`: "reference" or "triton" for the amplification op; CUDA defaults to Triton.
        `precision`: fp32, bf16 or fp16 (GPU only) for the blocks' matrix products and the decoder;
        the KV caches, f_hat and all else listed in hieramp.precision stay float32.
        `compile`: torch.compile the blocks (compiled_blocks), on a copy of the model."""
        device = torch.device(device)
        self.compute_dtype = check_precision(precision, device)
        super().__init__(model.cfg, device, next(model.var.parameters()).dtype)
        self.precision = precision
        self.model = model.to(self.device)
        self.vae = model.vae                                           # VQ updates: float32
        self.var = transformer_in(model.var, self.compute_dtype, self.device)
        self.decoder = decoder_in(model.vae, self.compute_dtype, self.device)
        if compile:
            self.var = compiled_blocks(self.var if self.var is not model.var else copy.deepcopy(self.var))
        kernel = kernel or ("triton" if self.device.type == "cuda" else "reference")
        if kernel == "triton":
            from ...plugins import topk_bias_attention as op
        else:
            op = topk_bias_attention
        self.amp_op = op
        self.record_amp = False

    def record_amp_sets(self) -> bool:
        """The reference's sets, from each op call's own inputs (`model.amp_op.amplified_set`)."""
        self.record_amp = True
        return True

    @torch.no_grad()
    def begin(self, labels_B, plan):
        self.check(len(labels_B), plan)
        self.cache = self.cache_for(len(labels_B))
        self.cond = self.var.condition(torch.as_tensor(labels_B, device=self.device))
        self.plan = plan
        self.amp_indicators = []

    @torch.no_grad()
    def step(self, si, feats, beta, rho, t):
        x = self.cond.sos if si == 0 else self.var.embed_scale(si, feats)
        amp, layers, calls = None, (), []
        if self.plan is not None and self.plan.active(si):
            amp = partial(self._amp_attention, beta=beta, rho=rho, mode=self.plan.mode, calls=calls)
            layers = self.plan.layers
        logits = guide(self.var.step(si, x, self.cond, self.cache, amp, layers), t)
        if self.record_amp:
            self.amp_indicators.append(dict(zip(layers, calls)))    # the blocks run in order
        return logits

    def _amp_attention(self, q, k, v, softmax_scale, beta, rho, mode, calls):
        if self.record_amp:
            calls.append(amplified_set(q, k, rho, softmax_scale).cpu())                      # (2B, n)
        return self.amp_op(q, k, v, beta, rho, softmax_scale, mode)

    @torch.no_grad()
    def sample(self, logits, noise, top_k, top_p):
        return sample_tokens(logits, noise, top_k, top_p)

    # The update and the decoder run one image at a time: convolutions pick their algorithm by batch
    # size, and an image's pixels must not depend on its neighbours (docs/design.md, "Guidance, sampling, seeds").
    @torch.no_grad()
    def update(self, si, ids, f_hat):
        parts = [self.vae.vq_update(si, ids[i:i + 1], f_hat[i:i + 1]) for i in range(len(ids))]
        f_hat = torch.cat([f for f, _ in parts])
        return f_hat, None if parts[0][1] is None else torch.cat([feats for _, feats in parts])

    @torch.no_grad()
    def decode(self, f_hat):
        images = torch.cat([self.decoder.fhat_to_img(f_hat[i:i + 1].to(self.compute_dtype)) for i in range(len(f_hat))])
        return (images.float() + 1) / 2
