"""`hieramp demo`: the main job end to end on the bundled digits model, with no download.

Distils a digits set with amplification and one without (same seed), trains small CNN students
on each, prints their accuracy on the held-out real digits, and writes a grid of each set.
"""
import json

from ..distill import DistillSettings, distill
from ..files import write_atomic
from ..model.amp_config import AmpConfig
from ..model.presets import resolve_model
from ..runtime.generator import Generator
from ..runtime.images import write_grid
from ..train.data import IMAGE_SIZE, NUM_CLASSES
from ..train.evaluate import evaluate_images, read_image_folder
from .common import add_amp_options, add_sampling_options, amp_from_args, images_per_class, output_dir, \
    sampling_from_args, students

GRID_COLUMNS = 10


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="distil digits with and without amplification and score both", description=__doc__)
    p.add_argument("--out", default="demo-output", help="output directory (rerun on it to resume)")
    p.add_argument("--ipc", type=images_per_class, default=10, help="images per class in each distilled set")
    p.add_argument("--seeds", type=students, default=3, help="students trained per set, one per seed")
    add_sampling_options(p)
    add_amp_options(p)
    p.set_defaults(run=run)


def run(args):
    model = resolve_model("digits")
    generator = Generator(model)
    sampling = sampling_from_args(args, model.cfg)
    runs = (("amplified", amp_from_args(args, model.cfg)), ("plain", AmpConfig(enabled=False)))
    out = output_dir(args.out)
    results = {}
    for name, amp in runs:
        folder = output_dir(out / name)
        print(f"{name}: distilling {args.ipc} images per class into {folder}")
        distill(generator, range(NUM_CLASSES), args.ipc, folder,
                DistillSettings(seed=args.seed, sampling=sampling, amp=amp, save_size=IMAGE_SIZE))
        images, labels = read_image_folder(folder)
        shown = labels.new_tensor([i for c in range(NUM_CLASSES) for i in (labels == c).nonzero().flatten()[:GRID_COLUMNS]])
        write_grid((images[shown] + 1) / 2, min(args.ipc, GRID_COLUMNS), out / f"grid-{name}.png")
        results[name] = evaluate_images(images, labels, args.seeds, progress=True)
    for name, result in results.items():
        print(f"{name:>9}: {result}")
    write_atomic(out / "results.json", (json.dumps({k: r.to_json() for k, r in results.items()}, indent=1) + "\n").encode())
    print(f"grids and results.json in {out.resolve()}")
