"""DiTConfig: the shape of a DiT, as the official models define it, and the named sizes."""
from dataclasses import dataclass

# Heads of the official sizes, keyed by hidden size: S 384 -> 6, B 768 -> 12, L 1024 -> 16, XL 1152 -> 16.
OFFICIAL_HEADS = {384: 6, 768: 12, 1024: 16, 1152: 16}
LATENT_SCALE = 0.18215      # SD VAE latents are multiplied by this before DiT sees them


@dataclass(frozen=True)
class DiTConfig:
    input_size: int = 32        # latent side (256 px images / 8)
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 1000     # the label table has one more row: the unconditional label
    learn_sigma: bool = True

    @property
    def grid(self) -> int:
        """Tokens per side."""
        return self.input_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def dit_xl_2(input_size: int = 32) -> DiTConfig:
    return DiTConfig(input_size=input_size, patch_size=2, hidden_size=1152, depth=28, num_heads=16)


def tiny_dit() -> DiTConfig:
    """A few-thousand-parameter DiT for tests: 8x8 latents, 16 tokens, 10 classes."""
    return DiTConfig(input_size=8, patch_size=2, hidden_size=32, depth=3, num_heads=2, num_classes=10)
