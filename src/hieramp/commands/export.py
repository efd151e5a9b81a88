"""`hieramp export`: the model as ONNX graphs (condition, step, sample, VQ updates, decode) and
manifest.json, for `--backend onnxruntime` and for TensorRT engine builds. A DiT model exports
its denoiser step as one graph, with the object mask and beta as inputs."""
from pathlib import Path

from .. import checks
from ..errors import UserError
from ..export.dit import export_dit
from ..export.exporter import DEFAULT_MAX_BATCH, DEFAULT_OPSET, DTYPES, OP_FORMS, OPSETS, export_model
from ..export.manifest import ExportManifest
from ..files import check_place
from .common import add_model_options, batch_size, count, is_dit, load_model_from_args, user_type


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a model to ONNX graphs", description=__doc__)
    add_model_options(p)
    p.add_argument("--random-init", action="store_true",
                   help="build a preset architecture (d16 ...) with seeded random weights instead of loading its checkpoint")
    p.add_argument("--out", required=True, help="export directory (created; an earlier export there is replaced)")
    p.add_argument("--amp-op", choices=OP_FORMS,
                   help="VAR: the hieramp::TopKBiasAttention node with its body as an ONNX function that any runtime runs "
                        "(function, default), or bare for the TensorRT plugin (plugin)")
    p.add_argument("--amp-layers", type=user_type(amp_layers_from_arg),
                   help="blocks that carry the amplification op, e.g. 14 or 12,14, or none (default: the paper's "
                        "block 14 of 16, scaled to the depth, for models with class tokens; none for plain VAR)")
    p.add_argument("--amp-mode", choices=("logit", "weight"),
                   help="VAR: amplification mode fixed in the graph: bias the logits (paper, default) or scale the weights")
    p.add_argument("--opset", type=count("the opset", OPSETS.start, OPSETS.stop - 1), default=DEFAULT_OPSET,
                   help=f"ONNX opset, {OPSETS.start}-{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
    p.add_argument("--dtype", choices=tuple(DTYPES), help="weights and activations (default fp32; DiT: fp32 only)")
    p.add_argument("--quantize", action="store_true",
                   help="VAR: int8 dynamic quantisation of the step graph's linear layers (not the head), for ONNX "
                        "Runtime on CPU: faster there, with the fidelity `hieramp compare` gates (needs --dtype fp32)")
    p.add_argument("--max-batch", type=batch_size,
                   help="VAR: largest batch the export is meant for, recorded for engine builders (TensorRT profiles); "
                        "ONNX Runtime runs any batch (default 8)")
    p.set_defaults(run=run)


def amp_layers_from_arg(text):
    """Blocks like 14 or 12,14, or none."""
    return () if text.strip().lower() == "none" else checks.int_range_list("amplification layers", text)


def run(args):
    check_place(args.out, "an export directory", ExportManifest.describes)
    model = load_model_from_args(args)
    if is_dit(model.cfg):
        return _export_dit(args, model)
    dtype = args.dtype or "fp32"
    manifest = export_model(model, args.out, args.amp_layers, args.amp_mode or "logit",
                            args.amp_op or "function", args.opset, dtype, args.max_batch or DEFAULT_MAX_BATCH, quantize=args.quantize)
    amp = manifest.data["amp"]
    what = f"op {amp['op']} ({amp['op_form']}, {amp['mode']}) at blocks {amp['layers']}" if amp["layers"] else "no amplification op"
    dtype = f"{dtype}, linear layers int8" if args.quantize else dtype
    print(f"exported {model.source.name} to {Path(args.out).resolve()}: opset {args.opset}, {dtype}, {what}; "
          f"artifact {manifest.artifact_id}")


def _export_dit(args, model):
    for flag, value in (("--amp-op", args.amp_op), ("--amp-mode", args.amp_mode), ("--max-batch", args.max_batch),
                        ("--quantize", args.quantize or None)):
        if value is not None:
            raise UserError(f"{flag} applies to VAR exports; a DiT export amplifies with plain ONNX ops: drop {flag}")
    if args.dtype not in (None, "fp32"):
        raise UserError(f"a DiT export is fp32 only: drop --dtype {args.dtype}")
    manifest = export_dit(model, args.out, args.amp_layers, args.opset)
    print(f"exported {model.source.name} to {Path(args.out).resolve()}: the denoiser step, opset {args.opset}, fp32, "
          f"amplification inputs at blocks {list(manifest.amp_layers)}; artifact {manifest.artifact_id}")
