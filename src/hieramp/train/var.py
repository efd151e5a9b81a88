"""Training VAR on the VQVAE's token pyramids, then the HierAmp class-token fine-tune.

Phase 1 trains a plain VAR (no class tokens) with the next-scale token loss and class dropout,
so classifier-free guidance works. Phase 2 adds a class token at every scale and a shared linear
`class_head`, and fine-tunes everything on the token loss plus the classification loss averaged
over scales (HierAmp, Eq. 6). Both phases use the loss of `hieramp finetune` (train.objective).
Letters: N images, B batch, L tokens, V vocabulary, Cv latent width, S scales, K classes.
"""
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import nn

from ..model.config import VARConfig
from ..model.var import VAR
from ..model.vqvae import VQVAE
from .fit import Schedule, fit
from .objective import Objective, drop_labels, new_class_head, var_objective
from .vqvae import DIGITS_VAE

DIGITS_VAR = VARConfig(depth=4, embed_dim=128, num_heads=4, num_classes=10, vae=DIGITS_VAE)
PRETRAIN_SCHEDULE = Schedule(steps=800, batch_size=64, lr=1.5e-3, weight_decay=0.05, warmup=50)
FINETUNE_SCHEDULE = Schedule(steps=250, batch_size=64, lr=3e-4, weight_decay=0.05, warmup=20)
CLS_LOSS_WEIGHT = 1.0


@dataclass(frozen=True)
class TokenData:
    """Teacher-forcing data of the training images, computed once."""
    ids_NL: torch.Tensor        # (N, L) int64 token ids, scales concatenated
    inputs_NLCv: torch.Tensor   # (N, L - first_l, Cv) VAR input of scales 1 .. S-1
    labels_N: torch.Tensor      # (N,) int64


@torch.no_grad()
def tokenize(vae: VQVAE, images_N3HW, labels_N, batch_size=256) -> TokenData:
    ids, inputs = [], []
    for start in range(0, len(images_N3HW), batch_size):
        idx_list = vae.img_to_idx(images_N3HW[start:start + batch_size])
        ids.append(torch.cat(idx_list, dim=1))
        inputs.append(vae.idx_to_var_input(idx_list))
    return TokenData(torch.cat(ids), torch.cat(inputs), torch.as_tensor(labels_N, dtype=torch.int64))


def batch_objective(var: VAR, class_head, data: TokenData, idx, generator: torch.Generator) -> Objective:
    labels = data.labels_N[idx]
    dropped = drop_labels(labels, var.cfg.num_classes, generator)
    return var_objective(var, class_head, labels, dropped, data.ids_NL[idx], data.inputs_NLCv[idx], CLS_LOSS_WEIGHT)


def pretrain_var(data: TokenData, seed: int, cfg: VARConfig = DIGITS_VAR, schedule: Schedule = PRETRAIN_SCHEDULE,
                 progress=True):
    """Phase 1: a plain VAR; returns (model, per-step losses)."""
    var = VAR(replace(cfg, cls_token_scales=())).train()
    generator = torch.Generator().manual_seed(seed)
    losses = fit(lambda idx: batch_objective(var, None, data, idx, generator).total, var.parameters(),
                 len(data.labels_N), schedule, generator, "VAR", progress)
    return var.eval(), losses


def finetune_class_tokens(plain: VAR, data: TokenData, seed: int, schedule: Schedule = FINETUNE_SCHEDULE,
                          progress=True):
    """Phase 2: the plain VAR plus a class token per scale and `class_head`; returns
    (model, class_head, per-step total losses, per-step classification losses)."""
    cfg = replace(plain.cfg, cls_token_scales=tuple(range(plain.cfg.num_scales)))
    var = VAR(cfg)
    missing, unexpected = var.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("cls_tokens.") for k in missing), (missing, unexpected)
    var.train()
    class_head = new_class_head(cfg.embed_dim, cfg.num_classes)
    generator = torch.Generator().manual_seed(seed + 1)
    cls_losses = []

    def loss_fn(idx):
        obj = batch_objective(var, class_head, data, idx, generator)
        cls_losses.append(obj.cls.item())
        return obj.total

    params = list(var.parameters()) + list(class_head.parameters())
    losses = fit(loss_fn, params, len(data.labels_N), schedule, generator, "class tokens", progress)
    return var.eval(), class_head.eval(), losses, cls_losses


def var_wo_ddp_state(var: VAR, class_head: Optional[nn.Linear]) -> dict:
    """The weights as HierAmp's trainer saves them: the VAR's keys plus `class_head.*` (when there is one)."""
    state = dict(var.state_dict())
    if class_head is not None:
        state.update({f"class_head.{k}": v for k, v in class_head.state_dict().items()})
    return state


def hieramp_checkpoint(var: VAR, class_head: nn.Linear) -> dict:
    """The file form of the HierAmp fine-tunes: trainer -> var_wo_ddp, class_head included."""
    return {"trainer": {"var_wo_ddp": var_wo_ddp_state(var, class_head)}}
