"""Generate the same seeds under every schedule and reduce the tokens to per-scale statistics.

Letters: C classes analysed, S scales, V codebook size.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..model.amp_config import AmpConfig, stages
from ..model.sampling import SamplingParams
from ..runtime.images import write_grid
from .metrics import coverage, entropy_bits, rise_shares, token_histogram
from .schedules import with_baseline

STAGE_NAMES = ("coarse", "mid", "fine")
METRICS = ("entropy", "coverage")


@dataclass
class Analysis:
    schedules: list                 # Schedule, the `none` baseline first
    classes: list                   # class indices: the rows of every (C, S) array
    ipc: int
    patch_nums: tuple
    vocab_size: int
    plans: dict                     # schedule name -> resolved AmpPlan (None for `none`)
    settings: dict                  # what produced the run (model, backend, seed, sampling)
    entropy: dict = field(init=False)       # schedule name -> (C, S) float64, bits
    coverage: dict = field(init=False)      # schedule name -> (C, S) float64 in [0, 1]

    def __post_init__(self):
        shape = (len(self.classes), len(self.patch_nums))
        self.entropy = {s.name: np.zeros(shape) for s in self.schedules}
        self.coverage = {s.name: np.zeros(shape) for s in self.schedules}

    @property
    def stages(self) -> dict:
        """Stage name -> its scales (one scale each for S = 4, all of 1 .. S-1 split in three)."""
        return dict(zip(STAGE_NAMES, stages(len(self.patch_nums))))

    def values(self, metric: str) -> dict:
        return {"entropy": self.entropy, "coverage": self.coverage}[metric]

    def record(self, schedule: str, label: int, ids_per_scale):
        """Statistics of all of one class's tokens under one schedule; per scale ids of any shape."""
        row = self.classes.index(label)
        for si, ids in enumerate(ids_per_scale):
            counts_V = token_histogram(ids, self.vocab_size)
            self.entropy[schedule][row, si] = entropy_bits(counts_V)
            self.coverage[schedule][row, si] = coverage(counts_V)

    def rise_shares(self) -> dict:
        """Amplifying schedule -> metric -> stage -> share of classes above the `none` baseline."""
        baseline = self.schedules[0].name
        return {s.name: {m: rise_shares(self.values(m)[s.name], self.values(m)[baseline], self.stages) for m in METRICS}
                for s in self.schedules if s.amplifies}


def analyze(generator, classes, ipc: int, schedules, amp: AmpConfig = AmpConfig(), seed: int = 0,
            sampling: SamplingParams = SamplingParams(), batch_size: int = 8, grid_dir: Optional[Path] = None,
            progress: bool = True) -> Analysis:
    """Per schedule, class and scale: entropy and coverage of the tokens of `ipc` images.

    Image i of class c has the same seed under every schedule, so differences come from the
    schedule alone. `amp` supplies rho, mode, layers and scales; each schedule its beta. The
    `none` baseline runs first, added when missing. With `grid_dir`, one PNG per class: a row
    per image, a column per schedule, in schedule order.
    """
    cfg = generator.cfg
    schedules = with_baseline(schedules)
    amps = {s.name: s.amp_config(amp) for s in schedules}
    plans = {name: a.resolve(cfg) for name, a in amps.items()}      # refuse bad settings before generating
    classes = list(dict.fromkeys(generator.check_labels(classes)))
    analysis = Analysis(schedules, classes, ipc, cfg.patch_nums, cfg.vae.vocab_size, plans,
                        settings=dict(model=generator.model.source.name, fingerprint=generator.model.source.fingerprint,
                                      backend=generator.backend.name, seed=seed, **sampling.record()))

    tokens = defaultdict(lambda: defaultdict(list))     # class -> schedule -> per batch, per scale (b, n_s)
    images = defaultdict(lambda: defaultdict(list))     # class -> schedule -> per batch (b, 3, H, W)
    jobs = [(c, i) for c in analysis.classes for i in range(ipc)]
    with tqdm(total=len(jobs) * len(schedules), unit="img", desc="analyze", disable=not progress) as bar:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start:start + batch_size]
            labels = [c for c, _ in batch]
            for s in schedules:
                result = generator.run(labels, seed=seed, sampling=sampling, amp=amps[s.name], indices=[i for _, i in batch])
                for c in dict.fromkeys(labels):
                    rows = torch.tensor([j for j, label in enumerate(labels) if label == c])
                    tokens[c][s.name].append([ids[rows] for ids in result.tokens])
                    if grid_dir is not None:
                        images[c][s.name].append(result.images[rows])
                bar.update(len(batch))
            for c in [c for c, i in batch if i == ipc - 1]:              # classes whose last image is done
                for s in schedules:
                    analysis.record(s.name, c, [torch.cat(ids) for ids in zip(*tokens[c][s.name])])
                if grid_dir is not None:
                    write_class_grid([torch.cat(images[c][s.name]) for s in schedules], Path(grid_dir) / f"{c}.png")
                tokens.pop(c)
                images.pop(c, None)
    return analysis


def write_class_grid(per_schedule, path):
    """Schedules side by side: row i holds image i under each schedule."""
    images_N3HW = torch.stack(per_schedule, dim=1).flatten(0, 1)      # (ipc * schedules, 3, H, W)
    write_grid(images_N3HW, nrow=len(per_schedule), path=path)
