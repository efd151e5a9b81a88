"""The three models the paper compares: base VAR, + class tokens, + class tokens and amplification;
for DiT, two: base and + amplification."""
import hashlib
from dataclasses import replace

import torch

from ..model.amp_config import AmpConfig, default_amp_layers
from ..model.bundle import HierAmpModel, ModelSource
from ..model.dit import DiTAmpConfig, DiTModel
from ..model.var import VAR

VARIANTS = ("base", "cls", "amp")
DESCRIPTIONS = {
    "base": "VAR without class tokens (the same weights, class tokens dropped)",
    "cls": "class tokens, amplification off",
    "amp": "class tokens + amplification (logit mode, beta 5, rho 0.5, the paper's block)",
}
DIT_DESCRIPTIONS = {
    "base": "DiT, amplification off",
    "amp": "DiT + amplification (beta 5, rho 0.5, cfg-diff masks, the paper's relative block, every step but the first)",
}


def paper_amp(depth: int) -> AmpConfig:
    return AmpConfig(mode="logit", beta=5.0, rho=0.5, layers=default_amp_layers(depth))


def without_class_tokens(model: HierAmpModel) -> HierAmpModel:
    """The same VAR with its class tokens dropped; every other tensor is shared, not copied."""
    cfg = replace(model.cfg, cls_token_scales=())
    with torch.device("meta"):
        var = VAR(cfg)
    state = {k: v for k, v in model.var.state_dict().items() if not k.startswith("cls_tokens.")}
    var.load_state_dict(state, strict=True, assign=True)
    tag = hashlib.sha256(f"{model.source.var_sha256}:without-class-tokens".encode()).hexdigest()
    source = ModelSource(f"{model.source.name} without class tokens", tag, model.source.vae_sha256, model.source.files)
    return HierAmpModel(var, model.vae, source).eval()


def variant_models(model: HierAmpModel, variants=VARIANTS):
    """variant -> (model, AmpConfig) for the variants this model has, and variant -> reason for the rest.

    A model without class tokens (plain VAR) is itself the `base` variant and has no `cls` or `amp`;
    a DiT has `base` and `amp`.
    """
    if isinstance(model, DiTModel):
        available = {name: (model, DiTAmpConfig(enabled=name == "amp")) for name in variants if name != "cls"}
        return available, {"cls": "DiT has no class tokens"} if "cls" in variants else {}
    has_cls = bool(model.cfg.cls_token_scales)
    available, skipped = {}, {}
    for name in variants:
        if name == "base":
            available[name] = (without_class_tokens(model) if has_cls else model, AmpConfig(enabled=False))
        elif not has_cls:
            skipped[name] = "the model has no class tokens (plain VAR); load a HierAmp fine-tune (ar-ckpt-*.pth)"
        elif name == "cls":
            available[name] = (model, AmpConfig(enabled=False))
        else:
            available[name] = (model, paper_amp(model.cfg.depth))
    return available, skipped
