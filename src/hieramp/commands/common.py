"""Options shared by several subcommands, and turning them into models and configs."""
import argparse
import json
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import UserError
from ..files import write_atomic
from ..model.amp_config import AmpConfig, default_amp_layers
from ..model.dit import DiTAmpConfig, DiTConfig
from ..model.dit.diffusion import SAMPLERS, DiTSampling
from ..model.presets import resolve_model
from ..model.sampling import SamplingParams
from ..precision import PRECISIONS
from ..runtime.backends import BACKENDS, backend_class, cuda_reason
from ..runtime.dit import DiTGenerator
from ..runtime.generator import Generator

# Options that mean something for one backbone only: argparse dest -> flag.
VAR_ONLY = {"top_k": "--top-k", "top_p": "--top-p", "amp_mode": "--amp-mode", "amp_scales": "--amp-scales"}
DIT_ONLY = {"steps": "--steps", "sampler": "--sampler", "amp_steps": "--amp-steps", "dit_mask": "--dit-mask", "heads": "--heads"}


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


def is_dit(cfg) -> bool:
    return isinstance(cfg, DiTConfig)


def check_backbone_options(args, cfg):
    """Refuse an option that the loaded model's backbone does not have, naming both."""
    dit = is_dit(cfg)
    for dest, flag in (VAR_ONLY if dit else DIT_ONLY).items():
        if getattr(args, dest, None) is not None:
            what, other = ("a DiT", "VAR") if dit else ("a VAR", "DiT")
            raise UserError(f"{flag} applies to {other} models; {getattr(args, 'model', 'this')} is {what} model: drop {flag}")


def add_model_options(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", default="default",
                   help="preset name (default, tiny, d16, d20, d24, d30, dit-xl-2, dit-tiny), a VAR checkpoint .pth "
                        "(var_d16.pth or a HierAmp ar-ckpt-*.pth fine-tune) or a DiT checkpoint .pt (DiT-XL-2-256x256.pt); "
                        "the backbone is recognised from the file")
    g.add_argument("--vae", help="with a VAR .pth: its VQVAE checkpoint (vae_ch160v4096z32.pth); with a DiT .pt: the "
                                 "Stable Diffusion VAE as a diffusers directory (sd-vae-ft-mse or sd-vae-ft-ema)")
    g.add_argument("--heads", type=int, help="DiT: attention heads of a checkpoint whose width is not an official "
                                             "size (S 6, B 12, L 16, XL 16 are known)")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold more than tensors (unpickling can run code: only for trusted files)")
    g.add_argument("--device", default="cpu", help="torch device for the torch backend (cpu, cuda, cuda:1)")


def add_sampling_options(p):
    g = p.add_argument_group("sampling")
    g.add_argument("--seed", type=int, default=0, help="seed; each image's noise derives from (seed, class, index)")
    g.add_argument("--cfg", type=float, default=4.0, help="classifier-free guidance scale (VAR: ramped linearly over "
                                                          "the scales; DiT: on latent channels 0-2, as DiT's sampler)")
    g.add_argument("--top-k", type=int, help="VAR: keep the k most likely tokens (0: all; default 900)")
    g.add_argument("--top-p", type=float, help="VAR: nucleus sampling mass (1: off; default 0.95)")
    g.add_argument("--steps", type=positive_int, help="DiT: denoising steps, the 1000 training steps respaced (default 50)")
    g.add_argument("--sampler", choices=SAMPLERS, help="DiT: ddpm (default) or ddim (eta 0, deterministic)")


