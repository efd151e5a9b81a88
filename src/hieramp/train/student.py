"""The student: a small ConvNet trained on a (distilled) set of digit images, scored on real digits.

The architecture is the usual dataset-distillation ConvNet cut to depth 2 for 16 px: per stage
conv 3x3, instance norm, ReLU, 2x2 average pooling; then a linear classifier. Training shifts
every image by up to SHIFT pixels (background-padded), as evaluation protocols augment.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .data import IMAGE_SIZE, NUM_CLASSES
from .fit import Schedule, fit

WIDTH = 32
SHIFT = 2
STUDENT_SCHEDULE = Schedule(steps=300, batch_size=64, lr=2e-3, weight_decay=5e-4, warmup=0, final_lr_ratio=0.0, clip=0.0,
                            betas=(0.9, 0.999))
BACKGROUND = -1.0                       # black, in [-1, 1]


class Student(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, width: int = WIDTH, size: int = IMAGE_SIZE):
        super().__init__()
        layers, cin = [], 3
        for _ in range(2):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.GroupNorm(width, width, affine=True), nn.ReLU(),
                       nn.AvgPool2d(2)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * (size // 4) ** 2, num_classes)

    def forward(self, x_B3HW):
        return self.classifier(self.features(x_B3HW).flatten(1))              # (B, K)


def random_shift(x_B3HW, generator: torch.Generator, max_shift: int = SHIFT):
    """Each image moved by its own (dy, dx) in [-max_shift, max_shift], uncovered pixels black."""
    B, _, H, W = x_B3HW.shape
    padded = F.pad(x_B3HW, (max_shift,) * 4, value=BACKGROUND)               # (B, 3, H + 2m, W + 2m)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, B, 1), generator=generator)
    rows = (dy + torch.arange(H))[:, None, :, None]                          # (B, 1, H, 1)
    cols = (dx + torch.arange(W))[:, None, None, :]                          # (B, 1, 1, W)
    return padded[torch.arange(B)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]


def train_student(images_N3HW, labels_N, seed: int, schedule: Schedule = STUDENT_SCHEDULE, progress=False) -> Student:
    """A student trained from scratch; the seed decides its initialisation and minibatches."""
    labels_N = torch.as_tensor(labels_N, dtype=torch.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = Student(size=images_N3HW.shape[-1]).train()
    generator = torch.Generator().manual_seed(seed)

    def loss_fn(idx):
        return F.cross_entropy(student(random_shift(images_N3HW[idx], generator)), labels_N[idx])

    fit(loss_fn, student.parameters(), len(labels_N), schedule, generator, "student", progress)
    return student.eval()


@torch.no_grad()
def predict(student: Student, images_N3HW, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([student(images_N3HW[i:i + batch_size]).argmax(1) for i in range(0, len(images_N3HW), batch_size)])


def accuracy(student: Student, images_N3HW, labels_N) -> float:
    return (predict(student, images_N3HW) == torch.as_tensor(labels_N)).float().mean().item()
