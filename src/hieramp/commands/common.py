"""Options shared by several subcommands, and turning them into models and configs."""
import argparse
import json
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from .. import checks
from ..errors import UserError
from ..files import check_creatable, write_atomic
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


def user_type(parse):
    """An argparse type from a parser that raises UserError: argparse reports its message."""
    def convert(text):
        try:
            return parse(text)
        except UserError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _as(kind, text: str):
    """`text` as `kind`, or the text itself for the check to refuse with its own message."""
    try:
        return kind(text)
    except ValueError:
        return text


def count(name: str, low: int = 1, high: int = None):
    """argparse type: an integer in [low, high]."""
    return user_type(lambda text: checks.integer(name, _as(int, text), low, high))


def number(check):
    """argparse type: a float that `check` (one of hieramp.checks) accepts."""
    return user_type(lambda text: check(_as(float, text)))


def numbers(check):
    """argparse type: one or more comma-separated floats, each accepted by `check`."""
    def parse(text):
        parts = [p.strip() for p in text.split(",")]
        if not all(parts):
            raise UserError(f"cannot read {text!r} as numbers: give one value or comma-separated values")
        return [check(_as(float, p)) for p in parts]
    return user_type(parse)


def int_list(name: str):
    """argparse type: integers and ranges like 1,2,5-9, each once (checks.int_range_list)."""
    return user_type(lambda text: checks.int_range_list(name, text))


positive_int = count("the value")
non_negative_int = count("the value", 0)
seed = user_type(lambda text: checks.seed(_as(int, text)))
device = user_type(lambda text: str(checks.device(text)))
# Counts with ceilings far above any real use, low enough that a typo is refused before it turns
# into an allocation or a job list that never ends.
images_per_class = count("images per class", 1, 10_000)
batch_size = count("the batch size", 1, 4096)
image_side = count("the save size", 1, 4096)
threads = count("threads", 1, 1024)
students = count("students", 1, 1000)


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
    g.add_argument("--heads", type=count("heads", 1, 1024), help="DiT: attention heads of a checkpoint whose width is not an official "
                                             "size (S 6, B 12, L 16, XL 16 are known)")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold more than tensors (unpickling can run code: only for trusted files)")
    g.add_argument("--device", type=device, default="cpu", help="torch device for the torch backend (cpu, cuda, cuda:1)")


def add_sampling_options(p):
    g = p.add_argument_group("sampling")
    g.add_argument("--seed", type=seed, default=0,
                   help=f"seed, 0-{checks.MAX_SEED}; each image's noise derives from (seed, class, index)")
    g.add_argument("--cfg", type=number(checks.cfg), default=4.0,
                   help="classifier-free guidance scale (>= 0) (VAR: ramped linearly over the scales; DiT: on latent "
                        "channels 0-2, as DiT's sampler)")
    g.add_argument("--top-k", type=user_type(lambda text: checks.top_k(_as(int, text))),
                   help="VAR: keep the k most likely tokens (0: all; default 900)")
    g.add_argument("--top-p", type=number(checks.top_p), help="VAR: nucleus sampling mass, in (0, 1] (1: off; default 0.95)")
    g.add_argument("--steps", type=count("denoising steps", 1, 1000),
                   help="DiT: denoising steps, the 1000 training steps respaced (default 50)")
    g.add_argument("--sampler", choices=SAMPLERS, help="DiT: ddpm (default) or ddim (eta 0, deterministic)")


def _dit_mask(text: str) -> str:
    if text in ("cfg-diff", "attention"):
        return text
    if text.startswith("file:") and len(text) > len("file:"):
        return text
    raise UserError(f"unknown --dit-mask {text!r}: use cfg-diff, attention or file:DIR")


