"""`hieramp generate`: images for a few classes, written as DIR/<class>/<index>.png plus a grid."""
import math
from pathlib import Path

import torch

from ..classes import parse_class_spec
from ..files import write_atomic
from ..runtime.images import encode_png, write_grid
from .common import add_amp_options, add_backend_options, add_model_options, add_sampling_options, amp_from_args, \
    batch_size, check_backend_flags, generator_from_args, images_per_class, load_model_from_args, output_dir_for_run, \
    sampling_from_args


def add_parser(subparsers):
    p = subparsers.add_parser("generate", help="generate images for some classes", description=__doc__)
    add_model_options(p)
    add_backend_options(p)
    p.add_argument("--classes", required=True, help="classes: 1,2,5-9, a file of indices or wnids, or a named subset")
    p.add_argument("--per-class", type=images_per_class, default=1, help="images per class")
    p.add_argument("--batch-size", type=batch_size, default=8,
                   help="images per batch (does not change the images)")
    p.add_argument("--out", required=True, help="output directory")
    add_sampling_options(p)
    add_amp_options(p)
    p.set_defaults(run=run)


def run(args):
    check_backend_flags(args)
    model = load_model_from_args(args)
    classes = parse_class_spec(args.classes, model.cfg.num_classes)
    amp = amp_from_args(args, model.cfg)
    sampling = sampling_from_args(args, model.cfg)
    generator = generator_from_args(args, model)
    jobs = [(c, i) for c in classes for i in range(args.per_class)]
    images = []
    with output_dir_for_run(args.out) as out:
        for start in range(0, len(jobs), args.batch_size):
            batch = jobs[start:start + args.batch_size]
            result = generator.run([c for c, _ in batch], seed=args.seed, sampling=sampling, amp=amp,
                                   indices=[i for _, i in batch])
            for (c, i), image in zip(batch, result.images):
                folder = out / str(c)
                folder.mkdir(exist_ok=True)
                write_atomic(folder / f"{i}.png", encode_png(image))
            images.append(result.images)
    write_grid(torch.cat(images), nrow=args.per_class if args.per_class > 1 else math.ceil(len(jobs) ** 0.5), path=out / "grid.png")
    print(f"wrote {len(jobs)} images and grid.png to {Path(out).resolve()}")
