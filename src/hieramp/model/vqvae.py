"""The multi-scale VQVAE of VAR: a taming-style encoder/decoder and a residual quantizer over scales.

Letters: B batch, C channels, Cv latent width (Cvae), V vocabulary, S scales, pn the side of one
scale's token map, P = patch_nums[-1] the side of the latent, N = B * pn * pn.
State-dict keys equal the official file's (tests/reference/vae_ch160v4096z32.keys.tsv) and the
numerics follow VAR's, so the official weights give the official outputs.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .config import VQVAEConfig

COMMITMENT_BETA = 0.25


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


def conv3x3(cin: int, cout: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=padding)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = conv3x3(cin, cout)
        self.norm2 = group_norm(cout)
        self.conv2 = conv3x3(cout, cout)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))  # (B, Cout, H, W)
        h = self.conv2(F.silu(self.norm2(h)))  # (B, Cout, H, W)
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H * W positions, logits scaled by C ** -0.5."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)  # 3 x (B, C, HW)
        w = torch.softmax(q.transpose(1, 2) @ k * C ** -0.5, dim=2)  # (B, HW query, HW key)
        h = (v @ w.transpose(1, 2)).reshape(B, C, H, W)  # (B, C, H, W)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # pad right and bottom only: (B, C, H/2, W/2)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))  # (B, C, 2H, 2W)


class Level(nn.Module):
    """The resnet blocks of one resolution, each followed by its attention block where there is one."""

    def __init__(self, cin: int, cout: int, num_blocks: int, with_attn: bool):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(cin if j == 0 else cout, cout) for j in range(num_blocks))
        self.attn = nn.ModuleList(AttnBlock(cout) for _ in range(num_blocks if with_attn else 0))

    def forward(self, h):
        for j, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[j](h)
        return h


class Mid(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, h):
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        last = len(chans) - 1
        self.conv_in = conv3x3(3, cfg.ch)
        self.down = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip([cfg.ch] + chans[:-1], chans)):
            level = Level(cin, cout, cfg.num_res_blocks, with_attn=i == last)
            if i != last:
                level.downsample = Downsample(cout)
            self.down.append(level)
        self.mid = Mid(chans[-1])
        self.norm_out = group_norm(chans[-1])
        self.conv_out = conv3x3(chans[-1], cfg.Cvae)

    def forward(self, img):
        h = self.conv_in(img)  # (B, ch, H, W)
        for i, level in enumerate(self.down):
            h = level(h)
            if i != len(self.down) - 1:
                h = level.downsample(h)
        h = self.mid(h)  # (B, C, P, P)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, Cv, P, P)


class Decoder(nn.Module):
    """Mirror of the encoder; `up.<i>` works at the resolution of `down.<i>` and runs last to first."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        last = len(chans) - 1
        self.conv_in = conv3x3(cfg.Cvae, chans[-1])
        self.mid = Mid(chans[-1])
        up = []
        for i in reversed(range(len(chans))):
            cin = chans[min(i + 1, last)]
            level = Level(cin, chans[i], cfg.num_res_blocks + 1, with_attn=i == last)
            if i != 0:
                level.upsample = Upsample(chans[i])
            up.insert(0, level)
        self.up = nn.ModuleList(up)
        self.norm_out = group_norm(chans[0])
        self.conv_out = conv3x3(chans[0], 3)

    def forward(self, z):
        h = self.mid(self.conv_in(z))  # (B, C, P, P)
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
            if i != 0:
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, 3, H, W)


class Phi(nn.Conv2d):
    """phi(h) = (1 - r) h + r conv3x3(h), the residual convolution applied to each scale's map."""

    def __init__(self, Cvae: int, ratio: float):
        super().__init__(Cvae, Cvae, 3, padding=1)
        self.ratio = abs(ratio)

    def forward(self, h_BChw):
        return h_BChw * (1 - self.ratio) + super().forward(h_BChw) * self.ratio


def phi_indices(num_scales: int, K: int) -> tuple:
    """For each scale si, the phi conv whose tick is nearest to si / (S - 1), computed as VAR does.

    VAR's ticks are linspace(1/3/K, 1 - 1/3/K, K) for K = 4 and linspace(1/2/K, 1 - 1/2/K, K)
    otherwise. Some scales lie exactly halfway between two ticks (S = 10, K = 4: scales 2 and 7),
    so the float64 rounding of numpy's linspace decides; it is reproduced here, not re-derived.
    """
    margin = 1 / 3 / K if K == 4 else 1 / 2 / K
    ticks = np.linspace(margin, 1 - margin, K)
    return tuple(int(np.argmin(np.abs(ticks - si / (num_scales - 1)))) for si in range(num_scales))


