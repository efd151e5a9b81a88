"""VAR with per-scale class tokens (HierAmp): blocks, KV-cached steps and the teacher-forced forward.

Letters: B batch (2B after guidance doubling), L tokens, n tokens of one scale, C width,
H heads, D head dim, V vocabulary, Cv VQVAE latent width.
State-dict keys equal the official checkpoints' (tests/reference/var_d*.keys.tsv).
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .amp_op import scale_restricted_attention
from .config import VARConfig

MAX_LOG_SCALE_MUL = math.log(100)


class SelfAttention(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        C, H = cfg.embed_dim, cfg.num_heads
        self.num_heads, self.head_dim = H, C // H
        self.l2_norm = cfg.attn_l2_norm
        # With l2-normalised q and k the per-head temperature lives in scale_mul_1H11.
        self.softmax_scale = 1.0 if cfg.attn_l2_norm else 0.25 / math.sqrt(self.head_dim)
        if cfg.attn_l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, H, 1, 1), 4.0).log())
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.register_buffer("zero_k_bias", torch.zeros(C))
        self.mat_qkv = nn.Linear(C, 3 * C, bias=False)
        self.proj = nn.Linear(C, C)

    def qkv(self, x_BLC):
        """Project to heads: three (B, H, L, D) tensors, q already carrying the temperature."""
        B, L, _ = x_BLC.shape
        w = self.mat_qkv.weight                          # its dtype may be lower than the stream's (hieramp.precision)
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias)).to(w.dtype)
        qkv = F.linear(x_BLC.to(w.dtype), w, bias).to(x_BLC.dtype).view(B, L, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                          # (B, H, L, D) each
        if self.l2_norm:
            scale_mul = self.scale_mul_1H11.clamp_max(MAX_LOG_SCALE_MUL).exp()
            q = F.normalize(q, dim=-1) * scale_mul
            k = F.normalize(k, dim=-1)
        return q, k, v

    def out(self, o_BHLD):
        B, H, L, D = o_BHLD.shape
        return self.proj(o_BHLD.transpose(1, 2).reshape(B, L, H * D).to(self.proj.weight.dtype))


class FFN(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        hidden = round(cfg.embed_dim * cfg.mlp_ratio)
        self.fc1 = nn.Linear(cfg.embed_dim, hidden)
        self.fc2 = nn.Linear(hidden, cfg.embed_dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class AdaLNBlock(nn.Module):
    """Pre-norm block whose norms are modulated by the class condition (gamma, scale, shift)."""

    def __init__(self, cfg: VARConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C = C
        self.attn = SelfAttention(cfg)
        self.ffn = FFN(cfg)
        self.norm = nn.LayerNorm(C, eps=cfg.norm_eps, elementwise_affine=False)
        if cfg.shared_aln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, C) / math.sqrt(C))
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))

    def modulation(self, cond_BC, shared_B6C):
        """(B, 6, C): gamma1, gamma2, scale1, scale2, shift1, shift2."""
        if shared_B6C is not None:
            return self.ada_gss[0] + shared_B6C
        return self.ada_lin(cond_BC).view(-1, 6, self.C)

    def forward(self, x_BLC, mod_B6C, attend: Callable):
        return self.output_and_attention(x_BLC, mod_B6C, attend)[0]

    def output_and_attention(self, x_BLC, mod_B6C, attend: Callable):
        """The block's output and its attention sub-layer's output (after the projection, before gamma1)."""
        q, k, v = self.attention_input(x_BLC, mod_B6C)
        return self.attention_output(x_BLC, attend(q, k, v, self.attn.softmax_scale), mod_B6C)

    # The halves around the attention are pure tensor functions, which torch.compile can take
    # (the attention itself writes the KV cache and depends on the scale).
    def attention_input(self, x_BLC, mod_B6C):
        """q, k, v (B, H, L, D) of the modulated, normalised input."""
        _, _, scale1, _, shift1, _ = mod_B6C.unsqueeze(2).unbind(1)                      # (B, 1, C) each
        return self.attn.qkv(self.norm(x_BLC) * (1 + scale1) + shift1)

    def attention_output(self, x_BLC, o_BHLD, mod_B6C):
        """The block's output and the attention sub-layer's output a (B, L, C)."""
        gamma1, gamma2, _, scale2, _, shift2 = mod_B6C.unsqueeze(2).unbind(1)
        a_BLC = self.attn.out(o_BHLD)
        x_BLC = x_BLC + a_BLC * gamma1
        h = self.norm(x_BLC) * (1 + scale2) + shift2
        return x_BLC + self.ffn(h.to(self.ffn.fc1.weight.dtype)) * gamma2, a_BLC    # back in the stream's dtype


class AdaLNBeforeHead(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C = C
        self.norm = nn.LayerNorm(C, eps=cfg.norm_eps, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 2 * C))

    def modulation(self, cond_BC):
        return self.ada_lin(cond_BC).view(-1, 2, self.C)                        # (B, 2, C): scale, shift

    def forward(self, x_BLC, mod_B2C):
        scale, shift = mod_B2C.unsqueeze(2).unbind(1)
        return self.norm(x_BLC) * (1 + scale) + shift


class SharedAdaLin(nn.Linear):
    pass


def cached_attention(q, k, v, softmax_scale):
    """Plain VAR at inference: a scale's tokens see every cached key and each other."""
    return F.scaled_dot_product_attention(q, k, v, scale=softmax_scale)


