"""`hieramp compare`: run a backend and the PyTorch reference on the same labels, seed and forced
token path; report per-scale logit errors, amplified-set and token agreement and image PSNR (DiT:
the forced latent path, per-step output errors and object-mask agreement, image PSNR).
Exits with 1 when a tolerance is exceeded, so it can gate a CI."""
import json
from dataclasses import replace

from .. import checks
from ..classes import parse_class_spec
from ..compare import DiTTolerances, Tolerances, compare, compare_dit
from ..export.manifest import ExportManifest
from .common import AMP_OPTIONS, add_amp_options, add_backend_options, add_model_options, add_sampling_options, \
    amp_from_args, check_backend_flags, generator_from_args, is_dit, load_model_from_args, number, sampling_from_args


def add_parser(subparsers):
    p = subparsers.add_parser("compare", help="compare a backend with the PyTorch reference", description=__doc__)
    add_model_options(p)
    p.add_argument("--random-init", action="store_true",
                   help="build a preset architecture (d16 ...) with seeded random weights instead of loading its checkpoint")
    add_backend_options(p)
    p.set_defaults(backend="onnxruntime")
    p.add_argument("--classes", default="0-3", help="classes to generate, one image each (default 0-3)")
    add_sampling_options(p)
    add_amp_options(p)
    g = p.add_argument_group("tolerances (defaults by the precision: the torch --precision, or what the export or "
                             "engines hold; fp32: 1e-4, 100%%, 40 dB, 100%%; reduced precisions: see README)")
    g.add_argument("--max-logit-error", type=number(checks.max_logit_error),
                   help="largest absolute logit error on the forced path, per scale")
    g.add_argument("--max-rel-logit-error", type=number(checks.max_rel_logit_error),
                   help="largest logit error on the forced path relative to the scale's largest |reference logit|")
    g.add_argument("--min-argmax-agreement", type=number(checks.share("min argmax agreement")),
                   help="smallest share of forced-path positions whose argmax token agrees with the reference, 0-1")
    g.add_argument("--min-token-agreement", type=number(checks.share("min token agreement")),
                   help="smallest share of equal tokens in free sampling, 0-1")
    g.add_argument("--min-psnr", type=number(checks.psnr), help="smallest PSNR of a final image on the forced path, in dB")
    g.add_argument("--min-amp-set-agreement", type=number(checks.share("min amp set agreement")),
                   help="smallest share of identical amplified top-k sets, 0-1")
    g.add_argument("--max-output-error", type=number(checks.max_output_error),
                   help="DiT: largest absolute error of the guided model output per step on the forced path "
                        "(default 1e-4)")
    g.add_argument("--min-mask-agreement", type=number(checks.share("min mask agreement")),
                   help="DiT: smallest share of identical object masks, 0-1 (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(run=run)


def run(args):
    check_backend_flags(args)
    model = load_model_from_args(args)
    labels = parse_class_spec(args.classes, model.cfg.num_classes)
    generator = generator_from_args(args, model)
    manifest = generator.backend.manifest
    if manifest is not None:
        _amp_as_exported(args, manifest)
    amp = amp_from_args(args, model.cfg)
    sampling = sampling_from_args(args, model.cfg)
    if is_dit(model.cfg):
        tolerances = DiTTolerances(**_asked(max_output_error=args.max_output_error, min_mask_agreement=args.min_mask_agreement,
                                            min_psnr_db=args.min_psnr))
        result = compare_dit(generator, labels, seed=args.seed, sampling=sampling, amp=amp, tolerances=tolerances,
                             device=args.device, progress=not args.json)
    else:
        tolerances = replace(Tolerances.for_precision(generator.backend.precision), **_asked(
            max_logit_error=args.max_logit_error, max_rel_logit_error=args.max_rel_logit_error,
            min_argmax_agreement=args.min_argmax_agreement, min_token_agreement=args.min_token_agreement,
            min_psnr_db=args.min_psnr, min_amp_set_agreement=args.min_amp_set_agreement))
        result = compare(generator, labels, seed=args.seed, sampling=sampling, amp=amp, tolerances=tolerances,
                         device=args.device, progress=not args.json)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    return 0 if result.passed else 1


def _asked(**tolerances) -> dict:
    return {name: value for name, value in tolerances.items() if value is not None}


def _amp_as_exported(args, manifest: ExportManifest):
    """Unless amplification options are given, compare what the export holds."""
    if any(getattr(args, a, None) is not None for a in AMP_OPTIONS) or args.no_amp:
        return
    if manifest.amp_layers:
        args.amp_layers = list(manifest.amp_layers)
        if manifest.data.get("backbone") != "dit":          # a DiT export's blocks run one kind of amplification
            args.amp_mode = manifest.amp_mode
    else:
        args.no_amp = True
