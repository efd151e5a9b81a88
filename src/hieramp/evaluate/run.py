"""`hieramp evaluate --val`: students trained on a distilled set under a protocol, scored on a real
validation set; the result, its JSON and its plot of validation accuracy over epochs."""
import io
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from ..errors import UserError
from ..train.evaluate import SeedAccuracies
from .folders import class_folders, image_files, match_classes
from .images import ImageSet, train_view, val_view
from .loop import Settings, memory_format, train_student
from .protocols import PROTOCOLS
from .teacher import load_teacher


@dataclass(frozen=True)
class ValResult(SeedAccuracies):
    students: tuple                    # StudentResult per seed
    protocol: str
    student: str
    teacher: str | None
    epochs: int
    batch_size: int
    image_size: int
    classes: tuple                     # wnid or index per label
    num_images: int
    val_images: int

    @property
    def accuracies(self) -> list:
        return [s.top1 for s in self.students]

    @property
    def top5_mean(self) -> float:
        return float(np.mean([s.top5 for s in self.students]))

    def to_json(self) -> dict:
        return {"accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std, "accuracies": self.accuracies,
                "top5_mean": self.top5_mean, "top5": [s.top5 for s in self.students],
                "best_accuracies": [s.best_top1 for s in self.students], "seeds": len(self.students),
                "protocol": self.protocol, "student": self.student, "teacher": self.teacher, "epochs": self.epochs,
                "batch_size": self.batch_size, "image_size": self.image_size, "classes": list(self.classes),
                "num_images": self.num_images, "val_images": self.val_images,
                "history": [[list(h) for h in s.history] for s in self.students]}

    def __str__(self):
        return (f"top-1 {100 * self.accuracy_mean:.2f} +- {100 * self.accuracy_std:.2f} % over "
                f"{len(self.students)} {self.student} students, top-5 {100 * self.top5_mean:.2f} % "
                f"({self.protocol} protocol, {self.epochs} epochs; trained on {self.num_images} images of "
                f"{len(self.classes)} classes, tested on {self.val_images})")


def accuracy_plot(result: ValResult) -> bytes:
    """PNG bytes: validation top-1 over epochs, one line per student."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for s in result.students:
        epochs, top1, _ = zip(*s.history)
        ax.plot(epochs, [100 * a for a in top1], marker="o", ms=3, label=f"seed {s.seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(f"{result.student}, {result.protocol} labels, {len(result.classes)} classes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


@dataclass(frozen=True)
class Evaluation:
    """Everything checked and read: what `run` trains and scores."""
    settings: Settings
    trainset: ImageSet
    valset: ImageSet
    teacher: torch.nn.Module | None
    teacher_file: str | None
    classes: tuple
    repeat: int

    def run(self, work=None, progress=False) -> ValResult:
        """Train `repeat` students (seeds 0..repeat-1), score each on the validation set; with `work`
        (an existing directory) each resumes from and checkpoints to its file there."""
        s = self.settings
        results = []
        with tqdm(total=self.repeat * s.epochs * len(self.trainset), unit="img", disable=not progress,
                  dynamic_ncols=True) as bar:
            for seed in range(self.repeat):
                results.append(train_student(seed, s, self.trainset, self.valset, self.teacher, work, bar))
        return ValResult(tuple(results), s.protocol.name, s.student, self.teacher_file, s.epochs, s.batch_size,
                         s.image_size, self.classes, len(self.trainset), len(self.valset))


def prepare_evaluation(distilled, val, protocol: str = "soft", student: str = "resnet18", teacher=None,
                       epochs: int | None = None, batch_size: int | None = None, image_size: int = 224,
                       repeat: int = 1, precision: str = "fp32", workers: int = 1, device: str = "cpu",
                       progress=False) -> Evaluation:
    """Check the sets and the teacher, match the classes, read the images; writes nothing."""
    spec = PROTOCOLS[protocol]
    if spec.soft_labels and teacher is None:
        raise UserError("the soft protocol needs a teacher: pass --teacher FILE (a ResNet-18 state dict)")
    if not spec.soft_labels and teacher is not None:
        raise UserError("--teacher only applies to --protocol soft: drop it for the hard protocol")
    classes = match_classes(class_folders(distilled, "distilled set"), class_folders(val, "validation set"))
    teacher_net = None if teacher is None else load_teacher(teacher, classes)
    train_paths, train_labels = image_files(classes.train)
    val_paths, val_labels = image_files(classes.val)
    ipc = round(len(train_paths) / len(classes))
    epochs = epochs or spec.default_epochs(ipc, len(classes))
    batch_size = min(batch_size or spec.default_batch_size(ipc, len(classes), len(train_paths)), len(train_paths))
    trainset = ImageSet(train_paths, train_labels, train_view(image_size), image_size, workers, "reading distilled", progress)
    valset = ImageSet(val_paths, val_labels, val_view(image_size), image_size, workers, "reading validation", progress)
    if teacher_net is not None:
        teacher_net = teacher_net.to(device, memory_format=memory_format(device))
    settings = Settings(spec, student, epochs, batch_size, image_size, len(classes), device, precision)
    return Evaluation(settings, trainset, valset, teacher_net, None if teacher is None else str(teacher),
                      classes.names, repeat)
