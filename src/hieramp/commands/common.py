"""Options shared by several subcommands, and turning them into models and configs."""
import argparse
import json
import os
from pathlib import Path

import torch

from ..errors import UserError
from ..files import write_atomic
from ..model.amp_config import AmpConfig, default_amp_layers
from ..model.presets import resolve_model
from ..precision import PRECISIONS
from ..runtime.backends import BACKENDS, cuda_reason
from ..runtime.generator import Generator


def int_list(text: str):
    """'1,2,5-7' -> [1, 2, 5, 6, 7]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
        except ValueError:
            raise UserError(f"cannot read {text!r} as a list of integers: use forms like 1,2,5-9") from None
    return out


def float_list(text: str):
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"cannot read {text!r} as numbers: use one value or comma-separated values") from None


def add_model_options(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", default="default",
                   help="preset name (default, tiny, d16, d20, d24, d30) or a VAR checkpoint .pth "
                        "(var_d16.pth or a HierAmp ar-ckpt-*.pth fine-tune)")
    g.add_argument("--vae", help="VQVAE checkpoint (vae_ch160v4096z32.pth), needed with a VAR .pth")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold more than tensors (unpickling can run code: only for trusted files)")
    g.add_argument("--device", default="cpu", help="torch device for the torch backend (cpu, cuda, cuda:1)")


def add_sampling_options(p):
    g = p.add_argument_group("sampling")
    g.add_argument("--seed", type=int, default=0, help="seed; each image's noise derives from (seed, class, index)")
    g.add_argument("--cfg", type=float, default=4.0, help="classifier-free guidance scale, ramped linearly over the scales")
    g.add_argument("--top-k", type=int, default=900, help="keep the k most likely tokens (0: all)")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (1: off)")


def add_amp_options(p):
    g = p.add_argument_group("amplification (HierAmp)")
    g.add_argument("--beta", help="strength: one value, three stage values coarse,mid,fine, or one per scale (default 5)")
    g.add_argument("--rho", help="share of salient tokens amplified, in (0, 1]; same forms as --beta (default 0.5)")
    g.add_argument("--amp-mode", choices=("logit", "weight"), help="bias the logits (paper, default) or scale the weights")
    g.add_argument("--amp-layers", help="blocks to amplify, e.g. 14 or 12,14 (default: the paper's block 14 of 16, "
                                        "scaled to the model's depth)")
    g.add_argument("--amp-scales", help="scales to amplify, e.g. 1-9 (default: every scale >= 1 with a class token)")
    g.add_argument("--no-amp", action="store_true", help="turn amplification off")


def load_model_from_args(args):
    return resolve_model(args.model, args.vae, args.device, args.trust_checkpoint, getattr(args, "random_init", False))


def amp_from_args(args, cfg) -> AmpConfig:
    """Amplification is on by default for models with class tokens; asking it of others is an error."""
    asked = any(getattr(args, a) is not None for a in ("beta", "rho", "amp_mode", "amp_layers", "amp_scales"))
    if args.no_amp or (not cfg.cls_token_scales and not asked):
        return AmpConfig(enabled=False)
    if args.rho is not None:
        for r in float_list(args.rho):
            if not 0 < r <= 1:
                raise UserError(f"--rho must lie in (0, 1], got {r}")
    amp = AmpConfig(
        mode=args.amp_mode or "logit",
        beta=float_list(args.beta) if args.beta else 5.0,
        rho=float_list(args.rho) if args.rho else 0.5,
        layers=tuple(int_list(args.amp_layers)) if args.amp_layers else default_amp_layers(cfg.depth),
        scales=tuple(int_list(args.amp_scales)) if args.amp_scales else None,
    )
    amp.resolve(cfg)
    return amp


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_backend_options(p):
    g = p.add_argument_group("backend")
    g.add_argument("--backend", default="torch", help="torch (reference), onnxruntime (needs --export) or tensorrt (needs --engine)")
    g.add_argument("--export", help="export directory made by `hieramp export` (onnxruntime backend)")
    g.add_argument("--engine", help="engine directory made by `hieramp build` (tensorrt backend)")
    g.add_argument("--rebuild", action="store_true",
                   help="tensorrt backend: rebuild engines that do not fit this TensorRT, GPU or export, instead of refusing them")
    g.add_argument("--precision", choices=tuple(PRECISIONS),
                   help="torch: fp32 (default), bf16, or fp16 (GPU only) for the blocks' matrix products and the decoder "
                        "(see README, Precision); onnxruntime and tensorrt run what the export or engines hold, and "
                        "refuse another precision")
    g.add_argument("--compile", action="store_true",
                   help="torch backend: torch.compile the transformer blocks (slow first batch; see README for when it helps)")


# The flag that names each kind of artifact a backend runs (`BACKENDS[name].artifact`).
ARTIFACT_FLAGS = {"export_dir": ("export", "an export"), "engine_dir": ("engine", "engines")}


def generator_from_args(args, model):
    info, options = BACKENDS.get(args.backend), {}
    if args.precision:
        options["precision"] = args.precision
    if args.compile:
        if args.backend != "torch":
            raise UserError(f"--compile applies to the torch backend, not {args.backend}: drop --compile")
        options["compile"] = True
    if info is not None and info.artifact is not None:
        flag, what = ARTIFACT_FLAGS[info.artifact]
        if not getattr(args, flag):
            raise UserError(f"--backend {args.backend} runs {what}: pass --{flag} DIR (made by `{info.made_by}`)")
        options[info.artifact] = getattr(args, flag)
        if info.artifact == "engine_dir":
            options["rebuild"] = args.rebuild
    return Generator(model, backend=args.backend, device=args.device, **options)


def output_dir(path) -> Path:
    """Create the output directory, or explain why it cannot be."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output directory {out}: {err.strerror}; choose a writable path") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"output directory {out} is not writable; choose a writable path")
    return out


def output_file(path) -> Path:
    """Check an output file's place before the work that fills it: its directory is created and
    writable, and the path is not a directory."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{out} is a directory: give a file name")
    output_dir(out.parent)
    return out


def write_json(path, obj):
    """`obj` as indented JSON, written atomically."""
    write_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())


def checked_device(name: str) -> str:
    """A torch device name that exists here, or a UserError saying what to use."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and cuda_reason() is not None:
        raise UserError(f"--device {name}: {cuda_reason()}; use --device cpu")
    return name
