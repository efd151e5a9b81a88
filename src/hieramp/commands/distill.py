"""`hieramp distill`: a distilled dataset in ImageFolder layout, IPC images for each class.

Rerun the same command to resume after a crash or kill: finished images are kept, the rest are
made. Images depend only on (seed, class, index), the model and the sampling and amplification
settings, so any batch size, shard count or resume point gives the same files.
"""
import os

from ..classes import parse_class_spec
from ..distill import DistillSettings, default_workers, distill, resolve_shard
from ..runtime.images import DEFAULT_PNG_LEVEL, PNG_LEVELS
from .common import add_amp_options, add_backend_options, add_model_options, add_sampling_options, amp_from_args, \
    batch_size, check_backend_flags, count, generator_from_args, image_side, images_per_class, load_model_from_args, \
    output_dir_for_run, sampling_from_args


def add_parser(subparsers):
    p = subparsers.add_parser("distill", help="generate a distilled dataset (resumable, sharded)", description=__doc__)
    add_model_options(p)
    add_backend_options(p)
    g = p.add_argument_group("dataset")
    g.add_argument("--classes", required=True,
                   help="classes: 0-99,207, a file of indices or wnids, or imagenette, imagewoof, imagenet-100")
    g.add_argument("--ipc", type=images_per_class, required=True, help="images per class")
    g.add_argument("--out", required=True, help="output directory; rerun the same command on it to resume")
    g.add_argument("--save-size", type=image_side, default=224, help="side of the saved PNGs in pixels (Lanczos resize)")
    g.add_argument("--png-level", type=int, choices=PNG_LEVELS, default=DEFAULT_PNG_LEVEL, metavar="0-9",
                   help="zlib compression of the PNGs: 1 encodes ~2.5x faster than the default 6, "
                        "files ~8%% larger; the pixels are the same")
    g.add_argument("--batch-size", type=batch_size, default=8, help="images per batch, classes mixed (does not change the images)")
    g.add_argument("--shard", help="make only shard i of n, written i/n (default: torchrun's RANK/WORLD_SIZE, else all)")
    g.add_argument("--no-overlap", action="store_true",
                   help="encode and write PNGs between batches instead of on a writer thread (for benchmarks)")
    g.add_argument("--write-workers", type=count("write workers", 1, 1024), default=default_workers(),
                   help="threads that encode and write PNGs (default: half the CPU cores, at most 8)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (the summary is still printed)")
    add_sampling_options(p)
    add_amp_options(p)
    p.set_defaults(run=run)


def device_for_rank(device: str, environ=os.environ) -> str:
    """Under torchrun each process takes the GPU of its LOCAL_RANK when asked for plain `cuda`."""
    if device == "cuda" and "LOCAL_RANK" in environ:
        return f"cuda:{int(environ['LOCAL_RANK'])}"
    return device


def run(args):
    shard = resolve_shard(args.shard)
    check_backend_flags(args)
    args.device = device_for_rank(args.device)
    model = load_model_from_args(args)
    classes = parse_class_spec(args.classes, model.cfg.num_classes)
    settings = DistillSettings(seed=args.seed, sampling=sampling_from_args(args, model.cfg),
                               amp=amp_from_args(args, model.cfg), save_size=args.save_size,
                               png_level=args.png_level)
    generator = generator_from_args(args, model)
    with output_dir_for_run(args.out) as out:
        summary = distill(generator, classes, args.ipc, out, settings, shard, args.batch_size,
                          overlap=not args.no_overlap, write_workers=args.write_workers, progress=not args.no_progress)
    print(summary)
