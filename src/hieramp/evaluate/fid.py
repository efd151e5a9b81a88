"""FID with pytorch-fid's network and Frechet distance, on weights read from a local file.

The network is the TensorFlow-ported Inception-v3 of FID (`pt_inception-2015-12-05-6726825d.pth`,
the file pytorch-fid downloads); here it is never downloaded. Features are the 2048 pool3
activations (or an earlier block's, `dims`), of images resized to 299 px as pytorch-fid does.
A side is a folder of images (searched recursively) or a saved `.npz` of statistics (mu, sigma).
"""
import io
import pickle
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from tqdm import tqdm

from ..errors import UserError
from ..runtime.images import read_rgb
from .folders import images_under

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_SOURCE = (f"get {WEIGHTS_NAME} from the pytorch-fid GitHub releases (tag fid_weights) and pass its path "
                  f"with --inception-weights")
INPUT_SIZE = 299
DIMS = (64, 192, 768, 2048)


@dataclass(frozen=True)
class Statistics:
    mu: np.ndarray                     # (D,)
    sigma: np.ndarray                  # (D, D)
    images: int | None                 # None for a saved file that does not say

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        extra = {} if self.images is None else {"images": np.int64(self.images)}
        np.savez(buf, mu=self.mu, sigma=self.sigma, **extra)
        return buf.getvalue()


@contextmanager
def _local_weights(state: dict):
    """pytorch-fid fetches its weights with load_state_dict_from_url; hand it the local ones instead."""
    from pytorch_fid import inception
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: state):
        yield


def inception_network(weights, dims: int = 2048, device: str = "cpu"):
    """pytorch-fid's InceptionV3 returning the `dims` features, weights from the local file."""
    from pytorch_fid.inception import InceptionV3
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"Inception weights {path} not found: {WEIGHTS_SOURCE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise UserError(f"cannot read Inception weights {path} ({str(err).splitlines()[0]}): {WEIGHTS_SOURCE}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not an Inception state dict: {WEIGHTS_SOURCE}")
    try:
        with _local_weights(state):
            network = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
    except RuntimeError as err:
        raise UserError(f"{path} is not the FID Inception network's weights "
                        f"({' '.join(str(err).split())[:200]}): {WEIGHTS_SOURCE}") from None
    return network.eval().to(device)


def image_paths(folder) -> list:
    folder = Path(folder)
    paths = images_under(folder)
    if len(paths) < 2:
        raise UserError(f"{folder} holds {len(paths)} images: FID needs at least 2 per side (more than the "
                        f"feature size for a meaningful value)")
    return paths


def _pixels(path) -> torch.Tensor:
    """(3, 299, 299) in [0, 1]: pytorch-fid's input, resized bilinearly as its network does."""
    x = TF.to_tensor(read_rgb(path)).unsqueeze(0)                                        # (1, 3, H, W)
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)[0]


@torch.no_grad()
def folder_statistics(folder, network, batch_size: int = 50, device: str = "cpu", progress=False) -> Statistics:
    paths = image_paths(folder)
    features = []
    for start in tqdm(range(0, len(paths), batch_size), desc=f"features {Path(folder).name}", unit="batch",
                      disable=not progress, leave=False):
        x = torch.stack([_pixels(p) for p in paths[start:start + batch_size]]).to(device)    # (B, 3, 299, 299)
        out = network(x)[0]                                                                # (B, D, h, w)
        features.append(F.adaptive_avg_pool2d(out, 1).flatten(1).double().cpu())
    feats = torch.cat(features).numpy()                                                    # (N, D)
    return Statistics(feats.mean(axis=0), np.cov(feats, rowvar=False), len(paths))


def load_statistics(path) -> Statistics:
    try:
        with np.load(path) as f:
            mu, sigma = f["mu"], f["sigma"]
            images = int(f["images"]) if "images" in f.files else None
    except (KeyError, ValueError, OSError) as err:
        raise UserError(f"{path} is not a statistics file with 'mu' and 'sigma' ({err}); make one with "
                        f"`hieramp fid ... --save-stats`") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit: expected (D,) and (D, D)")
    return Statistics(mu, sigma, images)


def frechet_distance(a: Statistics, b: Statistics) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance
    if a.mu.shape != b.mu.shape:
        raise UserError(f"the two sides have features of different sizes ({len(a.mu)} and {len(b.mu)}): "
                        f"compute both with the same --dims")
    try:
        return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))
    except ValueError as err:
        raise UserError(f"the Frechet distance is not defined here ({err}): use more images per side") from None
