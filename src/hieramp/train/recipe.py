"""The whole recipe behind the bundled `digits` model: split, VQVAE, VAR, class-token fine-tune,
and the files `load_model` reads, written atomically into one directory."""
import io
import json
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import write_atomic
from .data import HELDOUT_FILE, load_digits_split, to_rgb
from .fit import TRAIN_THREADS, Schedule, reproducible
from .var import FINETUNE_SCHEDULE, PRETRAIN_SCHEDULE, finetune_class_tokens, hieramp_checkpoint, pretrain_var, tokenize
from .vqvae import VAE_SCHEDULE, train_vqvae

VAR_FILE = "ar-ckpt-digits.pth"
VAE_FILE = "vae-digits.pth"
RECORD_FILE = "training.json"


@dataclass(frozen=True)
class Recipe:
    seed: int = 0
    vae: Schedule = VAE_SCHEDULE
    pretrain: Schedule = PRETRAIN_SCHEDULE
    finetune: Schedule = FINETUNE_SCHEDULE


@contextmanager
def timed(phases: dict, name: str):
    """Record wall and process CPU seconds of a phase (CPU time is less inflated when others share the cores)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    phases[name] = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)}


def tail_mean(values, n=20) -> float:
    return float(np.mean(values[-n:]))


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def train_digits(out, recipe: Recipe = Recipe(), progress=True) -> dict:
    """Train everything and write VAR_FILE, VAE_FILE, the held-out digits and a record into `out`;
    returns the record (settings, losses, seconds)."""
    out = Path(out)
    phases = {}
    with reproducible(recipe.seed):
        train, heldout = load_digits_split()
        images = to_rgb(train.images)                                            # (N, 3, 16, 16)
        with timed(phases, "vqvae"):
            vae, vae_losses, restarted = train_vqvae(images, recipe.seed, schedule=recipe.vae, progress=progress)
        with timed(phases, "tokenize"):
            data = tokenize(vae, images, train.labels)
        with timed(phases, "var"):
            plain, var_losses = pretrain_var(data, recipe.seed, schedule=recipe.pretrain, progress=progress)
        with timed(phases, "class_tokens"):
            var, class_head, ft_losses, cls_losses = finetune_class_tokens(plain, data, recipe.seed,
                                                                           schedule=recipe.finetune, progress=progress)
    record = {
        "recipe": asdict(recipe),
        "train_images": len(train), "heldout_images": len(heldout),
        "vqvae": {"final_loss": tail_mean(vae_losses), "restarted_codes": restarted,
                  "codes_used_per_scale": [len(torch.unique(ids)) for ids in data.ids_NL.split(
                      [pn * pn for pn in vae.patch_nums], dim=1)]},
        "var": {"final_token_loss": tail_mean(var_losses)},
        "class_tokens": {"final_loss": tail_mean(ft_losses), "final_cls_loss": tail_mean(cls_losses)},
        "seconds": phases,
        "total_wall_s": round(sum(p["wall_s"] for p in phases.values()), 1),
        "total_cpu_s": round(sum(p["cpu_s"] for p in phases.values()), 1),
        "threads": TRAIN_THREADS, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / VAE_FILE, torch_bytes(vae.state_dict()))
    write_atomic(out / VAR_FILE, torch_bytes(hieramp_checkpoint(var, class_head)))
    write_atomic(out / HELDOUT_FILE, npz_bytes(images=heldout.images, labels=heldout.labels))
    write_atomic(out / RECORD_FILE, (json.dumps(record, indent=1) + "\n").encode())
    return record