class VectorQuantizer(nn.Module):
    """Codebook, partially shared phi convs and the per-scale helpers of the residual quantization."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        if cfg.share_quant_resi < 2 or abs(cfg.quant_resi) <= 1e-6:
            raise UserError(f"VQVAE with share_quant_resi={cfg.share_quant_resi}, quant_resi={cfg.quant_resi} "
                            f"is not supported; only partially shared phi (>= 2 convs, ratio != 0) as in the official VQVAE")
        self.patch_nums = tuple(cfg.patch_nums)
        self.Cvae = cfg.Cvae
        self.register_buffer("ema_vocab_hit_SV", torch.zeros(len(self.patch_nums), cfg.vocab_size))  # (S, V)
        self.quant_resi = nn.Module()
        self.quant_resi.qresi_ls = nn.ModuleList(Phi(cfg.Cvae, cfg.quant_resi) for _ in range(cfg.share_quant_resi))
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.Cvae)
        self.phi_index = phi_indices(len(self.patch_nums), cfg.share_quant_resi)

    def phi(self, si: int) -> nn.Module:
        return self.quant_resi.qresi_ls[self.phi_index[si]]

    def embed(self, si: int, idx_Bl):
        pn = self.patch_nums[si]
        return self.embedding(idx_Bl).transpose(1, 2).reshape(-1, self.Cvae, pn, pn)  # (B, Cv, pn, pn)

    def scale_residual(self, si: int, h_BChw):
        """A scale's contribution to f_hat: bicubic upsample to (P, P) unless last, then phi."""
        if si != len(self.patch_nums) - 1:
            P = self.patch_nums[-1]
            h_BChw = F.interpolate(h_BChw, size=(P, P), mode="bicubic")  # (B, Cv, P, P)
        return self.phi(si)(h_BChw)  # (B, Cv, P, P)

    def nearest(self, z_BChw):
        """Ids of the nearest codes in L2, as VAR computes the distances: (B, h * w) int64."""
        B, C = z_BChw.shape[:2]
        z_NC = z_BChw.permute(0, 2, 3, 1).reshape(-1, C)  # (N, Cv)
        E_VC = self.embedding.weight.detach()  # (V, Cv)
        sq_NV = z_NC.square().sum(1, keepdim=True) + E_VC.square().sum(1)  # (N, V)
        dist_NV = torch.addmm(sq_NV, z_NC, E_VC.T, beta=1, alpha=-2)  # (N, V)
        return dist_NV.argmin(1).reshape(B, -1)  # (B, h * w)

    def downsample(self, si: int, f_BChw):
        """Area-downsample to scale si; the last scale is the latent itself."""
        if si == len(self.patch_nums) - 1:
            return f_BChw
        pn = self.patch_nums[si]
        return F.interpolate(f_BChw, size=(pn, pn), mode="area")  # (B, Cv, pn, pn)


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_nums = tuple(cfg.patch_nums)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(cfg)
        self.quant_conv = conv3x3(cfg.Cvae, cfg.Cvae)
        self.post_quant_conv = conv3x3(cfg.Cvae, cfg.Cvae)

    def vq_update(self, si: int, idx_Bl, f_hat):
        """Add scale si's ids (B, pn * pn) to f_hat (B, Cv, P, P); next scale's input (B, pn' * pn', Cv) or None."""
        f_hat = f_hat + self.quantize.scale_residual(si, self.quantize.embed(si, idx_Bl))  # (B, Cv, P, P)
        if si == len(self.patch_nums) - 1:
            return f_hat, None
        return f_hat, self.quantize.downsample(si + 1, f_hat).flatten(2).transpose(1, 2)  # (B, pn' * pn', Cv)

    def fhat_to_img(self, f_hat):
        return self.decoder(self.post_quant_conv(f_hat)).clamp(-1, 1)  # (B, 3, H, W)

    @torch.no_grad()
    def img_to_idx(self, img_B3HW) -> list:
        """Multi-scale residual quantization of images in [-1, 1]: per scale (B, pn * pn) int64."""
        return self.latent_to_idx(self.encode(img_B3HW))

    @torch.no_grad()
    def encode(self, img_B3HW):
        """The latent that the scales quantize: (B, Cv, P, P)."""
        return self.quant_conv(self.encoder(img_B3HW))

    @torch.no_grad()
    def latent_to_idx(self, rest) -> list:
        """Residual quantization of a latent (B, Cv, P, P) over the scales: per scale (B, pn * pn) int64."""
        idx_list = []
        for si in range(len(self.patch_nums)):
            idx_Bl = self.quantize.nearest(self.quantize.downsample(si, rest))  # (B, pn * pn)
            rest = rest - self.quantize.scale_residual(si, self.quantize.embed(si, idx_Bl))  # (B, Cv, P, P)
            idx_list.append(idx_Bl)
        return idx_list

    def idx_to_var_input(self, idx_list):
        """Teacher-forcing input of VAR: the inputs of scales 1 .. S-1, (B, L - 1, Cv)."""
        P = self.patch_nums[-1]
        f_hat = self.quantize.embedding.weight.new_zeros(idx_list[0].shape[0], self.cfg.Cvae, P, P)  # (B, Cv, P, P)
        inputs = []
        for si in range(len(self.patch_nums) - 1):
            f_hat, next_BlCv = self.vq_update(si, idx_list[si], f_hat)
            inputs.append(next_BlCv)
        return torch.cat(inputs, dim=1)  # (B, L - 1, Cv)

    def forward(self, img_B3HW):
        """Training pass: (reconstruction (B, 3, H, W), VQ loss), straight-through to the encoder."""
        f = self.quant_conv(self.encoder(img_B3HW))  # (B, Cv, P, P)
        rest, f_hat, vq_loss = f.detach(), torch.zeros_like(f), 0.0
        for si in range(len(self.patch_nums)):
            idx_Bl = self.quantize.nearest(self.quantize.downsample(si, rest))  # (B, pn * pn)
            h = self.quantize.scale_residual(si, self.quantize.embed(si, idx_Bl))  # (B, Cv, P, P)
            f_hat = f_hat + h
            rest = rest - h.detach()
            vq_loss = vq_loss + F.mse_loss(f_hat, f.detach()) + COMMITMENT_BETA * F.mse_loss(f_hat.detach(), f)
        f_st = f + (f_hat - f).detach()  # value of f_hat, gradient of f
        return self.decoder(self.post_quant_conv(f_st)), vq_loss / len(self.patch_nums)
