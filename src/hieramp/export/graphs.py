"""The graph I/O contract: which graphs an export holds and their files, the torch modules that
become them with their declarative I/O specs and example inputs, and what a runtime feeds the
step graph and does with its outputs (the write-back of new keys, the guidance rows of the next
scale's input). The exporter, the engine builder and the ONNX Runtime and TensorRT backends all
read it from here (docs/design.md, "The graph I/O contract").

Letters as in model/var.py; `batch2` is the guidance-doubled batch 2B. Dimensions given as
names are dynamic in the graph, numbers are static.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model.amp_op import NEUTRAL_BETA
from ..model.sampling import guide
from ..model.var import block_attention
from .amp_function import graph_rho
from .amp_node import amp_attention

CONDITION, STEP, SAMPLE, UPDATE, DECODE = "condition", "step", "sample", "update", "decode"   # the graph kinds
PER_SCALE = UPDATE                # the one kind with a graph per scale: update_<s>
EVERY_SCALE = (STEP, SAMPLE)      # one graph serves every scale: n (and P) change from scale to scale
PER_IMAGE = (UPDATE, DECODE)      # run at batch 1, one image at a time (docs/design.md, "Guidance, sampling, seeds")
TRACE_BATCH = 2                   # not 1, so that no batch axis is traced as a broadcastable 1

# The graphs' tensor names: a tensor keeps its name from the graph that makes it to the graph
# that takes it. They are the names inside every export's ONNX files and every engine's
# bindings: renaming one invalidates existing exports and engines.
LABELS = "labels"                                            # condition in
BLOCK_MODS, HEAD_MOD, SOS = "block_mods", "head_mod", "sos"  # condition out; step in (sos: scale 0's tokens)
TOKENS = "tokens"                                            # step in; update out (the next scale's)
SCALE, PAST_LEN = "scale", "past_len"                        # step in, int64 scalars
BETA, RHO, CFG_T = "beta", "rho", "cfg_t"                    # step in, float32 scalars
CACHE, NEW = "cache", "new"                                  # step: prefixes of the cache inputs, new-key outputs
LOGITS = "logits"                                            # step out; sample in
NOISE, TOP_K, TOP_P = "noise", "top_k", "top_p"              # sample in
IDS = "ids"                                                  # sample out; update in
F_HAT, F_HAT_OUT = "f_hat", "f_hat_out"                      # update in, out; decode in (F_HAT)
IMAGES = "images"                                            # decode out
BATCH, BATCH2, N = "batch", "batch2", "n"                    # dynamic dimensions: B, 2B, the scale's tokens
SIDE, SIZE = "side", "size"          # the decoder's f_hat side and image size, dynamic only while an fp16 decoder is traced
FP16_DECODE_TRACE_SIDE = 2           # the f_hat side it is traced at


def graph_names(num_scales: int) -> list:
    """Every graph of an export, in export order: condition, step, sample, update_<s>, decode."""
    return [CONDITION, STEP, SAMPLE, *(graph_name(PER_SCALE, s) for s in range(num_scales)), DECODE]


def graph_name(kind: str, scale: Optional[int] = None) -> str:
    return kind if scale is None else f"{kind}_{scale}"


def graph_kind(name: str) -> tuple:
    """Graph name -> (kind, scale or None): "update_3" -> ("update", 3), "step" -> ("step", None)."""
    kind, _, scale = name.partition("_")
    return kind, int(scale) if scale else None


def graph_files(num_scales: int, suffix: str) -> dict:
    """The manifest entry naming each graph's file (".onnx" in an export, ".engine" in an engine
    directory): kind -> file, and for the per-scale kind a list by scale."""
    files = {}
    for name in graph_names(num_scales):
        kind, scale = graph_kind(name)
        if scale is None:
            files[kind] = graph_file(name, suffix)
        else:
            files.setdefault(kind, []).append(graph_file(name, suffix))
    return files


def graph_file(name: str, suffix: str) -> str:
    return name + suffix


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple          # ints (static) or axis names (dynamic)
    dtype: torch.dtype


@dataclass(frozen=True)
class GraphSpec:
    name: str
    inputs: tuple
    outputs: tuple

    def dynamic_axes(self) -> dict:
        return {t.name: {i: d for i, d in enumerate(t.dims) if isinstance(d, str)} for t in self.inputs + self.outputs}


def restricted_attention(q, k, v, softmax_scale):
    """`model.amp_op.scale_restricted_attention` in traceable form: the class-row mask comes from
    index comparisons (dynamic shapes), not from an in-place write into a zero mask."""
    Lq, Lk = q.shape[2], k.shape[2]
    class_row = torch.arange(Lq, device=q.device) == Lq - 1
    cached_key = torch.arange(Lk, device=q.device) < Lk - Lq
    hidden = class_row[:, None] & cached_key[None, :]                                 # (Lq, Lk)
    mask = torch.zeros((), dtype=q.dtype, device=q.device).masked_fill(hidden, float("-inf"))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=softmax_scale)


def cache_names(depth: int, prefix: str) -> list:
    """Per block K then V: `{prefix}_k.0, {prefix}_v.0, {prefix}_k.1, ...` (the step graph's
    CACHE inputs and NEW outputs)."""
    return [f"{prefix}_{kv}.{i}" for i in range(depth) for kv in "kv"]


def cache_feeds(cache) -> dict:
    """The step graph's cache inputs: the whole static buffers of a `KVCache`, by name."""
    buffers = [b for layer in range(len(cache.k)) for b in (cache.k[layer], cache.v[layer])]
    return dict(zip(cache_names(len(cache.k), CACHE), buffers))


