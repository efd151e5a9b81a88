"""Scoring a distilled digits set: students trained on it, tested on the held-out real digits.

The set is an ImageFolder-style directory: one folder per class, named by the class index
(0-9), holding PNG files of any size; files at the top level (run.json, mapping.json, grids)
are ignored. Images are resized to the digit size, as RGB in [-1, 1].
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..errors import UserError
from ..runtime.images import read_rgb
from .data import IMAGE_SIZE, NUM_CLASSES, load_heldout, to_rgb
from .student import accuracy, train_student

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class SeedAccuracies:
    """Mean and spread of the `accuracies` of a result, one per student seed."""

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def accuracy_std(self) -> float:
        """Population standard deviation over the seeds (0 for one seed)."""
        return float(np.std(self.accuracies))


@dataclass(frozen=True)
class EvalResult(SeedAccuracies):
    accuracies: tuple               # one per student seed, on the held-out real digits
    num_images: int
    images_per_class: dict          # class index -> count
    heldout_images: int

    def to_json(self) -> dict:
        return {"accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "accuracies": list(self.accuracies), "seeds": len(self.accuracies), "num_images": self.num_images,
                "images_per_class": {str(c): n for c, n in sorted(self.images_per_class.items())},
                "heldout_images": self.heldout_images}

    def __str__(self):
        return (f"accuracy on {self.heldout_images} held-out real digits: {100 * self.accuracy_mean:.2f} "
                f"+- {100 * self.accuracy_std:.2f} % over {len(self.accuracies)} students "
                f"(trained on {self.num_images} images)")


def class_folders(root: Path) -> dict:
    """Class index -> folder, for the folders of `root` named 0 .. NUM_CLASSES-1."""
    folders = {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if not entry.name.isdigit() or int(entry.name) >= NUM_CLASSES:
            raise UserError(f"{entry} is not a digit class folder: name class folders 0-{NUM_CLASSES - 1} "
                            f"(as `hieramp distill` does for the digits model)")
        folders[int(entry.name)] = entry
    return folders


def read_image(path: Path, size: int) -> torch.Tensor:
    """(3, size, size) float32 in [-1, 1]."""
    img = read_rgb(path)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)      # Pillow's bilinear antialiases when shrinking
    pixels = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)        # (3, size, size)
    return pixels / 127.5 - 1


def read_image_folder(root, size: int = IMAGE_SIZE):
    """(images (N, 3, size, size) in [-1, 1], labels (N,) int64) from an ImageFolder-style set."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"distilled set {root} is not a directory: pass the output directory of `hieramp distill`")
    images, labels = [], []
    for label, folder in class_folders(root).items():
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")):
            images.append(read_image(path, size))
            labels.append(label)
    if not images:
        raise UserError(f"no images in {root}: expected class folders 0-{NUM_CLASSES - 1} holding PNG files")
    return torch.stack(images), torch.tensor(labels)


def evaluate_images(images_N3HW, labels_N, seeds: int = 3, progress=False) -> EvalResult:
    """Train one student per seed 0 .. seeds-1 on the images; score each on the held-out digits."""
    if seeds < 1:
        raise UserError(f"the number of students (seeds) must be at least 1, got {seeds}")
    heldout = load_heldout()
    test_images = to_rgb(heldout.images, images_N3HW.shape[-1])
    accs = []
    for seed in tqdm(range(seeds), desc="students", unit="student", disable=not progress):
        accs.append(accuracy(train_student(images_N3HW, labels_N, seed), test_images, heldout.labels))
    counts = torch.bincount(torch.as_tensor(labels_N), minlength=NUM_CLASSES).tolist()
    return EvalResult(tuple(accs), len(labels_N), {c: n for c, n in enumerate(counts) if n}, len(heldout))


def evaluate_distilled(root, seeds: int = 3, progress=False) -> EvalResult:
    images, labels = read_image_folder(root)
    return evaluate_images(images, labels, seeds, progress)
