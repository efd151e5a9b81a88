"""`hieramp finetune`: class-token fine-tuning (HierAmp) of a VAR checkpoint on an ImageFolder.

Adds a learnable class token at each of --cls-scales and a shared `class_head`, and trains
everything on the token cross-entropy plus --cls-weight x the class tokens' classification loss.
Defaults are the public HierAmp fine-tune of d16 (5 epochs, global batch 768, AdamW, lr 1e-4 x
batch / 256). Run it under torchrun for several GPUs. Rerun the same command to continue a killed
run from its last save (--save-every); the weights end the same as an uninterrupted run's.
"""
import argparse

import torch.distributed as dist

from .. import checks
from ..finetune import FinetuneSettings, RunOptions, finetune, init_distributed
from ..finetune.settings import PRECISIONS, PUBLIC_BATCH, PUBLIC_EPOCHS
from .common import device, non_negative_int, positive_int, seed
from .distill import device_for_rank


def parse_cls_scales(text):
    """'0-9' or '1,3,5' -> scales; 'none' -> () (a plain-VAR baseline); None -> every scale."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    return tuple(sorted(checks.int_range_list("class-token scales", text)))


def add_parser(subparsers):
    p = subparsers.add_parser("finetune", help="fine-tune a VAR with class tokens on an ImageFolder (resumable, torchrun)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, help="VAR checkpoint (var_d16.pth, or an ar-ckpt-*.pth fine-tune to continue "
                                                  "from), or a preset (tiny-plain, d16 with --random-init)")
    g.add_argument("--vae", help="VQVAE checkpoint (vae_ch160v4096z32.pth), needed with a VAR .pth")
    g.add_argument("--random-init", action="store_true", help="with a preset: its architecture with random weights")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold more than tensors (unpickling can run code: only for trusted files)")
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True,
                   help="ImageFolder root holding train/ (or the train folder itself); class folders named by wnid "
                        "(n01440764) or by class index (00000 or 0 .. K-1)")
    g.add_argument("--classes", help="fine-tune on these classes only (0-99,207, a file, imagenette ...); "
                                     "labels stay the model's")
    g.add_argument("--hflip", action="store_true", help="random horizontal flips")
    g.add_argument("--workers", type=non_negative_int, default=4,
                   help="data-loader processes per rank (0: load in the main process)")
    g = p.add_argument_group("training")
    g.add_argument("--out", required=True, help="run directory: ar-ckpt-last.pth, run.json, log.jsonl, loss.png")
    g.add_argument("--epochs", type=positive_int, default=PUBLIC_EPOCHS, help="passes over the data")
    g.add_argument("--steps", type=positive_int, help="optimiser steps (overrides --epochs)")
    g.add_argument("--batch-size", type=positive_int, default=PUBLIC_BATCH,
                   help="global batch, split over ranks and --accum")
    g.add_argument("--accum", type=positive_int, default=1, help="gradient accumulation steps per optimiser step")
    g.add_argument("--lr", type=float, help="peak learning rate (default 1e-4 x batch size / 256)")
    g.add_argument("--precision", choices=PRECISIONS, help="bf16 on GPU, fp32 on CPU by default; fp16 uses a loss scaler")
    g.add_argument("--cls-scales", help="scales that get a class token: 0-9 (default: every scale), or none for a "
                                        "plain-VAR baseline trained the same way")
    g.add_argument("--cls-weight", type=float, default=1.0, help="weight of the class-token classification loss")
    g.add_argument("--seed", type=seed, default=0,
                   help="decides the sample order, crops, class dropout and the new weights")
    g.add_argument("--device", type=device, default="cpu", help="cpu, cuda (under torchrun: each rank's own GPU), cuda:1")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--save-every", type=positive_int, default=1000, help="steps between checkpoints")
    g.add_argument("--log-every", type=positive_int, default=50, help="steps between log.jsonl lines")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args):
    settings = FinetuneSettings(
        model=args.model, vae=args.vae, data=args.data, random_init=args.random_init, epochs=args.epochs, steps=args.steps,
        batch_size=args.batch_size, accum=args.accum, lr=args.lr, precision=args.precision,
        cls_scales=parse_cls_scales(args.cls_scales), cls_weight=args.cls_weight, classes=args.classes, hflip=args.hflip,
        seed=args.seed)
    device = device_for_rank(args.device)
    ranks = init_distributed(device)
    options = RunOptions(out=args.out, device=device, workers=args.workers, save_every=args.save_every,
                         log_every=args.log_every, compile=args.compile, trust_checkpoint=args.trust_checkpoint,
                         progress=not args.no_progress)
    try:
        summary = finetune(settings, options)
    finally:
        if ranks.world > 1:
            dist.destroy_process_group()
    if ranks.main:
        print(summary)