def write_new_keys(cache, past_len: int, new_kv: list):
    """Write the step graph's `new` outputs (in `cache_names` order, each (2B, H, n, D)) into the
    cache at the scale's offset P, where the next scales' steps read them."""
    for layer in range(len(cache.k)):
        n = new_kv[2 * layer].shape[2]
        cache.k[layer][:, :, past_len:past_len + n].copy_(new_kv[2 * layer])
        cache.v[layer][:, :, past_len:past_len + n].copy_(new_kv[2 * layer + 1])


def step_scalars(plan, amp_mode: Optional[str], si: int, n: int, beta: float, rho: float, t: float) -> dict:
    """The step graph's float32 scalar inputs at scale si. The op node runs at every scale, so a
    scale the plan does not amplify gets the neutral beta of the export's mode; rho is moved to
    the float32 that gives the reference's k_sel (`graph_rho`)."""
    if plan is None or not plan.active(si):
        beta = NEUTRAL_BETA[amp_mode or "logit"]
    return {BETA: np.float32(beta), RHO: graph_rho(rho, n), CFG_T: np.float32(t)}


class ConditionGraph(nn.Module):
    """labels (B,) -> everything that depends only on the labels (`VAR.condition`)."""

    def __init__(self, var):
        super().__init__()
        self.var = var

    def forward(self, labels):
        cond = self.var.condition(labels)
        return torch.stack(cond.block_mods, 1), cond.head_mod, cond.sos    # (2B, depth, 6, C), (2B, 2, C), (2B, 1, C)

    @staticmethod
    def spec(cfg, dtype) -> GraphSpec:
        C, first_l = cfg.embed_dim, cfg.patch_nums[0] ** 2
        return GraphSpec(CONDITION, (TensorSpec(LABELS, (BATCH,), torch.int64),), (
            TensorSpec(BLOCK_MODS, (BATCH2, cfg.depth, 6, C), dtype),
            TensorSpec(HEAD_MOD, (BATCH2, 2, C), dtype),
            TensorSpec(SOS, (BATCH2, first_l, C), dtype)))


