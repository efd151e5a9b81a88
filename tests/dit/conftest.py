import pytest
import torch

from hieramp.model.dit.presets import random_dit_model


@pytest.fixture(scope="session")
def tiny_dit_model():
    return random_dit_model("dit-tiny")


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory, tiny_dit_model):
    """The tiny model as official file forms: a plain DiT state dict and a diffusers VAE directory."""
    root = tmp_path_factory.mktemp("dit-files")
    torch.save(tiny_dit_model.dit.state_dict(), root / "dit-tiny.pt")
    tiny_dit_model.vae.save_pretrained(root / "vae")
    return root / "dit-tiny.pt", root / "vae"
