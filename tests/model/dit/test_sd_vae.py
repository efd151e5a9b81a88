import pytest
import torch

from hieramp.errors import UserError
from hieramp.model.dit.vae import decode, load_vae


def test_vae_directory_round_trip_and_latent_scale(tiny_dit_files, tiny_dit_model):
    _, vae_dir = tiny_dit_files
    vae = load_vae(vae_dir)
    z = torch.randn(2, 4, 8, 8)
    images = decode(vae, z)
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    with torch.no_grad():
        expected = ((tiny_dit_model.vae.decode(z / 0.18215).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(images, expected)


def test_a_directory_that_is_not_a_vae(tmp_path, tiny_dit_files):
    dit_file, _ = tiny_dit_files
    with pytest.raises(UserError, match="is not a diffusers VAE directory"):
        load_vae(tmp_path)
    with pytest.raises(UserError, match="is not a diffusers VAE directory"):
        load_vae(dit_file)
