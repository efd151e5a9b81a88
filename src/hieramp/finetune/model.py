"""The model a fine-tune starts from: a VAR checkpoint (official, or a HierAmp fine-tune to continue),
or a preset; class tokens at the chosen scales and `class_head` are added where the file has none."""
import re
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..model.checkpoint import infer_var_config, load_vae_for, read_state_dict
from ..model.config import VARConfig
from ..model.presets import resolve_model
from ..model.var import VAR
from ..model.vqvae import VQVAE
from ..train.objective import new_class_head, var_objective
from ..train.var import var_wo_ddp_state

NEW_KEYS = re.compile(r"^(cls_tokens\.\d+|class_head\.(weight|bias))$")   # may be absent: they start fresh


def is_checkpoint_path(model: str) -> bool:
    return Path(model).suffix == ".pth" or Path(model).is_file()


def starting_point(model: str, vae: str, random_init=False, trust_checkpoint=False):
    """(VAR state dict, its config, the VQVAE) of --model / --vae."""
    if is_checkpoint_path(model):
        if vae is None:
            raise UserError(f"--model {model} is a VAR checkpoint: pass its VQVAE with --vae vae_ch160v4096z32.pth")
        state = read_state_dict(model, trust_checkpoint)
        cfg = infer_var_config(state, model)
        return state, cfg, load_vae_for(cfg, vae, model, trust_checkpoint)
    preset = resolve_model(model, vae, "cpu", trust_checkpoint, random_init)
    return preset.var.state_dict(), preset.cfg, preset.vae


def resolve_scales(cls_scales, cfg: VARConfig) -> tuple:
    if cls_scales is None:
        return tuple(range(cfg.num_scales))
    bad = [s for s in cls_scales if not 0 <= s < cfg.num_scales]
    if bad:
        raise UserError(f"--cls-scales {bad} out of range: this model has scales 0-{cfg.num_scales - 1}")
    return tuple(cls_scales)


def build_trainee(state: dict, cfg: VARConfig, vae: VQVAE, cls_scales: tuple, seed: int, source: str):
    """(VAR with class tokens at `cls_scales`, class_head or None), the weights of `state` loaded; the new
    parameters initialised from `seed` (class tokens and head: truncated normal, std sqrt(1/(3C)))."""
    cfg = replace(cfg, cls_token_scales=cls_scales, vae=vae.cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        var = VAR(cfg)
        class_head = new_class_head(cfg.embed_dim, cfg.num_classes) if cls_scales else None
    own = var_wo_ddp_state(var, class_head)
    missing = sorted(k for k in set(own) - set(state) if not NEW_KEYS.match(k))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [f"missing keys {missing}"] * bool(missing) + [f"unexpected keys {unexpected}"] * bool(unexpected)
    problems += [f"wrong shapes {wrong}"] * bool(wrong)
    if problems:
        hint = " (a fine-tune with class tokens at other scales? match --cls-scales to it)" if any(
            k.startswith("cls_tokens") for k in unexpected) else ""
        raise UserError(f"{source} does not fit a fine-tune with class tokens at scales {list(cls_scales) or 'none'}: "
                        f"{'; '.join(problems)}{hint}")
    var.load_state_dict({k: v for k, v in state.items() if not k.startswith("class_head.")}, strict=False)
    if class_head is not None and "class_head.weight" in state:
        class_head.load_state_dict({"weight": state["class_head.weight"], "bias": state["class_head.bias"]})
    return var, class_head


class Trainee(nn.Module):
    """The VAR and its class head as one module (what DistributedDataParallel wraps)."""

    def __init__(self, var: VAR, class_head):
        super().__init__()
        self.var, self.class_head = var, class_head

    def forward(self, labels_B, dropped_B, ids_BL, inputs_BLCv, cls_weight: float):
        return var_objective(self.var, self.class_head, labels_B, dropped_B, ids_BL, inputs_BLCv, cls_weight)
