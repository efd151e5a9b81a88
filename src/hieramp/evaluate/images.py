"""Images of a set as uint8 (N, 3, S, S), decoded once and kept in memory when they fit (IPC sets
and most validation sets do), else decoded again for every batch; decoding runs on worker threads
(Pillow releases the GIL while it decodes and resizes)."""
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from tqdm import tqdm

from ..runtime.images import read_rgb

VAL_RESIZE_RATIO = 256 / 224         # Resize 256, CenterCrop 224, at any --image-size
MEMORY_SHARE = 0.5                   # cache a set when it takes at most this share of the free memory


def train_view(size: int):
    """Distilled images: resized to size x size (they are square), uint8 (3, S, S)."""
    def view(path):
        img = read_rgb(path)
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        return TF.pil_to_tensor(img)
    return view


def val_view(size: int):
    """Validation images: shorter side resized to size * 256/224, then the centre size x size crop."""
    def view(path):
        img = TF.resize(read_rgb(path), round(size * VAL_RESIZE_RATIO), interpolation=TF.InterpolationMode.BILINEAR)
        return TF.pil_to_tensor(TF.center_crop(img, size))
    return view


def free_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class ImageSet:
    """The images of `paths` with their `labels`, each read by `view(path) -> uint8 (3, S, S)`."""

    def __init__(self, paths, labels, view, size: int, workers: int, desc: str, progress=False):
        self.paths, self.labels = list(paths), torch.as_tensor(labels, dtype=torch.int64)
        self.view = view
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.cached = None
        if len(self.paths) * 3 * size * size <= MEMORY_SHARE * free_memory():
            self.cached = torch.stack(list(tqdm(self._decode(self.paths), total=len(self.paths), desc=desc,
                                                unit="img", disable=not progress, leave=False)))

    def _decode(self, paths):
        return map(self.view, paths) if self.pool is None else self.pool.map(self.view, paths)

    def __len__(self):
        return len(self.paths)

    def batch(self, indices) -> torch.Tensor:
        """uint8 (B, 3, S, S) of the images at `indices`."""
        if self.cached is not None:
            return self.cached[indices]
        return torch.stack(list(self._decode([self.paths[i] for i in indices.tolist()])))