def add_amp_options(p):
    g = p.add_argument_group("amplification (HierAmp)")
    g.add_argument("--beta", type=numbers(checks.beta),
                   help="strength: one value (VAR also takes three stage values coarse,mid,fine, or one per "
                        "scale; DiT multiplies the attention output on the object region by it) (default 5)")
    g.add_argument("--rho", type=numbers(checks.rho),
                   help="share of salient tokens amplified, in (0, 1]; same forms as --beta (default 0.5)")
    g.add_argument("--amp-mode", choices=("logit", "weight"), help="VAR: bias the logits (paper, default) or scale the weights")
    g.add_argument("--amp-layers", type=int_list("amplification layers"),
                   help="blocks to amplify, e.g. 14 or 12,14 (default: the paper's block 14 of 16, scaled to the "
                        "model's depth)")
    g.add_argument("--amp-scales", type=int_list("amplification scales"),
                   help="VAR: scales to amplify, e.g. 1-9 (default: every scale >= 1 with a class token)")
    g.add_argument("--amp-steps", type=int_list("amplification steps"),
                   help="DiT: denoising steps to amplify, 0 the noisiest, e.g. 10-49 (default: all but the first)")
    g.add_argument("--dit-mask", type=user_type(_dit_mask),
                   help="DiT: where the object mask comes from: cfg-diff (default: the guidance difference "
                        "of the previous step), attention (attention mass received at the amplified "
                        "blocks, previous step) or file:DIR (DIR/<class>/<index>.png from a segmenter)")
    g.add_argument("--no-amp", action="store_true", help="turn amplification off")


AMP_OPTIONS = ("beta", "rho", "amp_mode", "amp_layers", "amp_scales", "amp_steps", "dit_mask")


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


def _one_value(values, flag):
    if len(values) != 1:
        raise UserError(f"{flag} takes one value for DiT, got {','.join(map(str, values))}")
    return values[0]


def dit_amp_from_args(args, cfg) -> DiTAmpConfig:
    amp = DiTAmpConfig(
        beta=_one_value(args.beta, "--beta") if args.beta else 5.0,
        rho=_one_value(args.rho, "--rho") if args.rho else 0.5,
        layers=tuple(args.amp_layers) if args.amp_layers else None,
        steps=tuple(args.amp_steps) if args.amp_steps else None,
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
    asked = [a for a in AMP_OPTIONS if getattr(args, a, None) is not None]
    if args.no_amp and asked:
        raise UserError(f"--no-amp turns amplification off, so --{asked[0].replace('_', '-')} would do nothing: "
                        f"drop one of the two")
    if args.no_amp or (not cfg.cls_token_scales and not asked):
        return AmpConfig(enabled=False)
    amp = AmpConfig(
        mode=args.amp_mode or "logit",
        beta=args.beta or 5.0,
        rho=args.rho or 0.5,
        layers=tuple(args.amp_layers) if args.amp_layers else default_amp_layers(cfg.depth),
        scales=tuple(args.amp_scales) if args.amp_scales else None,
    )
    amp.resolve(cfg)
    return amp


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


def check_backend_flags(args):
    """The backend gets the option naming what it runs, and no other backend's; checked before the
    model loads."""
    info = BACKENDS.get(args.backend)
    wanted = info.artifact if info is not None else None
    for artifact, (flag, what) in ARTIFACT_FLAGS.items():
        given = getattr(args, flag)
        if artifact == wanted and not given:
            raise UserError(f"--backend {args.backend} runs {what}: pass --{flag} DIR (made by `{info.made_by}`)")
        if artifact != wanted and given:
            owner = next(name for name, b in BACKENDS.items() if b.artifact == artifact)
            raise UserError(f"--{flag} is for --backend {owner}, but the backend is {args.backend}: "
                            f"pass --backend {owner}, or drop --{flag}")
    if args.rebuild and wanted != "engine_dir":
        raise UserError(f"--rebuild is for --backend tensorrt, but the backend is {args.backend}: drop --rebuild")


def generator_from_args(args, model):
    """The generator `check_backend_flags` (called before the model loads) has cleared the flags of."""
    backbone = "dit" if is_dit(model.cfg) else "var"
    backend_class(args.backend, backbone)        # an unknown or uninstalled backend: refused first
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
        options[info.artifact] = getattr(args, ARTIFACT_FLAGS[info.artifact][0])
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
    """Check an output file's place before the work that fills it (creating nothing): the path is
    not a directory, and it can be created; `write_output` writes it."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{out} is a directory: give a file name")
    check_creatable(out)
    return out


def write_output(path, data: bytes):
    """Write a file that `output_file` checked, creating its directory."""
    output_dir(Path(path).parent)
    write_atomic(path, data)


def write_json(path, obj):
    """`obj` as indented JSON, written atomically (its directory created)."""
    write_output(path, (json.dumps(obj, indent=1) + "\n").encode())

