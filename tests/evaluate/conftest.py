"""Small image sets that the tests write: classes differ by colour and shape."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

COLOURS = [(220, 40, 40), (40, 180, 60), (50, 80, 220), (230, 200, 40), (160, 60, 200), (40, 200, 210)]
SHAPES = ["rectangle", "ellipse", "triangle"]


def class_image(label: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A noisy grey background with one shape of the class's colour and kind at a random place."""
    background = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(background)
    draw = ImageDraw.Draw(img)
    extent = rng.integers(size // 3, size * 2 // 3 + 1)
    x0, y0 = rng.integers(0, size - extent + 1, 2)
    box = [int(x0), int(y0), int(x0 + extent), int(y0 + extent)]
    colour = COLOURS[label % len(COLOURS)]
    shape = SHAPES[label % len(SHAPES)]
    if shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "ellipse":
        draw.ellipse(box, fill=colour)
    else:
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour)
    return img


def write_set(root, names, per_class: int, size: int = 32, seed: int = 0, suffix: str = ".png"):
    """Class folders `names` (label i for names[i]) of `per_class` images each."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(names):
        folder = root / str(name)
        folder.mkdir(parents=True)
        for i in range(per_class):
            class_image(label, size, rng).save(folder / f"{i:03d}{suffix}")
    return root


@pytest.fixture
def make_set():
    """write_set(root, names, per_class, size=32, seed=0, suffix=".png") -> root"""
    return write_set


@pytest.fixture
def image_sets(tmp_path):
    """(distilled, val): 4 classes in index folders 0-3, 10 and 15 images per class at 32 px."""
    names = [str(i) for i in range(4)]
    return (write_set(tmp_path / "distilled", names, 10, seed=1), write_set(tmp_path / "val", names, 15, seed=2))
