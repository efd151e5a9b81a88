"""The scikit-learn digits as RGB images, and the fixed held-out split that no training ever sees.

The 1797 8x8 digits (grey levels 0-16, ink bright on black) are upsampled bilinearly to
IMAGE_SIZE and repeated to three channels in [-1, 1], the VQVAE's input range. The held-out
part is bundled with the weights (data/digits/heldout.npz) so that evaluation needs neither
scikit-learn nor the split code.
"""
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

IMAGE_SIZE = 16
NUM_CLASSES = 10
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 0
GREY_LEVELS = 16                      # load_digits values lie in 0..16
HELDOUT_FILE = "heldout.npz"


@dataclass(frozen=True)
class Digits:
    images: np.ndarray                # (N, 8, 8) uint8 in 0..16
    labels: np.ndarray                # (N,) int64

    def __len__(self):
        return len(self.labels)


def load_digits_split(seed: int = SPLIT_SEED, heldout_fraction: float = HELDOUT_FRACTION):
    """(train, heldout): a stratified split, the same on every run for the same seed."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise UserError("training needs scikit-learn for its digits: pip install scikit-learn") from None
    data = load_digits()
    images = data.images.astype(np.uint8)                                # (1797, 8, 8)
    labels = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    heldout = np.zeros(len(labels), dtype=bool)
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        heldout[members[:round(heldout_fraction * len(members))]] = True
    return Digits(images[~heldout], labels[~heldout]), Digits(images[heldout], labels[heldout])


def to_rgb(images_N88, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(N, 8, 8) grey levels 0..16 -> (N, 3, size, size) float32 in [-1, 1]."""
    grey = torch.as_tensor(np.asarray(images_N88), dtype=torch.float32).unsqueeze(1) / GREY_LEVELS    # (N, 1, 8, 8)
    grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False)
    return (grey * 2 - 1).clamp(-1, 1).expand(-1, 3, -1, -1).contiguous()                          # (N, 3, S, S)


def load_heldout() -> Digits:
    """The bundled held-out digits (no scikit-learn needed)."""
    with resources.files("hieramp").joinpath("data", "digits", HELDOUT_FILE).open("rb") as f:
        npz = np.load(f)
        return Digits(npz["images"], npz["labels"].astype(np.int64))
