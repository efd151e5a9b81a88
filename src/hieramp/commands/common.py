"""Options shared by several subcommands, and turning them into models and configs."""
import argparse
import os
from pathlib import Path

from .. import checks
from ..errors import UserError
from ..files import check_creatable, write_atomic
from ..model.amp_config import AmpConfig, default_amp_layers
from ..model.presets import resolve_model
from ..precision import PRECISIONS
from ..runtime.backends import BACKENDS
from ..runtime.generator import Generator


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


def add_model_options(p):
    g = p.add_argument_group("model")
    g.add_argument("--model", default="default",
                   help="preset name (default, tiny, d16, d20, d24, d30) or a VAR checkpoint .pth "
                        "(var_d16.pth or a HierAmp ar-ckpt-*.pth fine-tune)")
    g.add_argument("--vae", help="VQVAE checkpoint (vae_ch160v4096z32.pth), needed with a VAR .pth")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold more than tensors (unpickling can run code: only for trusted files)")
    g.add_argument("--device", type=device, default="cpu", help="torch device for the torch backend (cpu, cuda, cuda:1)")


def add_sampling_options(p):
    g = p.add_argument_group("sampling")
    g.add_argument("--seed", type=seed, default=0,
                   help=f"seed, 0-{checks.MAX_SEED}; each image's noise derives from (seed, class, index)")
    g.add_argument("--cfg", type=number(checks.cfg), default=4.0,
                   help="classifier-free guidance scale (>= 0), ramped linearly over the scales")
    g.add_argument("--top-k", type=user_type(lambda text: checks.top_k(_as(int, text))), default=900,
                   help="keep the k most likely tokens (0: all)")
    g.add_argument("--top-p", type=number(checks.top_p), default=0.95, help="nucleus sampling mass, in (0, 1] (1: off)")


def add_amp_options(p):
    g = p.add_argument_group("amplification (HierAmp)")
    g.add_argument("--beta", type=numbers(checks.beta),
                   help="strength: one value, three stage values coarse,mid,fine, or one per scale (default 5)")
    g.add_argument("--rho", type=numbers(checks.rho),
                   help="share of salient tokens amplified, in (0, 1]; same forms as --beta (default 0.5)")
    g.add_argument("--amp-mode", choices=("logit", "weight"), help="bias the logits (paper, default) or scale the weights")
    g.add_argument("--amp-layers", type=int_list("amplification layers"),
                   help="blocks to amplify, e.g. 14 or 12,14 (default: the paper's block 14 of 16, scaled to the "
                        "model's depth)")
    g.add_argument("--amp-scales", type=int_list("amplification scales"),
                   help="scales to amplify, e.g. 1-9 (default: every scale >= 1 with a class token)")
    g.add_argument("--no-amp", action="store_true", help="turn amplification off")


AMP_OPTIONS = ("beta", "rho", "amp_mode", "amp_layers", "amp_scales")


def load_model_from_args(args):
    return resolve_model(args.model, args.vae, args.device, args.trust_checkpoint, getattr(args, "random_init", False))


def amp_from_args(args, cfg) -> AmpConfig:
    """Amplification is on by default for models with class tokens; asking it of others is an error."""
    asked = [a for a in AMP_OPTIONS if getattr(args, a) is not None]
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
    info, options = BACKENDS.get(args.backend), {}
    if args.precision:
        options["precision"] = args.precision
    if args.compile:
        if args.backend != "torch":
            raise UserError(f"--compile applies to the torch backend, not {args.backend}: drop --compile")
        options["compile"] = True
    if info is not None and info.artifact is not None:
        options[info.artifact] = getattr(args, ARTIFACT_FLAGS[info.artifact][0])
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
