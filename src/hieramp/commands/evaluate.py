"""`hieramp evaluate`: train students on a distilled set and score them on real images.

With --val: students trained under a published protocol (soft: RDED's teacher-labelled KL recipe;
hard: Minimax's cross-entropy recipe), tested on a real validation set (top-1 and top-5).
Without --val: the digits scoring: small CNN students tested on the bundled held-out real digits."""
from pathlib import Path

from ..errors import UserError
from ..evaluate.protocols import PROTOCOLS
from ..evaluate.run import accuracy_plot, prepare_evaluation
from ..evaluate.students import STUDENTS
from ..files import write_atomic
from ..train.evaluate import evaluate_distilled
from .common import batch_size, count, device, output_dir, output_file, students, threads, write_json

DIGITS_SEEDS = 3
VAL_ONLY = ("protocol", "student", "teacher", "epochs", "batch_size", "image_size", "precision", "workers", "device",
            "work")


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="score a distilled set: students trained on it, tested on real images",
                              description=__doc__)
    p.add_argument("--distilled", required=True,
                   help="distilled set: class folders (wnid or index names) of images, as `hieramp distill` writes")
    p.add_argument("--repeat", "--seeds", dest="repeat", type=students,
                   help=f"students to train, one per seed 0..N-1 (default {DIGITS_SEEDS} on digits, 1 with --val)")
    p.add_argument("--json", help="also write the result as JSON to this file (with --val, and a PNG of the "
                                  "validation accuracy over epochs next to it)")
    g = p.add_argument_group("real validation set (--val)")
    g.add_argument("--val", help="validation set: class folders (wnid or index names), matched to the distilled "
                                 "set's by class")
    g.add_argument("--protocol", choices=tuple(PROTOCOLS), help="soft (RDED: teacher labels, KL; default) or "
                                                                "hard (Minimax: class labels, cross-entropy)")
    g.add_argument("--student", choices=tuple(STUDENTS), help="student network (default resnet18)")
    g.add_argument("--teacher", help="soft protocol: ResNet-18 state dict (torchvision's ImageNet weights, or a "
                                     "checkpoint holding 'model'), restricted to the evaluated classes")
    g.add_argument("--epochs", type=count("epochs", 1, 100_000), help="default: 300 (soft); 2000/1500/1000/500 by IPC, x 2/3 "
                                                       "for 100+ classes (hard)")
    g.add_argument("--batch-size", type=batch_size, help="default: soft 50 (IPC <= 10) or 100, doubled for "
                                                           "100+ classes; hard 64; never more than the set")
    g.add_argument("--image-size", type=count("the image size", 1, 4096), help="training and validation crop size (default 224)")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="auto (default): bf16 autocast on GPUs, fp32 on CPUs")
    g.add_argument("--workers", type=threads, help="image decoding threads (default 4)")
    g.add_argument("--device", type=device, help="torch device: cpu (default), cuda, cuda:1")
    g.add_argument("--work", help="directory for per-student checkpoints: a killed run rerun with the same "
                                  "--work continues from its last epoch")
    p.set_defaults(run=run)


def run(args):
    if args.json:
        output_file(args.json)                       # before the students train, not after
    if args.val is None:
        given = [f"--{name.replace('_', '-')}" for name in VAL_ONLY if getattr(args, name) is not None]
        if given:
            raise UserError(f"{', '.join(given)} only apply with --val (a real validation set); "
                            f"without --val the digits scoring runs")
        result = evaluate_distilled(args.distilled, args.repeat or DIGITS_SEEDS, progress=True)
        print(result)
        if args.json:
            write_json(args.json, result.to_json())
        return
    device = args.device or "cpu"                 # checked by the --device type
    precision = args.precision or "auto"
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") else "fp32"
    evaluation = prepare_evaluation(args.distilled, args.val, protocol=args.protocol or "soft",
                                    student=args.student or "resnet18", teacher=args.teacher, epochs=args.epochs,
                                    batch_size=args.batch_size, image_size=args.image_size or 224,
                                    repeat=args.repeat or 1, precision=precision, workers=args.workers or 4,
                                    device=device, progress=True)
    if args.work:
        output_dir(args.work)                        # after every check: a refused run writes nothing
    result = evaluation.run(args.work, progress=True)
    print(result)
    plot = accuracy_plot(result)
    if args.work:
        write_atomic(Path(args.work) / "accuracy.png", plot)
    if args.json:
        write_json(args.json, result.to_json())
        write_atomic(Path(args.json).with_suffix(".png"), plot)
