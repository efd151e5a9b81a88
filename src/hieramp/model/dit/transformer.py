"""DiT with the official module and parameter names (facebookresearch/DiT `models.py`), plus the
HierAmp amplification hook: the attention output of chosen blocks is multiplied per token by a
gain `1 + (beta - 1) M` before the block's gate.

Letters: B batch, C channels, N tokens, D hidden size, H heads, p patch size.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import DiTConfig

FREQ_DIM = 256          # sinusoidal timestep features fed to the timestep MLP


def modulate(x_BND, shift_BD, scale_BD):
    return x_BND * (1 + scale_BD.unsqueeze(1)) + shift_BD.unsqueeze(1)


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """(M,) positions -> (M, dim): sines of dim/2 frequencies, then cosines."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    angles = pos.reshape(-1)[:, None] * omega[None]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """The fixed position embedding (grid*grid, dim): first half encodes the column, second the row."""
    cols, rows = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32))
    emb = np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)
    return torch.from_numpy(emb).float()


class PatchEmbed(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_channels, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x_BCHW):
        return self.proj(x_BCHW).flatten(2).transpose(1, 2)          # (B, N, D), tokens row by row


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_DIM, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    @staticmethod
    def features(t_B, dim: int = FREQ_DIM, max_period: float = 10000.0):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t_B.device) / half)
        angles = t_B[:, None].float() * freqs[None]
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

    def forward(self, t_B):
        return self.mlp(self.features(t_B))


class LabelEmbedder(nn.Module):
    """Class labels 0 .. num_classes-1, and num_classes for the unconditional (guidance) label."""

    def __init__(self, num_classes: int, hidden_size: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, y_B):
        return self.embedding_table(y_B)


class Attention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x_BND, want_mass: bool = False):
        """Attention output (B, N, D); with want_mass, also the head-mean attention mass each token
        receives, summed over the queries: (B, N)."""
        B, N, D = x_BND.shape
        H = self.num_heads
        q, k, v = self.qkv(x_BND).reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)   # each (B, H, N, D/H)
        out = F.scaled_dot_product_attention(q, k, v)
        mass = None
        if want_mass:   # the weights again, beside the fused kernel, so the output does not depend on want_mass
            weights = torch.softmax((q @ k.transpose(-1, -2)) * (D // H) ** -0.5, dim=-1)  # (B, H, N, N)
            mass = weights.sum(dim=2).mean(dim=1)
        return self.proj(out.transpose(1, 2).reshape(B, N, D)), mass


class Mlp(nn.Module):
    def __init__(self, hidden_size: int, mlp_ratio: float):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, int(hidden_size * mlp_ratio))
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(int(hidden_size * mlp_ratio), hidden_size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """adaLN-Zero block. `gain_BN1` (optional) scales the attention output per token before the gate."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        D = cfg.hidden_size
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(D, cfg.num_heads)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(D, cfg.mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x_BND, c_BD, gain_BN1=None, want_mass: bool = False):
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c_BD).chunk(6, dim=1)
        attn, mass = self.attn(modulate(self.norm1(x_BND), shift_a, scale_a), want_mass)
        if gain_BN1 is not None:
            attn = attn * gain_BN1
        x_BND = x_BND + gate_a.unsqueeze(1) * attn
        x_BND = x_BND + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm2(x_BND), shift_m, scale_m))
        return x_BND, mass


class FinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        D = cfg.hidden_size
        self.norm_final = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(D, cfg.patch_size ** 2 * cfg.out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))

    def forward(self, x_BND, c_BD):
        shift, scale = self.adaLN_modulation(c_BD).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x_BND), shift, scale))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        self.x_embedder = PatchEmbed(cfg)
        self.t_embedder = TimestepEmbedder(cfg.hidden_size)
        self.y_embedder = LabelEmbedder(cfg.num_classes, cfg.hidden_size)
        # Fixed, but a parameter as in the official model so that `pos_embed` is in the state dict.
        self.pos_embed = nn.Parameter(sincos_2d(cfg.hidden_size, cfg.grid).unsqueeze(0), requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final_layer = FinalLayer(cfg)

    def unpatchify(self, x_BNP):
        """(B, N, p*p*C) -> (B, C, h*p, w*p)."""
        cfg = self.cfg
        B, g, p, C = x_BNP.shape[0], cfg.grid, cfg.patch_size, cfg.out_channels
        x = x_BNP.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, g * p, g * p)

    def forward(self, x, t, y, gains=None, mass_blocks=()):
        """The official forward: noise prediction (and sigma channels) (B, out_channels, H, W).

        gains: {block index: (B, N, 1) gain} for amplified blocks. mass_blocks: blocks whose
        received attention mass is returned as well, averaged: then returns (out, mass (B, N))."""
        gains = gains or {}
        h = self.x_embedder(x) + self.pos_embed                         # (B, N, D)
        c = self.t_embedder(t) + self.y_embedder(y)                      # (B, D)
        masses = []
        for i, block in enumerate(self.blocks):
            h, mass = block(h, c, gains.get(i), want_mass=i in mass_blocks)
            if mass is not None:
                masses.append(mass)
        out = self.unpatchify(self.final_layer(h, c))
        if not mass_blocks:
            return out
        return out, torch.stack(masses).mean(dim=0)
