"""Loading the official checkpoint files as they are, with the configuration read from the keys."""
import argparse
import pickle
import re
from dataclasses import replace
from pathlib import Path

import torch

from .. import checks
from ..errors import UserError
from ..files import sha256_of
from .bundle import HierAmpModel, ModelSource
from .config import VARConfig, VQVAEConfig
from .var import VAR
from .vqvae import VQVAE

# Keys an official or HierAmp file may hold that the inference model does not use.
IGNORED_VAR_KEYS = re.compile(r"^class_head\.(weight|bias)$")
# How torch.save files start: its zip format, or a pickle (the legacy format).
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")


def read_state_dict(path, trust_checkpoint=False) -> dict:
    """The weights of a plain state-dict file, of a HierAmp fine-tune (trainer -> var_wo_ddp), or
    of a checkpoint of DiT's training script (its `ema` weights; its `args` namespace is plain data)."""
    path = Path(path)
    check_checkpoint_file(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as err:
        if trust_checkpoint or "Weights only load failed" not in str(err):
            raise UserError(f"cannot read checkpoint {path} ({_first_line(err)}): is it a complete .pth file?") from None
        raise UserError(f"{path} holds objects beyond plain tensors and was not unpickled (a .pth file "
                        f"can run code); if you trust its source, allow it with --trust-checkpoint "
                        f"(trust_checkpoint=True)") from None
    except Exception as err:        # a damaged file fails anywhere in the unpickler (KeyError, IndexError, ...)
        raise UserError(f"cannot read checkpoint {path} ({_first_line(err)}): is it a complete .pth file?") from None
    if isinstance(obj, dict) and isinstance(obj.get("trainer"), dict) and "var_wo_ddp" in obj["trainer"]:
        obj = obj["trainer"]["var_wo_ddp"]
    elif isinstance(obj, dict) and isinstance(obj.get("ema"), dict):
        obj = obj["ema"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} is not a state dict of tensors, a HierAmp trainer checkpoint nor a DiT training checkpoint")
    return obj


def check_checkpoint_file(path: Path):
    """A readable file that starts like a torch.save file, before torch.load sees it."""
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}; check the path")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a directory: give the .pth file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise UserError(f"cannot read checkpoint {path}: {err.strerror}") from None
    if not head:
        raise UserError(f"checkpoint {path} is empty: copy the .pth file again")
    if not head.startswith(CHECKPOINT_MAGIC):
        raise UserError(f"{path} is not a PyTorch checkpoint (a torch.save file starts as a zip archive or a pickle): "
                        f"give the .pth file")


def _first_line(err) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def count_indices(sd, pattern) -> int:
    """How many distinct values the first group of `pattern` takes over the keys of `sd`."""
    return len({m.group(1) for k in sd if (m := re.match(pattern, k))})


def _require(sd, key, path):
    if key not in sd:
        raise UserError(f"{path}: missing key {key!r}; is this a VAR checkpoint?")
    return sd[key]


