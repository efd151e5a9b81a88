"""`hieramp analyze`: per-scale token entropy and codebook coverage under several amplification
schedules, from the same seeds, as JSON, CSV and plots; with --grid, side-by-side images per class."""
from ..analyze import analyze, parse_schedules, write_report
from ..classes import parse_class_spec
from ..errors import UserError
from ..model.amp_config import AmpConfig
from .common import add_amp_options, add_backend_options, add_model_options, add_sampling_options, amp_from_args, \
    batch_size, check_backend_flags, generator_from_args, images_per_class, is_dit, load_model_from_args, output_dir, \
    sampling_from_args

PAPER_SCHEDULES = "none;5;5,5,0.5;0.5,5,5;5,0.5,5"


def add_parser(subparsers):
    p = subparsers.add_parser("analyze", help="token entropy and codebook coverage per scale under amplification schedules",
                              description=__doc__)
    add_model_options(p)
    add_backend_options(p)
    p.add_argument("--classes", required=True, help="classes: 1,2,5-9, a file of indices or wnids, or a named subset")
    p.add_argument("--ipc", type=images_per_class, default=10,
                   help="images per class under each schedule (the same seeds in each)")
    p.add_argument("--schedules", default=PAPER_SCHEDULES,
                   help="schedules separated by ';': none, one beta (5) or three stage betas coarse,mid,fine (5,5,0.5); "
                        f"the none baseline is always included (default {PAPER_SCHEDULES!r})")
    p.add_argument("--grid", action="store_true", help="also write grids/<class>.png: a row per image, a column per schedule")
    p.add_argument("--batch-size", type=batch_size, default=8,
                   help="images per batch (does not change the images)")
    p.add_argument("--out", required=True, help="output directory")
    add_sampling_options(p)
    add_amp_options(p)
    p.set_defaults(run=run)


def base_amp(args, cfg, schedules) -> AmpConfig:
    """rho, mode, layers and scales from the usual flags; beta comes from each schedule."""
    if args.no_amp:
        raise UserError("--no-amp does not apply to analyze: the `none` schedule is the run without amplification")
    if args.beta is not None:
        raise UserError("--beta does not apply to analyze: give betas in --schedules, e.g. --schedules 'none;5;5,5,0.5'")
    amplifying = [s.name for s in schedules if s.amplifies]
    if not amplifying:
        return AmpConfig(enabled=False)
    if not cfg.cls_token_scales:
        raise UserError(f"schedule {amplifying[0]} amplifies, but this model has no class tokens: "
                        f"use --schedules none, or load a HierAmp fine-tune (ar-ckpt-*.pth)")
    return amp_from_args(args, cfg)


def run(args):
    schedules = parse_schedules(args.schedules)
    check_backend_flags(args)
    model = load_model_from_args(args)
    if is_dit(model.cfg):
        raise UserError(f"analyze measures the entropy and codebook coverage of VAR's tokens; {args.model} is a DiT "
                        f"model, which has no tokens: use generate or distill with it")
    classes = parse_class_spec(args.classes, model.cfg.num_classes)
    amp = base_amp(args, model.cfg, schedules)
    generator = generator_from_args(args, model)
    out = output_dir(args.out)
    grid_dir = output_dir(out / "grids") if args.grid else None
    analysis = analyze(generator, classes, args.ipc, schedules, amp, seed=args.seed,
                       sampling=sampling_from_args(args, model.cfg), batch_size=args.batch_size,
                       grid_dir=grid_dir)
    files = write_report(analysis, out)
    print_rise_shares(analysis)
    grids = f" and {len(classes)} grids in grids/" if args.grid else ""
    print(f"wrote {', '.join(f.name for f in files)}{grids} to {out.resolve()}")


def print_rise_shares(analysis):
    """Per amplifying schedule and stage: the share of classes whose entropy / coverage rises over none."""
    rises = analysis.rise_shares()
    if not rises:
        return
    stages = [name for name, scales in analysis.stages.items() if scales]
    print("share of classes rising over none (entropy / coverage):")
    print(f"  {'schedule':<16}" + "".join(f"{name:>16}" for name in stages))
    for name, by_metric in rises.items():
        cells = "".join(f"{by_metric['entropy'][st]:.0%} / {by_metric['coverage'][st]:.0%}".rjust(16) for st in stages)
        print(f"  {name:<16}{cells}")