class StepGraph(nn.Module):
    """One scale through every block, for any scale: the scale index picks the class token from
    a table, past_len P slices the static caches, and the scale's keys and values are returned
    for the caller to write at offset P. Output logits are guided: (B, n, V)."""

    def __init__(self, var, amp_layers: tuple, amp_mode: Optional[str]):
        super().__init__()
        self.var = var
        self.amp_layers, self.amp_mode = tuple(amp_layers), amp_mode
        cfg = var.cfg
        if var.has_class_tokens:
            self.register_buffer("cls_table", torch.cat([var.cls_tokens[str(s)][0] for s in range(cfg.num_scales)]))  # (S, C)
        else:
            self.cls_table = None

    def forward(self, tokens, block_mods, head_mod, si, past_len, beta, rho, t, *caches):
        """Inputs in spec order; the graph names `si` SCALE and the guidance weight `t` CFG_T."""
        n = tokens.shape[1]
        x = tokens                                                                    # (2B, n, C)
        if self.cls_table is not None:
            cls = self.cls_table[si].to(x.dtype).expand(x.shape[0], 1, -1)            # (2B, 1, C)
            x = torch.cat((x, cls), 1)                                                # (2B, n + 1, C)
        new_kv = []
        for layer, block in enumerate(self.var.blocks):
            attend = self._attend(layer, caches[2 * layer], caches[2 * layer + 1], past_len, n, beta, rho, new_kv)
            x = block(x, block_mods[:, layer], attend)
        return (guide(self.var.logits(x[:, :n], head_mod), t), *new_kv)

    def _attend(self, layer, cache_k, cache_v, past_len, n, beta, rho, new_kv):
        amplified = amp_attention(beta, rho, self.amp_mode) if self.amp_layers else None
        attention = block_attention(layer, self.cls_table is not None, amplified, self.amp_layers, restricted_attention)

        def attend(q, k, v, softmax_scale):
            new_kv.extend((k[:, :, :n], v[:, :, :n]))                                 # spatial keys only
            k = torch.cat((cache_k[:, :, :past_len], k), 2)                          # (2B, H, P + Lq, D)
            v = torch.cat((cache_v[:, :, :past_len], v), 2)
            return attention(q, k, v, softmax_scale).to(q.dtype)
        return attend

    @staticmethod
    def spec(cfg, dtype) -> GraphSpec:
        C, H, D, depth = cfg.embed_dim, cfg.num_heads, cfg.head_dim, cfg.depth
        scalar = [TensorSpec(name, (), torch.int64) for name in (SCALE, PAST_LEN)]
        scalar += [TensorSpec(name, (), torch.float32) for name in (BETA, RHO, CFG_T)]
        caches = [TensorSpec(name, (BATCH2, H, cfg.seq_len + 1, D), dtype) for name in cache_names(depth, CACHE)]
        new = [TensorSpec(name, (BATCH2, H, N, D), dtype) for name in cache_names(depth, NEW)]
        return GraphSpec(STEP, (
            TensorSpec(TOKENS, (BATCH2, N, C), dtype),
            TensorSpec(BLOCK_MODS, (BATCH2, depth, 6, C), dtype),
            TensorSpec(HEAD_MOD, (BATCH2, 2, C), dtype), *scalar, *caches),
            (TensorSpec(LOGITS, (BATCH, N, cfg.vae.vocab_size), torch.float32), *new))


class UpdateGraph(nn.Module):
    """Scale si's VQ update (`VQVAE.vq_update`), then the next scale's embedded, guidance-doubled
    input (`VAR.embed_scale`). Trace it under `resize_as_matrices()`."""

    def __init__(self, model, si: int):
        super().__init__()
        self.var, self.vae, self.si = model.var, model.vae, si
        self.last = si == model.cfg.num_scales - 1

    def forward(self, ids, f_hat):
        f_hat, feats = self.vae.vq_update(self.si, ids, f_hat)                         # (B, Cv, P, P), (B, n', Cv)
        if self.last:
            return f_hat
        return f_hat, self.var.embed_scale(self.si + 1, feats)                       # (2B, n', C)

    @staticmethod
    def spec(cfg, dtype, si) -> GraphSpec:
        side, Cv = cfg.patch_nums[-1], cfg.vae.Cvae
        f_hat = (BATCH, Cv, side, side)
        outputs = (TensorSpec(F_HAT_OUT, f_hat, dtype),)
        if si != cfg.num_scales - 1:
            outputs += (TensorSpec(TOKENS, (BATCH2, cfg.patch_nums[si + 1] ** 2, cfg.embed_dim), dtype),)
        return GraphSpec(graph_name(PER_SCALE, si), (TensorSpec(IDS, (BATCH, cfg.patch_nums[si] ** 2), torch.int64),
                                                     TensorSpec(F_HAT, f_hat, dtype)), outputs)


