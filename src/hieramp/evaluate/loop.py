"""Training one student under a protocol and validating it, with checkpoints to resume from."""
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..files import write_atomic
from ..precision import autocast
from .augment import cutmix, normalize, to_unit
from .images import ImageSet
from .protocols import Protocol, mixed_label_loss, soft_label_loss
from .students import build_student

VAL_BATCH = 250
EPOCH_SEED_STRIDE = 1_000_003          # global RNG seed of an epoch: seed * stride + epoch


@dataclass(frozen=True)
class Settings:
    protocol: Protocol
    student: str
    epochs: int
    batch_size: int
    image_size: int
    num_classes: int
    device: str = "cpu"
    precision: str = "fp32"            # fp32 or bf16 (autocast)

    def fingerprint(self, seed: int, num_images: int) -> dict:
        """What a checkpoint must match to be resumed."""
        fields = {k: v for k, v in asdict(self).items() if k != "device"}
        return {**fields, "protocol": self.protocol.name, "seed": seed, "num_images": num_images}


@dataclass(frozen=True)
class StudentResult:
    seed: int
    history: tuple                     # (epoch, top1, top5) per validation, fractions

    @property
    def top1(self) -> float:
        return self.history[-1][1]

    @property
    def top5(self) -> float:
        return self.history[-1][2]

    @property
    def best_top1(self) -> float:
        return max(h[1] for h in self.history)


def memory_format(device: str):
    """channels_last on GPUs (faster convolutions with AMP); CPU kernels keep the default layout."""
    return torch.channels_last if device.startswith("cuda") else torch.contiguous_format


def _to_device(x_B3HW, settings: Settings):
    return x_B3HW.to(settings.device, non_blocking=True).contiguous(memory_format=memory_format(settings.device))


@torch.no_grad()
def validate(model, valset: ImageSet, settings: Settings) -> tuple:
    """(top-1, top-5) of `model` on the validation set, as fractions."""
    model.eval()
    k = min(5, settings.num_classes)
    hits1 = hits5 = 0
    for start in range(0, len(valset), VAL_BATCH):
        idx = torch.arange(start, min(start + VAL_BATCH, len(valset)))
        with autocast(settings.device, settings.precision):
            logits = model(_to_device(normalize(to_unit(valset.batch(idx))), settings)).float()
        top = logits.topk(k, dim=1).indices.cpu()                                  # (B, k)
        hits = top == valset.labels[idx, None]
        hits1 += hits[:, 0].sum().item()
        hits5 += hits.any(dim=1).sum().item()
    model.train()
    return hits1 / len(valset), hits5 / len(valset)


def train_epoch(model, optimizer, trainset: ImageSet, teacher, settings: Settings, bar):
    """One pass over the set in a random order, batch by batch: augment, CutMix, one optimiser step."""
    protocol = settings.protocol
    order = torch.randperm(len(trainset))
    for start in range(0, len(order), settings.batch_size):
        idx = order[start:start + settings.batch_size]
        x, partner, lam = cutmix(protocol.augment(trainset.batch(idx)), protocol.cutmix_alpha)
        x = _to_device(x, settings)
        with autocast(settings.device, settings.precision):
            logits = model(x).float()
            if protocol.soft_labels:
                with torch.no_grad():
                    targets = teacher(x).float()
                loss = soft_label_loss(logits, targets, protocol.temperature)
            else:
                labels = trainset.labels[idx].to(settings.device)
                loss = mixed_label_loss(logits, labels, partner.to(settings.device), lam)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if bar is not None:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            bar.update(len(idx))


def _save(path: Path, state: dict):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def _resume(path: Path, fingerprint: dict, model, optimizer) -> tuple[int, list]:
    if not path.is_file():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise UserError(f"{path} is the checkpoint of a different evaluation (protocol, student, epochs, set): "
                        f"use another --work directory or delete it")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], [tuple(h) for h in state["history"]]


def train_student(seed: int, settings: Settings, trainset: ImageSet, valset: ImageSet, teacher=None,
                  work: Path | None = None, bar=None) -> StudentResult:
    """One student trained from scratch (the seed decides its initialisation and every random draw),
    validated as the protocol says; with `work`, it resumes from and checkpoints to work/student-SEED.pt."""
    protocol = settings.protocol
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_student(settings.student, settings.num_classes, settings.image_size)
    model = model.to(settings.device, memory_format=memory_format(settings.device)).train()
    optimizer = protocol.make_optimizer(model)
    checkpoint = None if work is None else Path(work) / f"student-{seed}.pt"
    fingerprint = settings.fingerprint(seed, len(trainset))
    first, history = (0, []) if checkpoint is None else _resume(checkpoint, fingerprint, model, optimizer)
    if bar is not None:
        bar.update(first * len(trainset))
    for epoch in range(first, settings.epochs):
        if bar is not None:
            bar.set_description(f"student {seed} epoch {epoch + 1}/{settings.epochs}")
        for group in optimizer.param_groups:
            group["lr"] = protocol.lr * protocol.lr_factor(epoch, settings.epochs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * EPOCH_SEED_STRIDE + epoch)
            train_epoch(model, optimizer, trainset, teacher, settings, bar)
        if protocol.validates_after(epoch + 1, settings.epochs):
            history.append((epoch + 1, *validate(model, valset, settings)))
        if checkpoint is not None:
            _save(checkpoint, {"fingerprint": fingerprint, "epoch": epoch + 1, "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "history": history})
    return StudentResult(seed, tuple(history))
