import numpy as np
import pytest
import torch
from PIL import Image

from hieramp.model.presets import random_model

COLOURS = [(230, 30, 30), (30, 230, 30), (30, 30, 230)]      # one colour per class: easy to tell apart
PER_CLASS = 8
SIDE = 10                                                      # resized to 9 (1.125 x 8), then cropped to 8


def write_image_folder(root, per_class=PER_CLASS, names=("0", "1", "2"), seed=0):
    """Class folders of small PNGs: each class a noisy patch of its own colour."""
    rng = np.random.default_rng(seed)
    for name, colour in zip(names, COLOURS):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour)[None, None] + rng.integers(-40, 40, (SIDE, SIDE + 2 * (i % 2), 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    """The tiny-plain preset as official files: a VAR state dict and a VQVAE state dict."""
    root = tmp_path_factory.mktemp("tiny")
    model = random_model("tiny-plain")
    torch.save(model.var.state_dict(), root / "var_tiny.pth")
    torch.save(model.vae.state_dict(), root / "vae_tiny.pth")
    return root / "var_tiny.pth", root / "vae_tiny.pth"


@pytest.fixture
def make_image_folder():
    return write_image_folder


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """An ImageFolder root with train/ of three classes (folders 0, 1, 2)."""
    root = tmp_path_factory.mktemp("data")
    write_image_folder(root / "train")
    return root