def guidance_rows(image_tokens_B2nC: torch.Tensor, out: torch.Tensor = None) -> torch.Tensor:
    """The next scale's input (2B, n', C) from the update graph's per-image outputs: run on one
    image, it returns (2, n', C), the image's conditional row then its unconditional one; the
    step graph takes all conditional rows, then all unconditional ones. Into `out` if given."""
    B = image_tokens_B2nC.shape[0]
    if out is None:
        return torch.cat((image_tokens_B2nC[:, 0], image_tokens_B2nC[:, 1]))
    out[:B].copy_(image_tokens_B2nC[:, 0])
    out[B:].copy_(image_tokens_B2nC[:, 1])
    return out


class DecodeGraph(nn.Module):
    """f_hat -> images in [0, 1], as the torch backend decodes."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, f_hat):
        return (self.vae.fhat_to_img(f_hat).float() + 1) / 2                         # (B, 3, H, W)

    @staticmethod
    def spec(cfg, dtype, side=None, size=None) -> GraphSpec:
        """side, size: the f_hat side and image size (default the model's), or axis names."""
        side, size = side or cfg.patch_nums[-1], size or cfg.vae.image_size
        return GraphSpec(DECODE, (TensorSpec(F_HAT, (BATCH, cfg.vae.Cvae, side, side), dtype),),
                         (TensorSpec(IMAGES, (BATCH, 3, size, size), torch.float32),))


def traceable(model, name: str, amp_layers, amp_mode, dtype):
    """The module, its spec, example inputs (batch TRACE_BATCH) and the spec to trace it with
    (the same, except for the fp16 decoder) for the graph `name`."""
    var, cfg = model.var, model.cfg
    B = TRACE_BATCH
    gen = torch.Generator().manual_seed(0)
    kind, si = graph_kind(name)
    if kind == CONDITION:
        spec = ConditionGraph.spec(cfg, dtype)
        return ConditionGraph(var), spec, (torch.arange(B),), spec
    if kind == DECODE:
        spec = DecodeGraph.spec(cfg, dtype)
        if dtype != torch.float16:
            return DecodeGraph(model.vae), spec, (_example_fhat(cfg, B, dtype, gen),), spec
        # torch's fp16 convolutions run ~300x slower than its fp32 ones on CPUs (docs/design.md,
        # "Precision"): trace on a small f_hat with the spatial axes dynamic; the spec pins them after.
        small = _example_fhat(cfg, B, dtype, gen, FP16_DECODE_TRACE_SIDE)
        return DecodeGraph(model.vae), spec, (small,), DecodeGraph.spec(cfg, dtype, SIDE, SIZE)
    if kind == STEP:
        si = cfg.num_scales // 2          # n > 1 and P > 0, so neither is traced as a special case
        n, P = cfg.patch_nums[si] ** 2, cfg.scale_offsets[si]
        with torch.no_grad():
            cond = var.condition(torch.arange(B))
        caches = [torch.randn(2 * B, cfg.num_heads, cfg.seq_len + 1, cfg.head_dim, generator=gen).to(dtype)
                  for _ in range(2 * cfg.depth)]   # distinct tensors: the tracer tells inputs apart by identity
        scalars = [torch.tensor(si), torch.tensor(P), torch.tensor(5.0), torch.tensor(0.5), torch.tensor(1.0)]
        args = (torch.randn(2 * B, n, cfg.embed_dim, generator=gen).to(dtype), torch.stack(cond.block_mods, 1),
                cond.head_mod, *scalars, *caches)
        spec = StepGraph.spec(cfg, dtype)
        return StepGraph(var, amp_layers, amp_mode), spec, args, spec
    if kind != PER_SCALE:
        raise ValueError(f"no traceable module for graph {name!r}")
    ids = torch.randint(cfg.vae.vocab_size, (B, cfg.patch_nums[si] ** 2), generator=gen)
    spec = UpdateGraph.spec(cfg, dtype, si)
    return UpdateGraph(model, si), spec, (ids, _example_fhat(cfg, B, dtype, gen)), spec


def _example_fhat(cfg, B, dtype, gen, side=None):
    side = side or cfg.patch_nums[-1]
    return torch.randn(B, cfg.vae.Cvae, side, side, generator=gen).to(dtype)
