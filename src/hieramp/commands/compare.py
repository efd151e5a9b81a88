"""`hieramp compare`: run a backend and the PyTorch reference on the same labels, seed and forced
token path; report per-scale logit errors, amplified-set and token agreement and image PSNR.
Exits with 1 when a tolerance is exceeded, so it can gate a CI."""
import json
from dataclasses import replace

from .. import checks
from ..classes import parse_class_spec
from ..compare import Tolerances, compare
from ..export.manifest import ExportManifest
from ..model.sampling import SamplingParams
from .common import AMP_OPTIONS, add_amp_options, add_backend_options, add_model_options, add_sampling_options, \
    amp_from_args, check_backend_flags, generator_from_args, load_model_from_args, number


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
    asked = {"max_logit_error": args.max_logit_error, "max_rel_logit_error": args.max_rel_logit_error,
             "min_argmax_agreement": args.min_argmax_agreement, "min_token_agreement": args.min_token_agreement,
             "min_psnr_db": args.min_psnr, "min_amp_set_agreement": args.min_amp_set_agreement}
    defaults = Tolerances.for_precision(generator.backend.precision)
    tolerances = replace(defaults, **{k: v for k, v in asked.items() if v is not None})
    result = compare(generator, labels, seed=args.seed, sampling=SamplingParams(args.cfg, args.top_k, args.top_p), amp=amp,
                     tolerances=tolerances, device=args.device, progress=not args.json)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.table())
    return 0 if result.passed else 1


def _amp_as_exported(args, manifest: ExportManifest):
    """Unless amplification options are given, compare what the export holds."""
    if any(getattr(args, a) is not None for a in AMP_OPTIONS) or args.no_amp:
        return
    if manifest.amp_layers:
        args.amp_layers = list(manifest.amp_layers)
        args.amp_mode = manifest.amp_mode
    else:
        args.no_amp = True
