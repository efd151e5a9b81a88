"""Model configurations and named presets; derived fields are computed in one place."""
from dataclasses import dataclass, field

VAR_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


@dataclass(frozen=True)
class VQVAEConfig:
    vocab_size: int = 4096
    Cvae: int = 32                      # codebook / latent width (the official z_channels)
    ch: int = 160
    ch_mult: tuple = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    patch_nums: tuple = VAR_PATCH_NUMS
    quant_resi: float = 0.5             # phi(h) = (1 - r) h + r conv(h)
    share_quant_resi: int = 4           # number of phi convolutions shared across the scales

    @property
    def image_size(self) -> int:
        return self.patch_nums[-1] * 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class VARConfig:
    depth: int = 16
    embed_dim: int = 1024
    num_heads: int = 16
    num_classes: int = 1000
    mlp_ratio: float = 4.0
    attn_l2_norm: bool = True
    shared_aln: bool = False
    norm_eps: float = 1e-6
    cls_token_scales: tuple = ()        # scales that carry a learnable class token (HierAmp)
    vae: VQVAEConfig = field(default_factory=VQVAEConfig)

    @property
    def patch_nums(self) -> tuple:
        return self.vae.patch_nums

    @property
    def num_scales(self) -> int:
        return len(self.patch_nums)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def seq_len(self) -> int:
        return sum(pn * pn for pn in self.patch_nums)

    @property
    def scale_offsets(self) -> tuple:
        """P_s: the number of tokens of all scales before scale s."""
        offsets, total = [], 0
        for pn in self.patch_nums:
            offsets.append(total)
            total += pn * pn
        return tuple(offsets)


def official_var(depth: int, cls_token_scales: tuple = ()) -> VARConfig:
    """VAR-d{depth} as the official checkpoints build it: width 64 * depth, one head per 64 dims."""
    return VARConfig(depth=depth, embed_dim=64 * depth, num_heads=depth, cls_token_scales=cls_token_scales)


TINY_VAE = VQVAEConfig(vocab_size=64, Cvae=8, ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_nums=(1, 2, 3, 4))


def tiny_var(cls_token_scales: tuple = (0, 1, 2, 3), **overrides) -> VARConfig:
    """A few-thousand-parameter model for tests and for the demo until a trained default exists."""
    fields = dict(depth=2, embed_dim=32, num_heads=2, num_classes=10, cls_token_scales=cls_token_scales, vae=TINY_VAE)
    fields.update(overrides)
    return VARConfig(**fields)
