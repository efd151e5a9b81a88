"""The training images: an ImageFolder tree whose class folders are named by wnid or by class index,
the public train transform, and the order of the samples.

The order depends only on (seed, epoch): a permutation of all images per epoch, cut into global
batches, each split into accumulation micro-batches and those over the ranks, so one rank and N
ranks see the same global batches. Each sample's crop and flip come from (seed, epoch, index), so
they do not depend on the ranks, the worker processes or where a run resumed.
"""
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..classes import IMAGENET_NUM_CLASSES, index_of_wnid
from ..errors import UserError

MID_RESO = 1.125                 # shorter side resized to round(1.125 x image size), then a random crop
WNID = re.compile(r"n\d{8}")


def train_root(data) -> Path:
    """DATA/train when it exists, else DATA itself."""
    root = Path(data)
    if not root.is_dir():
        raise UserError(f"--data {root} is not a directory: pass an ImageFolder root (holding train/) or a train folder")
    return root / "train" if (root / "train").is_dir() else root


def folder_label(folder: Path, num_classes: int) -> int:
    """A wnid folder's ImageNet index, or an index folder's number (00000, or 0 .. K-1)."""
    name = folder.name
    if WNID.fullmatch(name):
        if num_classes != IMAGENET_NUM_CLASSES:
            raise UserError(f"class folder {folder} is named by wnid, but the model has {num_classes} classes, not "
                            f"ImageNet's 1000: name the folders by class index 0-{num_classes - 1}")
        return index_of_wnid(name)                     # a UserError for a wnid outside ImageNet-1k
    if name.isdigit() and int(name) < num_classes:
        return int(name)
    raise UserError(f"class folder {folder} is named neither by an ImageNet wnid nor by a class index 0-{num_classes - 1}: "
                    f"rename it, or move it out of the data folder")


@dataclass(frozen=True)
class ImageList:
    paths: tuple                 # sorted by (folder, file name)
    labels: tuple                # in the model's label space
    root: Path

    def __len__(self):
        return len(self.paths)


def scan_images(data, num_classes: int, classes=None) -> ImageList:
    """Every image of the class folders (of `classes` only, when given)."""
    root = train_root(data)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UserError(f"no class folders in {root}: put one folder per class (named by wnid or class index) there")
    labelled = [(folder_label(f, num_classes), f) for f in folders]
    if classes is not None:
        wanted = set(classes)
        missing = sorted(wanted - {label for label, _ in labelled})
        if missing:
            raise UserError(f"--classes names classes with no folder in {root}: {missing[:10]}"
                            f"{' ...' if len(missing) > 10 else ''}")
        labelled = [(label, f) for label, f in labelled if label in wanted]
    paths, labels = [], []
    for label, folder in labelled:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMG_EXTENSIONS and not path.name.startswith("."):
                paths.append(path)
                labels.append(label)
    if not paths:
        raise UserError(f"no images in the class folders of {root} (looked for {', '.join(IMG_EXTENSIONS[:4])} ...)")
    return ImageList(tuple(paths), tuple(labels), root)


def derived_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded by a tuple of integers (well mixed, so nearby tuples give unrelated streams)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(parts)).generate_state(1)[0]))


class TrainImages(torch.utils.data.Dataset):
    """dataset[(index, epoch)] -> (image (3, S, S) in [-1, 1], label), or None for an unreadable file."""

    def __init__(self, images: ImageList, size: int, seed: int, hflip: bool):
        self.images, self.size, self.seed, self.hflip = images, size, seed, hflip
        self.mid = round(MID_RESO * size)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        index, epoch = key
        try:
            with Image.open(self.images.paths[index]) as img:
                img = img.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        g = derived_generator(self.seed, epoch, index)
        img = TF.resize(img, self.mid, interpolation=InterpolationMode.LANCZOS)      # shorter side to mid
        w, h = img.size
        top = int(torch.randint(h - self.size + 1, (1,), generator=g))
        left = int(torch.randint(w - self.size + 1, (1,), generator=g))
        img = TF.crop(img, top, left, self.size, self.size)
        flip = bool(torch.rand((), generator=g) < 0.5)
        if self.hflip and flip:
            img = TF.hflip(img)
        return TF.to_tensor(img) * 2 - 1, self.images.labels[index]


def collate(samples):
    """Stack the readable samples: (images (b, 3, S, S), labels (b,), which samples were kept (n,) bool,
    unreadable count); images and labels are None when none was readable."""
    kept = torch.tensor([s is not None for s in samples])
    good = [s for s in samples if s is not None]
    if not good:
        return None, None, kept, len(samples)
    images, labels = zip(*good)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), kept, len(samples) - len(good)


@dataclass(frozen=True)
class Plan:
    """How the steps walk through the data."""
    num_images: int
    batch_size: int              # global, per optimiser step
    accum: int
    world_size: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return self.num_images // self.batch_size

    @property
    def local_batch(self) -> int:
        return self.batch_size // (self.accum * self.world_size)

    @functools.lru_cache(maxsize=1)         # `keys` asks for it at every step; an epoch has many
    def epoch_order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_images, generator=derived_generator(self.seed, epoch))

    def keys(self, step: int, rank: int):
        """This rank's (index, epoch) keys of each micro-batch of `step`."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        batch = self.epoch_order(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]
        micro = self.batch_size // self.accum
        for m in range(self.accum):
            part = batch[m * micro:(m + 1) * micro][rank * self.local_batch:(rank + 1) * self.local_batch]
            yield [(int(i), epoch) for i in part]


class StepBatches(torch.utils.data.Sampler):
    """The micro-batch keys of steps start .. stop-1 for one rank, in order."""

    def __init__(self, plan: Plan, rank: int, start: int, stop: int):
        self.plan, self.rank, self.start, self.stop = plan, rank, start, stop

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield from self.plan.keys(step, self.rank)

    def __len__(self):
        return (self.stop - self.start) * self.plan.accum
