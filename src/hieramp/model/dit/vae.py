"""The Stable Diffusion VAE DiT decodes with (`sd-vae-ft-mse` / `sd-vae-ft-ema`), from a local
diffusers directory. diffusers is an optional dependency (extra `dit`), imported only here."""
import json
from pathlib import Path

import torch

from ...errors import UserError
from .config import LATENT_SCALE

# The architecture of sd-vae-ft-mse / -ema, for --random-init benchmarks.
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, norm_num_groups=32,
              sample_size=256)
# A few-thousand-parameter VAE for tests: 2x downsampling.
TINY_VAE = dict(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=16)


def _autoencoder_kl():
    try:
        from diffusers.models import AutoencoderKL
    except ImportError:
        raise UserError("DiT needs diffusers for its VAE: pip install 'hieramp[dit]'") from None
    return AutoencoderKL


def random_vae(arch: dict):
    """An AutoencoderKL of the given architecture with seeded random weights."""
    levels = len(arch["block_out_channels"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _autoencoder_kl()(down_block_types=("DownEncoderBlock2D",) * levels,
                                 up_block_types=("UpDecoderBlock2D",) * levels, **arch).eval()


def load_vae(directory):
    """AutoencoderKL from a diffusers directory (config.json + weights)."""
    directory = Path(directory)
    config = directory / "config.json"
    try:
        kind = json.loads(config.read_text()).get("_class_name")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        kind = None
    if kind != "AutoencoderKL":
        raise UserError(f"{directory} is not a diffusers VAE directory (config.json of an AutoencoderKL): "
                        f"pass --vae with the sd-vae-ft-mse or sd-vae-ft-ema folder")
    try:
        return _autoencoder_kl().from_pretrained(directory).eval()
    except (OSError, ValueError, RuntimeError) as err:
        raise UserError(f"cannot load the VAE in {directory} ({str(err).splitlines()[0]}): "
                        f"is the folder complete (config.json and its weights)?") from None


def downsample(vae) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


@torch.no_grad()
def decode(vae, latents_BCHW):
    """DiT latents -> images (B, 3, H, W) float32 in [0, 1]."""
    images = vae.decode(latents_BCHW / LATENT_SCALE).sample
    return ((images.float() + 1) / 2).clamp(0, 1)
