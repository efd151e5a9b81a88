"""Loading official DiT checkpoints as they are, with the configuration read from the keys."""

import torch

from ...errors import UserError
from ..checkpoint import count_indices, load_weights, read_state_dict
from .config import OFFICIAL_HEADS, DiTConfig
from .transformer import DiT

DIT_MARKER = "x_embedder.proj.weight"
VAR_MARKER = "word_embed.weight"


def is_dit_state_dict(sd) -> bool:
    return DIT_MARKER in sd


def _require(sd, key, path):
    if key not in sd:
        if VAR_MARKER in sd:
            raise UserError(f"{path} is a VAR checkpoint, not a DiT one: pass it as a VAR model (with --vae VQVAE_FILE)")
        raise UserError(f"{path}: missing key {key!r}; is this a DiT checkpoint (DiT-XL-2-256x256.pt)?")
    return sd[key]


def infer_dit_config(sd, path="DiT checkpoint", num_heads=None) -> DiTConfig:
    """Depth, hidden size, patch size, input size and learn-sigma from the shapes; heads from the
    official sizes (by hidden size) unless given."""
    proj = _require(sd, DIT_MARKER, path)                                # (D, C, p, p)
    D, C, p = proj.shape[0], proj.shape[1], proj.shape[2]
    N = _require(sd, "pos_embed", path).shape[1]
    out = _require(sd, "final_layer.linear.weight", path).shape[0] // (p * p)
    depth = count_indices(sd, r"^blocks\.(\d+)\.")
    if num_heads is None:
        if D not in OFFICIAL_HEADS:
            raise UserError(f"{path} has hidden size {D}, not an official DiT size "
                            f"({', '.join(map(str, OFFICIAL_HEADS))}): pass the number of heads with --heads")
        num_heads = OFFICIAL_HEADS[D]
    if num_heads < 1 or D % num_heads:
        raise UserError(f"--heads {num_heads} does not divide the hidden size {D} of {path}: pass a divisor of {D}")
    grid = round(N ** 0.5)
    return DiTConfig(
        input_size=grid * p, patch_size=p, in_channels=C, hidden_size=D, depth=depth, num_heads=num_heads,
        mlp_ratio=_require(sd, "blocks.0.mlp.fc1.weight", path).shape[0] / D,
        num_classes=_require(sd, "y_embedder.embedding_table.weight", path).shape[0] - 1,
        learn_sigma=out == 2 * C,
    )


def build_dit(cfg: DiTConfig, sd, path) -> DiT:
    """A DiT of `cfg` holding the weights `sd`; every key and shape must match."""
    with torch.device("meta"):
        dit = DiT(cfg)
    dit.to_empty(device="cpu")
    load_weights(dit, sd, path)
    return dit.eval()


def load_dit(path, device="cpu", num_heads=None, trust_checkpoint=False) -> DiT:
    """An official DiT file (a plain state dict, or a training checkpoint's `ema` weights)."""
    sd = read_state_dict(path, trust_checkpoint)
    return build_dit(infer_dit_config(sd, path, num_heads), sd, path).to(device)