def add_amp_options(p):
    g = p.add_argument_group("amplification (HierAmp)")
    g.add_argument("--beta", help="strength: one value (VAR also takes three stage values coarse,mid,fine, or one per "
                                  "scale; DiT multiplies the attention output on the object region by it) (default 5)")
    g.add_argument("--rho", help="share of salient tokens amplified, in (0, 1]; same forms as --beta (default 0.5)")
    g.add_argument("--amp-mode", choices=("logit", "weight"), help="VAR: bias the logits (paper, default) or scale the weights")
    g.add_argument("--amp-layers", help="blocks to amplify, e.g. 14 or 12,14 (default: the paper's block 14 of 16, "
                                        "scaled to the model's depth)")
    g.add_argument("--amp-scales", help="VAR: scales to amplify, e.g. 1-9 (default: every scale >= 1 with a class token)")
    g.add_argument("--amp-steps", help="DiT: denoising steps to amplify, 0 the noisiest, e.g. 10-49 (default: all but the first)")
    g.add_argument("--dit-mask", help="DiT: where the object mask comes from: cfg-diff (default: the guidance difference "
                                      "of the previous step), attention (attention mass received at the amplified "
                                      "blocks, previous step) or file:DIR (DIR/<class>/<index>.png from a segmenter)")
    g.add_argument("--no-amp", action="store_true", help="turn amplification off")


def load_model_from_args(args):
    model = resolve_model(args.model, args.vae, args.device, args.trust_checkpoint, getattr(args, "random_init", False),
                          getattr(args, "heads", None))
    check_backbone_options(args, model.cfg)
    return model


def sampling_from_args(args, cfg):
    """SamplingParams for VAR, DiTSampling for DiT; an option the other backbone owns is refused."""
    check_backbone_options(args, cfg)
    if is_dit(cfg):
        given = {"steps": args.steps, "sampler": args.sampler}
        return DiTSampling(guidance=args.cfg, **{k: v for k, v in given.items() if v is not None})
    given = {"top_k": args.top_k, "top_p": args.top_p}
    return SamplingParams(guidance=args.cfg, **{k: v for k, v in given.items() if v is not None})


def _one_value(text, flag):
    values = float_list(text)
    if len(values) != 1:
        raise UserError(f"{flag} takes one value for DiT, got {text!r}")
    return values[0]


def dit_amp_from_args(args, cfg) -> DiTAmpConfig:
    amp = DiTAmpConfig(
        beta=_one_value(args.beta, "--beta") if args.beta else 5.0,
        rho=_one_value(args.rho, "--rho") if args.rho else 0.5,
        layers=tuple(int_list(args.amp_layers)) if args.amp_layers else None,
        steps=tuple(int_list(args.amp_steps)) if args.amp_steps else None,
        mask=args.dit_mask or "cfg-diff",
        enabled=not args.no_amp,
    )
    amp.resolve(cfg, args.steps or DiTSampling().steps)     # names the problem before any work
    return amp


def amp_from_args(args, cfg):
    """Amplification is on by default for models with class tokens and for DiT; asking it of a VAR
    without class tokens is an error."""
    check_backbone_options(args, cfg)
    if is_dit(cfg):
        return dit_amp_from_args(args, cfg)
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
    backbone = "dit" if is_dit(model.cfg) else "var"
    backend_class(args.backend, backbone)        # an unknown backend, or one of the other backbone: refused first
    info, options = BACKENDS[args.backend], {}
    if args.precision:
        options["precision"] = args.precision
    if args.compile:
        if args.backend != "torch":
            raise UserError(f"--compile applies to the torch backend, not {args.backend}: drop --compile")
        options["compile"] = True
    if backbone == "dit" and options:
        flag = "--precision" if "precision" in options else "--compile"
        raise UserError(f"{flag} applies to VAR models; {args.model} is a DiT model, which runs in fp32: drop {flag}")
    if info.artifact is not None:
        flag, what = ARTIFACT_FLAGS[info.artifact]
        if not getattr(args, flag):
            raise UserError(f"--backend {args.backend} runs {what}: pass --{flag} DIR (made by `{info.made_by}`)")
        options[info.artifact] = getattr(args, flag)
        if info.artifact == "engine_dir":
            options["rebuild"] = args.rebuild
    if backbone == "dit":
        return DiTGenerator(model, backend=args.backend, device=args.device, **options)
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


@contextmanager
def output_dir_for_run(path):
    """output_dir for the body of a run: a directory this run created is removed again when a
    user error ends the run before anything was written into it."""
    created = not Path(path).exists()
    out = output_dir(path)
    try:
        yield out
    except UserError:
        if created and not any(out.iterdir()):
            out.rmdir()
        raise


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
