"""The optimisation loop of the digits trainers: AdamW, linear warm-up, cosine decay, gradient
clipping (the shared Stepper), seeded minibatches and a tqdm bar."""
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .stepper import Stepper

TRAIN_THREADS = 2


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    warmup: int = 0
    final_lr_ratio: float = 0.1        # the cosine decays to lr * final_lr_ratio
    clip: float = 2.0                  # max gradient norm (0: no clipping)
    betas: tuple = (0.9, 0.95)

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.final_lr_ratio + (1 - self.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@contextmanager
def reproducible(seed: int):
    """Seeded global RNG and a fixed thread count (CPU kernels then repeat bit for bit); the previous
    settings come back on exit. torch.use_deterministic_algorithms is not needed on CPU and makes
    the convolution backward about 3x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def minibatches(n: int, batch_size: int, generator: torch.Generator):
    """Endless index batches: a fresh permutation of range(n) per epoch, drawn from `generator`."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield order[start:start + batch_size]


def fit(loss_fn, params, n: int, schedule: Schedule, generator: torch.Generator, desc: str, progress=True):
    """Minimise `loss_fn(batch_indices) -> scalar loss` over `schedule.steps` steps; returns the losses."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=schedule.lr, betas=schedule.betas, weight_decay=schedule.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule.lr_factor)
    stepper = Stepper(opt, schedule.clip)
    losses = []
    bar = tqdm(total=schedule.steps, desc=desc, unit="step", disable=not progress, leave=False)
    for _, idx in zip(range(schedule.steps), minibatches(n, schedule.batch_size, generator)):
        loss = loss_fn(idx)
        stepper.backward(loss)
        stepper.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        bar.update()
    bar.close()
    return losses
