"""Images/s of `hieramp distill` (torch backend): batch sizes x the writer overlapped or not.

Each configuration makes a fresh dataset of --images images (classes 0..C-1, index-major) through
`distill()`, PNGs at --save-size, and counts generated and written images per second; the model is
warmed up at every batch size first. Overlapped and inline runs alternate, and each configuration
keeps its best of --repeats, because the load of a shared machine moves the numbers more than
the writer does. The writer's own cost (Lanczos resize, PNG encode, fsync'd write) is timed apart.

    .venv/bin/python benchmarks/distill_throughput.py --out benchmarks/results/distill_throughput.md
"""
import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from hieramp.bench.machine import describe_machine, load_average
from hieramp.distill import DistillSettings, default_workers, distill
from hieramp.model.amp_config import AmpConfig, default_amp_layers
from hieramp.model.bundle import HierAmpModel, ModelSource
from hieramp.model.config import VARConfig, VQVAEConfig
from hieramp.model.presets import random_model
from hieramp.model.var import VAR
from hieramp.model.vqvae import VQVAE
from hieramp.runtime.generator import Generator
from hieramp.files import write_atomic
from hieramp.runtime.images import encode_png

# Between `tiny` (8 px, 0.03 M parameters) and d16 (256 px, 310 M + 108 M, ~40 s an image on
# these two cores): VAR depth 8, width 512, with a ch-64 VQVAE at 128 px over 7 scales.
MID_VAE = VQVAEConfig(ch=64, patch_nums=(1, 2, 3, 4, 5, 6, 8))
MID = VARConfig(depth=8, embed_dim=512, num_heads=8, cls_token_scales=tuple(range(7)), vae=MID_VAE)


TITLE = "# `hieramp distill` throughput (torch backend)"


def build_model(name: str) -> HierAmpModel:
    if name != "mid":
        return random_model(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return HierAmpModel(VAR(MID), VQVAE(MID_VAE), ModelSource("mid (random init)", "0" * 64, "0" * 64)).eval()


def describe_model(model) -> str:
    cfg = model.cfg
    millions = lambda module: sum(p.numel() for p in module.parameters()) / 1e6
    return (f"depth {cfg.depth}, width {cfg.embed_dim}, {cfg.vae.image_size} px, {cfg.num_scales} scales, "
            f"{cfg.num_classes} classes; VAR {millions(model.var):.2f} M + VQVAE {millions(model.vae):.2f} M parameters")


def writer_ms(image_3HW, save_size: int, reps=20) -> float:
    """Milliseconds the writer spends on one image: resize + encode + fsync'd atomic write."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i in range(reps):
            write_atomic(Path(tmp) / f"{i}.png", encode_png(image_3HW, save_size))
        return (time.perf_counter() - start) / reps * 1e3


def throughput(generator, settings, num_classes, images, batch_size, overlap, workers) -> float:
    classes = list(range(min(num_classes, 10)))
    ipc = math.ceil(images / len(classes))
    with tempfile.TemporaryDirectory() as tmp:
        return distill(generator, classes, ipc, tmp, settings, batch_size=batch_size, overlap=overlap,
                       write_workers=workers, progress=False).images_per_s


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny,mid",
                   help="comma-separated: tiny, mid, or another architecture of presets.random_model (d16: ~40 s an image)")
    p.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes")
    p.add_argument("--threads", default="1,2", help="torch intra-op thread counts to try")
    p.add_argument("--images", default="tiny=320,mid=64", help="images per run, per model (name=N,...)")
    p.add_argument("--repeats", type=int, default=2, help="runs per configuration; the best counts")
    p.add_argument("--save-size", type=int, default=224, help="side of the saved PNGs")
    p.add_argument("--write-workers", type=int, default=default_workers(), help="PNG encode/write threads")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/distill_throughput.md"))
    p.add_argument("--append", action="store_true", help="add a section to --out instead of replacing it")
    args = p.parse_args()
    workers = args.write_workers
    images = {k: int(v) for k, v in (item.split("=") for item in args.images.split(","))}
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    machine, load_before = describe_machine(), load_average()
    rows, notes = [], []
    for name in args.models.split(","):
        model = build_model(name)
        generator = Generator(model)
        settings = DistillSettings(amp=AmpConfig(layers=default_amp_layers(model.cfg.depth)), save_size=args.save_size)
        sample = generator.run([0], amp=settings.amp).images[0]
        notes.append(f"- `{name}`: {describe_model(model)}; writer {writer_ms(sample, args.save_size):.1f} ms per image "
                     f"at {args.save_size} px")
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for batch in batch_sizes:
                generator.run([i % model.cfg.num_classes for i in range(batch)], amp=settings.amp)  # warm-up: allocates the cache
                best = {True: 0.0, False: 0.0}
                for _ in range(args.repeats):
                    for overlap in (True, False):
                        rate = throughput(generator, settings, model.cfg.num_classes, images[name], batch, overlap, workers)
                        best[overlap] = max(best[overlap], rate)
                row = (name, threads, batch, images[name], best[True], best[False], load_average())
                print(*row, flush=True)
                rows.append(row)
    section = [
        f"## {', '.join(args.models.split(','))}: torch threads {args.threads}, batch sizes {args.batch_sizes}",
        "",
        f"{machine['cpu']}, {machine['cpu_cores']} cores, {machine['memory_gb']} GB, torch "
        f"{machine['versions'].get('torch')}, {machine['date']}; load average {load_before} at the start. "
        f"Best of {args.repeats}; PNGs at {args.save_size} px; {workers} write worker(s); amplification on; "
        f"random-init weights.",
        "",
        *notes,
        "",
        "| model | torch threads | batch | images | overlapped img/s | inline img/s | overlap gain | load (1 min) |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {n} | {t} | {b} | {i} | {o:.2f} | {s:.2f} | {o / s - 1:+.0%} | {load} |" for n, t, b, i, o, s, load in rows),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a" if args.append else "w") as f:
        f.write("\n".join(([] if args.append else [TITLE, ""]) + section) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
