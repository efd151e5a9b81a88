"""The two evaluation protocols as data: what papers report, settings pinned.

soft: RDED's (the common one for generative distillation at 224 px): a teacher labels every
augmented, CutMixed batch; KL divergence at temperature 20; AdamW with a half-cosine schedule.
hard: Minimax's (ImageWoof, ImageNette, ImageNet-100): cross-entropy on the class labels with
CutMix; SGD with steps at 2/3 and 5/6 of the epochs; colour jitter and lighting noise.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import augment

VALIDATE_EVERY = 10
VALIDATE_FROM = 0.8                    # validate every 10 epochs in the last 20 %, and at the end
MANY_CLASSES = 100


@dataclass(frozen=True)
class Protocol:
    name: str
    soft_labels: bool
    optimizer: str                     # "adamw" or "sgd"
    lr: float
    weight_decay: float
    momentum: float = 0.0              # sgd
    betas: tuple = (0.9, 0.999)        # adamw
    decay_norms_and_biases: bool = True
    temperature: float = 1.0           # soft labels
    patch_shuffle: int = 1             # factor; 1: off
    crop_scale: tuple = (0.5, 1.0)
    color_jitter: float = 0.0
    lighting: float = 0.0
    cutmix_alpha: float = 1.0

    def default_epochs(self, ipc: int, num_classes: int) -> int:
        if self.soft_labels:
            return 300
        epochs = 2000 if ipc <= 10 else 1500 if ipc <= 50 else 1000 if ipc <= 200 else 500
        return epochs * 2 // 3 if num_classes >= MANY_CLASSES else epochs

    def default_batch_size(self, ipc: int, num_classes: int, num_images: int) -> int:
        if self.soft_labels:
            batch = (50 if ipc <= 10 else 100) * (2 if num_classes >= MANY_CLASSES else 1)
        else:
            batch = 64
        return min(batch, num_images)

    def lr_factor(self, epoch: int, epochs: int) -> float:
        """Multiplier of the base lr during `epoch` (0-based)."""
        if self.optimizer == "adamw":
            return 0.5 * (1 + math.cos(math.pi * epoch / (2 * epochs)))
        return 0.2 ** sum(epoch >= m for m in (2 * epochs // 3, 5 * epochs // 6))

    def make_optimizer(self, model) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if self.decay_norms_and_biases or p.ndim > 1]
        rest = [p for p in model.parameters() if not (self.decay_norms_and_biases or p.ndim > 1)]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        if self.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas)
        return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)

    def augment(self, x_B3HW_uint8):
        """uint8 batch -> normalised float batch, before CutMix."""
        x = x_B3HW_uint8
        if self.patch_shuffle > 1:
            x = augment.shuffle_patches(x, self.patch_shuffle)
        x = augment.random_flip(augment.random_resized_crop(x, self.crop_scale))
        x = augment.to_unit(x)
        if self.color_jitter:
            x = augment.color_jitter(x, self.color_jitter)
        if self.lighting:
            x = augment.lighting(x, self.lighting)
        return augment.normalize(x)

    def validates_after(self, epoch: int, epochs: int) -> bool:
        """Whether to validate after `epoch` (1-based count of finished epochs)."""
        return epoch == epochs or (epoch % VALIDATE_EVERY == 0 and epoch > VALIDATE_FROM * epochs)


def soft_label_loss(student_BK, teacher_BK, temperature: float):
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student_BK / temperature, dim=1), F.softmax(teacher_BK / temperature, dim=1),
                    reduction="batchmean")


def mixed_label_loss(student_BK, labels_B, partner_B, lam: float):
    """Cross-entropy against both labels of a CutMixed image, weighted by their areas."""
    return lam * F.cross_entropy(student_BK, labels_B) + (1 - lam) * F.cross_entropy(student_BK, labels_B[partner_B])


PROTOCOLS = {
    "soft": Protocol("soft", soft_labels=True, optimizer="adamw", lr=1e-3, weight_decay=0.01,
                     decay_norms_and_biases=False, temperature=20.0, patch_shuffle=2),
    "hard": Protocol("hard", soft_labels=False, optimizer="sgd", lr=0.01, weight_decay=5e-4, momentum=0.9,
                     color_jitter=0.4, lighting=0.1),
}