def block_attention(layer: int, with_cls: bool, amp_attention: Optional[Callable], amp_layers,
                    restricted: Callable = scale_restricted_attention) -> Callable:
    """The attention block `layer` runs at a scale: the amplified op at the amplified blocks, the
    scale-restricted attention where the scale carries a class token, plain cached attention otherwise."""
    if amp_attention is not None and layer in amp_layers:
        return amp_attention
    return restricted if with_cls else cached_attention


@dataclass
class Conditioning:
    """Everything that depends only on the labels, computed once per batch (docs/design.md, "Speed principles")."""
    block_mods: list          # per block (2B, 6, C)
    head_mod: torch.Tensor    # (2B, 2, C)
    sos: torch.Tensor         # (2B, first_l, C): the input of scale 0


class VAR(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        self.cfg = cfg
        C, S = cfg.embed_dim, cfg.num_scales
        first_l = cfg.patch_nums[0] ** 2
        self.word_embed = nn.Linear(cfg.vae.Cvae, C)
        self.class_emb = nn.Embedding(cfg.num_classes + 1, C)
        self.pos_start = nn.Parameter(torch.zeros(1, first_l, C))
        self.pos_1LC = nn.Parameter(torch.zeros(1, cfg.seq_len, C))
        self.lvl_embed = nn.Embedding(S, C)
        if cfg.shared_aln:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), SharedAdaLin(C, 6 * C))
        self.blocks = nn.ModuleList(AdaLNBlock(cfg) for _ in range(cfg.depth))
        if cfg.cls_token_scales:
            self.cls_tokens = nn.ParameterDict({str(s): nn.Parameter(torch.zeros(1, 1, C)) for s in cfg.cls_token_scales})
        self.head_nm = AdaLNBeforeHead(cfg)
        self.head = nn.Linear(C, cfg.vae.vocab_size)

        level_L = torch.cat([torch.full((pn * pn,), s) for s, pn in enumerate(cfg.patch_nums)])
        self.register_buffer("lvl_1L", level_L.view(1, -1))
        causal = torch.where(level_L[:, None] >= level_L[None, :], 0.0, float("-inf"))
        self.register_buffer("attn_bias_for_masking", causal.view(1, 1, cfg.seq_len, cfg.seq_len))
        self.reset_parameters()

    def reset_parameters(self):
        std = math.sqrt(1 / self.cfg.embed_dim / 3)
        for name, p in self.named_parameters():
            if name.endswith("scale_mul_1H11"):
                nn.init.constant_(p, math.log(4.0))
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.startswith("blocks") and (".ada_lin." in name or name.endswith("ada_gss")):
                nn.init.trunc_normal_(p, std=0.1 * std)
            else:
                nn.init.trunc_normal_(p, std=std)

    # ----- shared pieces -------------------------------------------------------------------

    @property
    def has_class_tokens(self) -> bool:
        return bool(self.cfg.cls_token_scales)

    def level_pos(self):
        return self.lvl_embed(self.lvl_1L[0]).unsqueeze(0) + self.pos_1LC             # (1, L, C)

    def condition(self, labels_B: torch.Tensor) -> Conditioning:
        """Class conditioning of the guidance-doubled batch: labels, then the unconditional label."""
        labels_2B = torch.cat((labels_B, torch.full_like(labels_B, self.cfg.num_classes)))
        return self._condition(labels_2B)

    def _condition(self, labels_B: torch.Tensor) -> Conditioning:
        cond_BC = self.class_emb(labels_B)
        shared = self.shared_ada_lin(cond_BC).view(-1, 6, self.cfg.embed_dim) if self.cfg.shared_aln else None
        first_l = self.cfg.patch_nums[0] ** 2
        sos = cond_BC.unsqueeze(1) + self.pos_start + self.level_pos()[:, :first_l]
        return Conditioning(
            block_mods=[b.modulation(cond_BC, shared) for b in self.blocks],
            head_mod=self.head_nm.modulation(cond_BC),
            sos=sos,
        )

    def embed_scale(self, si: int, feats_BnCv: torch.Tensor) -> torch.Tensor:
        """Input tokens of scale si >= 1 from the VQ features, doubled for guidance: (2B, n, C)."""
        P, n = self.cfg.scale_offsets[si], self.cfg.patch_nums[si] ** 2
        x = self.word_embed(feats_BnCv) + self.level_pos()[:, P:P + n]
        return x.repeat(2, 1, 1)

    def logits(self, x_BnC, head_mod):
        return self.head(self.head_nm(x_BnC, head_mod)).float()

    # ----- KV-cached inference ------------------------------------------------------------

    def step(self, si: int, x_BnC, cond: Conditioning, cache, amp_attention: Optional[Callable], amp_layers=()):
        """One scale through all blocks with the KV cache; returns unguided logits (2B, n, V).

        `amp_attention(q, k, v, softmax_scale)` is used at the blocks in `amp_layers` (None: no amplification).
        """
        n = x_BnC.shape[1]
        with_cls = si in self.cfg.cls_token_scales
        if with_cls:
            cls = self.cls_tokens[str(si)].expand(x_BnC.shape[0], -1, -1).to(x_BnC.dtype)
            x_BnC = torch.cat((x_BnC, cls), dim=1)
        P = self.cfg.scale_offsets[si]
        for layer, block in enumerate(self.blocks):
            attention = block_attention(layer, with_cls, amp_attention, amp_layers)
            x_BnC = block(x_BnC, cond.block_mods[layer], cache.attend(layer, P, attention))
        return self.logits(x_BnC[:, :n], cond.head_mod)

    # ----- teacher-forced full sequence (training) ----------------------------------------

    def sequence_layout(self):
        """Scale of each position and whether it is a class token, class tokens after their scale."""
        scale_of, is_cls = [], []
        for s, pn in enumerate(self.cfg.patch_nums):
            scale_of += [s] * (pn * pn)
            is_cls += [False] * (pn * pn)
            if s in self.cfg.cls_token_scales:
                scale_of.append(s)
                is_cls.append(True)
        return torch.tensor(scale_of), torch.tensor(is_cls)

    def training_mask(self, device):
        """Additive (Lc, Lc) mask: spatial rows see spatial tokens of their and earlier scales and
        their own scale's class token; class rows see only their own scale."""
        scale_of, is_cls = self.sequence_layout()
        qs, ks = scale_of[:, None], scale_of[None, :]
        qc, kc = is_cls[:, None], is_cls[None, :]
        allowed = (~qc & ~kc & (ks <= qs)) | (~qc & kc & (ks == qs)) | (qc & (ks == qs))
        return torch.where(allowed, 0.0, float("-inf")).to(device)

    def forward(self, labels_B, x_BLCv_wo_first_l):
        """Teacher-forced logits (B, L, V) and the class-token features (B, n_cls, C): the last block's
        attention output at the class-token positions (HierAmp's c_n^e, Eq. 6)."""
        cond = self._condition(labels_B)
        tokens = torch.cat((cond.sos, self.word_embed(x_BLCv_wo_first_l) + self.level_pos()[:, cond.sos.shape[1]:]), 1)
        _, is_cls = self.sequence_layout()
        x = tokens.new_zeros(tokens.shape[0], len(is_cls), tokens.shape[2])           # (B, Lc, C)
        x[:, ~is_cls] = tokens
        if self.has_class_tokens:
            x[:, is_cls] = torch.cat([self.cls_tokens[str(s)][0] for s in self.cfg.cls_token_scales]).to(x.dtype)
        mask = self.training_mask(x.device).to(x.dtype)

        def attend(q, k, v, softmax_scale):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=softmax_scale)

        for block, mod in zip(self.blocks[:-1], cond.block_mods):
            x = block(x, mod, attend)
        x, a = self.blocks[-1].output_and_attention(x, cond.block_mods[-1], attend)
        return self.logits(x[:, ~is_cls], cond.head_mod), a[:, is_cls]
