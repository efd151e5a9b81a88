"""`hieramp export`: the model as ONNX graphs (condition, step, sample, VQ updates, decode) and
manifest.json, for `--backend onnxruntime` and for TensorRT engine builds."""
from pathlib import Path

from .. import checks
from ..export.exporter import DEFAULT_OPSET, DTYPES, OP_FORMS, OPSETS, export_model
from ..export.manifest import ExportManifest
from ..files import check_place
from .common import add_model_options, batch_size, count, load_model_from_args, user_type


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a model to ONNX graphs", description=__doc__)
    add_model_options(p)
    p.add_argument("--random-init", action="store_true",
                   help="build a preset architecture (d16 ...) with seeded random weights instead of loading its checkpoint")
    p.add_argument("--out", required=True, help="export directory (created; an earlier export there is replaced)")
    p.add_argument("--amp-op", choices=OP_FORMS, default="function",
                   help="the hieramp::TopKBiasAttention node with its body as an ONNX function that any runtime runs "
                        "(function, default), or bare for the TensorRT plugin (plugin)")
    p.add_argument("--amp-layers", type=user_type(amp_layers_from_arg),
                   help="blocks that carry the amplification op, e.g. 14 or 12,14, or none (default: the paper's "
                        "block 14 of 16, scaled to the depth, for models with class tokens; none for plain VAR)")
    p.add_argument("--amp-mode", choices=("logit", "weight"), default="logit",
                   help="amplification mode fixed in the graph: bias the logits (paper, default) or scale the weights")
    p.add_argument("--opset", type=count("the opset", OPSETS.start, OPSETS.stop - 1), default=DEFAULT_OPSET,
                   help=f"ONNX opset, {OPSETS.start}-{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="weights and activations (default fp32)")
    p.add_argument("--quantize", action="store_true",
                   help="int8 dynamic quantisation of the step graph's linear layers (not the head), for ONNX Runtime "
                        "on CPU: faster there, with the fidelity `hieramp compare` gates (needs --dtype fp32)")
    p.add_argument("--max-batch", type=batch_size, default=8,
                   help="largest batch the export is meant for, recorded for engine builders (TensorRT profiles); "
                        "ONNX Runtime runs any batch (default 8)")
    p.set_defaults(run=run)


def amp_layers_from_arg(text):
    """Blocks like 14 or 12,14, or none."""
    return () if text.strip().lower() == "none" else checks.int_range_list("amplification layers", text)


def run(args):
    check_place(args.out, "an export directory", ExportManifest.describes)
    model = load_model_from_args(args)
    manifest = export_model(model, args.out, args.amp_layers, args.amp_mode, args.amp_op,
                            args.opset, args.dtype, args.max_batch, quantize=args.quantize)
    amp = manifest.data["amp"]
    what = f"op {amp['op']} ({amp['op_form']}, {amp['mode']}) at blocks {amp['layers']}" if amp["layers"] else "no amplification op"
    dtype = f"{args.dtype}, linear layers int8" if args.quantize else args.dtype
    print(f"exported {model.source.name} to {Path(args.out).resolve()}: opset {args.opset}, {dtype}, {what}; "
          f"artifact {manifest.artifact_id}")
