"""DiTModel: a DiT, its VAE, and where they came from; the presets `dit-xl-2` and `dit-tiny`."""
import hashlib
from pathlib import Path

import torch
from torch import nn

from ...errors import UserError
from ...files import sha256_of
from ..bundle import ModelSource
from ..checkpoint import read_state_dict
from .checkpoint import build_dit, infer_dit_config
from .config import dit_xl_2, tiny_dit
from .transformer import DiT
from .vae import SD_VAE, TINY_VAE, downsample, load_vae, random_vae

OFFICIAL_DIT_FILE = "DiT-XL-2-256x256.pt"
OFFICIAL_VAE_DIR = "sd-vae-ft-mse"
RANDOM_INIT_SEED = 0
# name -> (DiTConfig, VAE architecture) of the architectures that can be built with random weights
ARCHITECTURES = {"dit-xl-2": (dit_xl_2(), SD_VAE), "dit-tiny": (tiny_dit(), TINY_VAE)}


class DiTModel(nn.Module):
    backbone = "dit"

    def __init__(self, dit: DiT, vae, source: ModelSource):
        super().__init__()
        self.dit, self.vae, self.source = dit, vae, source
        if vae.config.latent_channels != dit.cfg.in_channels:
            raise UserError(f"the VAE has {vae.config.latent_channels} latent channels, the DiT "
                            f"{dit.cfg.in_channels}: pass the VAE the DiT was trained with (sd-vae-ft-mse)")

    @property
    def cfg(self):
        return self.dit.cfg

    @property
    def image_size(self) -> int:
        return self.cfg.input_size * downsample(self.vae)


def load_dit_model(dit_file, vae_dir, device="cpu", trust_checkpoint=False, num_heads=None, sd=None) -> DiTModel:
    """A DiT file and its VAE directory; `sd`: the DiT file's weights when already read."""
    if sd is None:
        sd = read_state_dict(dit_file, trust_checkpoint)
    dit = build_dit(infer_dit_config(sd, dit_file, num_heads), sd, dit_file)
    vae = load_vae(vae_dir)
    vae_id = hashlib.sha256(b"".join(sha256_of(f).encode() for f in sorted(Path(vae_dir).rglob("*")) if f.is_file())).hexdigest()
    source = ModelSource(Path(dit_file).name, sha256_of(dit_file), vae_id, (str(Path(dit_file).resolve()), str(Path(vae_dir).resolve())))
    return DiTModel(dit, vae, source).eval().to(device)


def random_dit_model(name: str, device="cpu") -> DiTModel:
    """An architecture with seeded random weights (every weight non-zero, unlike the official
    init, so that each block shapes the output)."""
    cfg, vae_arch = ARCHITECTURES[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        dit = DiT(cfg)
    tag = hashlib.sha256(f"random-init:{name}:{RANDOM_INIT_SEED}:{cfg}".encode()).hexdigest()
    return DiTModel(dit, random_vae(vae_arch), ModelSource(f"{name} (random init)", tag, tag)).eval().to(device)


def resolve_dit_preset(name: str, checkpoints: Path, vae_dir=None, device="cpu", random_init=False,
                       trust_checkpoint=False, num_heads=None) -> DiTModel:
    """`dit-tiny` (random weights), or `dit-xl-2`: the official files from `checkpoints`, or its
    architecture with random weights."""
    if name == "dit-tiny" or random_init:
        return random_dit_model(name, device)
    dit_file = checkpoints / OFFICIAL_DIT_FILE
    vae_dir = Path(vae_dir) if vae_dir else checkpoints / OFFICIAL_VAE_DIR
    for f in (dit_file, vae_dir):
        if not f.exists():
            raise UserError(f"preset {name} needs {f}: put the official file there (or set HIERAMP_CHECKPOINTS), "
                            f"or pass --random-init to benchmark the architecture without weights")
    return load_dit_model(dit_file, vae_dir, device, trust_checkpoint, num_heads)