def infer_vae_config(sd, patch_nums, path="VQVAE checkpoint") -> VQVAEConfig:
    emb = sd.get("quantize.embedding.weight")
    ch_in = sd.get("encoder.conv_in.weight")
    if emb is None or ch_in is None:
        raise UserError(f"{path}: missing key 'quantize.embedding.weight' or 'encoder.conv_in.weight'; is this a VQVAE checkpoint?")
    ch = ch_in.shape[0]
    levels = count_indices(sd, r"^encoder\.down\.(\d+)\.")
    ch_mult = tuple(sd[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] // ch for i in range(levels))
    return VQVAEConfig(
        vocab_size=emb.shape[0], Cvae=emb.shape[1], ch=ch, ch_mult=ch_mult,
        num_res_blocks=count_indices(sd, r"^encoder\.down\.0\.block\.(\d+)\."),
        patch_nums=tuple(patch_nums), share_quant_resi=count_indices(sd, r"^quantize\.quant_resi\.qresi_ls\.(\d+)\."),
    )


def infer_var_config(sd, path="VAR checkpoint") -> VARConfig:
    word = _require(sd, "word_embed.weight", path)
    levels = _require(sd, "lvl_1L", path).flatten()
    counts = torch.bincount(levels).tolist()
    patch_nums = tuple(round(c ** 0.5) for c in counts)
    C = word.shape[0]
    l2_key = "blocks.0.attn.scale_mul_1H11"
    return VARConfig(
        depth=count_indices(sd, r"^blocks\.(\d+)\."),
        embed_dim=C,
        num_heads=sd[l2_key].shape[1] if l2_key in sd else C // 64,
        num_classes=_require(sd, "class_emb.weight", path).shape[0] - 1,
        mlp_ratio=_require(sd, "blocks.0.ffn.fc1.weight", path).shape[0] / C,
        attn_l2_norm=l2_key in sd,
        shared_aln="shared_ada_lin.1.weight" in sd,
        cls_token_scales=tuple(sorted(int(m.group(1)) for k in sd if (m := re.match(r"^cls_tokens\.(\d+)$", k)))),
        vae=VQVAEConfig(vocab_size=_require(sd, "head.weight", path).shape[0], Cvae=word.shape[1], patch_nums=patch_nums),
    )


def load_weights(module, sd, path, ignored=None):
    """Strict load that names every missing and unexpected key, and every shape mismatch."""
    sd = {k: v for k, v in sd.items() if not (ignored and ignored.match(k))}
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if wrong:
        problems.append("wrong shapes " + ", ".join(f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})" for k in wrong))
    if problems:
        raise UserError(f"{path} does not fit the model it describes: {'; '.join(problems)}")
    module.load_state_dict(sd, strict=True)


def load_vae_for(var_cfg: VARConfig, vae_ckpt, var_ckpt, trust_checkpoint=False) -> VQVAE:
    """The VQVAE file of a VAR, checked to fit it (vocabulary and latent width)."""
    vae_sd = read_state_dict(vae_ckpt, trust_checkpoint)
    vae_cfg = infer_vae_config(vae_sd, var_cfg.patch_nums, vae_ckpt)
    if (vae_cfg.vocab_size, vae_cfg.Cvae) != (var_cfg.vae.vocab_size, var_cfg.vae.Cvae):
        raise UserError(f"{vae_ckpt} (vocabulary {vae_cfg.vocab_size}, width {vae_cfg.Cvae}) does not match "
                        f"{var_ckpt} (vocabulary {var_cfg.vae.vocab_size}, width {var_cfg.vae.Cvae}): pass the VQVAE it was trained with")
    with torch.device("meta"):
        vae = VQVAE(vae_cfg)
    vae.to_empty(device="cpu")
    load_weights(vae, vae_sd, vae_ckpt)
    return vae


def load_model(var_ckpt, vae_ckpt, device="cpu", trust_checkpoint=False, var_sd=None) -> HierAmpModel:
    """VAR (plain or HierAmp fine-tune) and VQVAE from the official file forms; `var_sd`: the
    VAR file's weights when already read."""
    checks.device(device)
    var_sd = read_state_dict(var_ckpt, trust_checkpoint) if var_sd is None else var_sd
    var_cfg = infer_var_config(var_sd, var_ckpt)
    vae = load_vae_for(var_cfg, vae_ckpt, var_ckpt, trust_checkpoint)
    var_cfg = replace(var_cfg, vae=vae.cfg)
    with torch.device("meta"):
        var = VAR(var_cfg)
    var.to_empty(device="cpu")
    load_weights(var, var_sd, var_ckpt, IGNORED_VAR_KEYS)
    source = ModelSource(Path(var_ckpt).name, sha256_of(var_ckpt), sha256_of(vae_ckpt),
                         (str(Path(var_ckpt).resolve()), str(Path(vae_ckpt).resolve())))
    return HierAmpModel(var, vae, source).eval().to(device)
