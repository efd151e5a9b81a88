"""Named models: the bundled digits model, the official sizes (from checkpoint files) and small random-init ones."""
import hashlib
import os
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import torch

from .. import checks
from ..errors import UserError
from .bundle import HierAmpModel, ModelSource
from .checkpoint import load_model, read_state_dict
from .config import official_var, tiny_var
from .dit.checkpoint import is_dit_state_dict
from .dit.presets import ARCHITECTURES as DIT_ARCHITECTURES, OFFICIAL_VAE_DIR, load_dit_model, resolve_dit_preset
from .var import VAR
from .vqvae import VQVAE

OFFICIAL_VAE_FILE = "vae_ch160v4096z32.pth"
OFFICIAL_DEPTHS = (16, 20, 24, 30)
RANDOM_INIT_SEED = 0

# Architectures that can be built with random weights: name -> VARConfig.
ARCHITECTURES = {
    "tiny": tiny_var(),
    "tiny-plain": tiny_var(cls_token_scales=()),
    **{f"d{d}": official_var(d, cls_token_scales=tuple(range(10))) for d in OFFICIAL_DEPTHS},
}
# Models whose weights ship inside the package (data/<folder>/), in the official file forms:
# name -> (VAR fine-tune file, VQVAE file). Made by `hieramp train` (hieramp.train.recipe).
BUNDLED = {"digits": ("digits/ar-ckpt-digits.pth", "digits/vae-digits.pth")}
DEFAULT_PRESET = "digits"


def checkpoint_dir() -> Path:
    return Path(os.environ.get("HIERAMP_CHECKPOINTS", Path.home() / ".cache" / "hieramp"))


def random_model(name: str, device="cpu") -> HierAmpModel:
    """An architecture with seeded random weights: the same weights on every run and machine."""
    if name not in ARCHITECTURES:
        raise UserError(f"unknown architecture {name!r}: use one of {', '.join(ARCHITECTURES)}")
    cfg = ARCHITECTURES[name]
    checks.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        var, vae = VAR(cfg), VQVAE(cfg.vae)
    tag = hashlib.sha256(f"random-init:{name}:{RANDOM_INIT_SEED}:{cfg}".encode()).hexdigest()
    return HierAmpModel(var, vae, ModelSource(f"{name} (random init)", tag, tag)).eval().to(device)


def bundled_model(name: str, device="cpu") -> HierAmpModel:
    """A bundled model, read through load_model like any official file."""
    data = resources.files("hieramp").joinpath("data")
    with ExitStack() as stack:
        var_file, vae_file = (stack.enter_context(resources.as_file(data.joinpath(f))) for f in BUNDLED[name])
        return load_model(var_file, vae_file, device)


def resolve_model(model: str = None, vae: str = None, device="cpu", trust_checkpoint=False, random_init=False,
                  num_heads=None):
    """What every command's --model means: a preset name, or a checkpoint path with --vae. The
    backbone (VAR or DiT) is recognised from the checkpoint's keys."""
    model = model or "default"
    if model == "default":
        model = DEFAULT_PRESET
    if Path(model).suffix in (".pth", ".pt") or Path(model).is_file():
        return _checkpoint_model(model, vae, device, trust_checkpoint, num_heads)
    if model in BUNDLED:                    # its weights ship with the package, so --random-init is moot
        return bundled_model(model, device)
    if model in DIT_ARCHITECTURES:
        return resolve_dit_preset(model, checkpoint_dir(), vae, device, random_init, trust_checkpoint, num_heads)
    if random_init or model.startswith("tiny"):
        return random_model(model, device)
    if model in ARCHITECTURES:
        depth = model[1:]
        var_file = checkpoint_dir() / f"var_d{depth}.pth"
        vae_file = Path(vae) if vae else checkpoint_dir() / OFFICIAL_VAE_FILE
        for f in (var_file, vae_file):
            if not f.is_file():
                raise UserError(f"preset {model} needs {f}: put the official file there (or set HIERAMP_CHECKPOINTS), "
                                f"or pass --random-init to benchmark the architecture without weights")
        return load_model(var_file, vae_file, device, trust_checkpoint)
    presets = ", ".join(["default", *BUNDLED, *ARCHITECTURES, *DIT_ARCHITECTURES])
    raise UserError(f"unknown model {model!r}: use a preset ({presets}) or a VAR .pth / DiT .pt file with --vae")


def _checkpoint_model(path, vae, device, trust_checkpoint, num_heads):
    sd = read_state_dict(path, trust_checkpoint)
    if is_dit_state_dict(sd):
        if vae is None or not Path(vae).is_dir():
            raise UserError(f"{path} is a DiT checkpoint: pass its VAE directory too (vae): {OFFICIAL_VAE_DIR}")
        return load_dit_model(path, vae, device, trust_checkpoint, num_heads, sd)
    if num_heads is not None:
        raise UserError(f"--heads applies to DiT checkpoints; {path} is a VAR one, whose heads come from its keys")
    if vae is None or Path(vae).is_dir():
        raise UserError(f"{path} is a VAR checkpoint: pass its VQVAE file too (vae): {OFFICIAL_VAE_FILE} or the VQVAE "
                        f"it was trained with"
                        + (f" ({vae} is a directory, the form of DiT's VAE)" if vae else ""))
    return load_model(path, vae, device, trust_checkpoint, sd)
