"""Training VAR on the VQVAE's token pyramids, then the HierAmp class-token fine-tune.

Phase 1 trains a plain VAR (no class tokens) with the next-scale token loss and class dropout,
so classifier-free guidance works. Phase 2 adds a class token at every scale and a shared linear
`class_head` on the last block's class-token outputs, and fine-tunes everything on the token
loss plus the classification loss averaged over scales (HierAmp, Eq. 6).
Letters: N images, B batch, L tokens, V vocabulary, Cv latent width, S scales, K classes.
"""
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..model.config import VARConfig
from ..model.var import VAR
from ..model.vqvae import VQVAE
from .fit import Schedule, fit
from .vqvae import DIGITS_VAE

DIGITS_VAR = VARConfig(depth=4, embed_dim=128, num_heads=4, num_classes=10, vae=DIGITS_VAE)
PRETRAIN_SCHEDULE = Schedule(steps=800, batch_size=64, lr=1.5e-3, weight_decay=0.05, warmup=50)
FINETUNE_SCHEDULE = Schedule(steps=250, batch_size=64, lr=3e-4, weight_decay=0.05, warmup=20)
CLASS_DROP = 0.1                # share of labels replaced by the unconditional label
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


def drop_labels(labels_B, num_classes: int, generator: torch.Generator):
    drop = torch.rand(len(labels_B), generator=generator) < CLASS_DROP
    return torch.where(drop, torch.full_like(labels_B, num_classes), labels_B)


def token_loss(var: VAR, data: TokenData, idx, generator):
    """Mean next-scale cross-entropy over all positions, and the class-token outputs (B, S, C)."""
    labels = drop_labels(data.labels_N[idx], var.cfg.num_classes, generator)
    logits_BLV, cls_BSC = var(labels, data.inputs_NLCv[idx])
    return F.cross_entropy(logits_BLV.flatten(0, 1), data.ids_NL[idx].flatten()), cls_BSC


def pretrain_var(data: TokenData, seed: int, cfg: VARConfig = DIGITS_VAR, schedule: Schedule = PRETRAIN_SCHEDULE,
                 progress=True):
    """Phase 1: a plain VAR; returns (model, per-step losses)."""
    var = VAR(replace(cfg, cls_token_scales=())).train()
    generator = torch.Generator().manual_seed(seed)
    losses = fit(lambda idx: token_loss(var, data, idx, generator)[0], var.parameters(), len(data.labels_N), schedule,
                 generator, "VAR", progress)
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
    class_head = nn.Linear(cfg.embed_dim, cfg.num_classes)
    generator = torch.Generator().manual_seed(seed + 1)
    cls_losses = []

    def loss_fn(idx):
        tokens, cls_BSC = token_loss(var, data, idx, generator)
        logits_BSK = class_head(cls_BSC)
        labels_BS = data.labels_N[idx, None].expand(-1, logits_BSK.shape[1])      # the labels before dropout
        cls_loss = F.cross_entropy(logits_BSK.flatten(0, 1), labels_BS.flatten())
        cls_losses.append(cls_loss.item())
        return tokens + CLS_LOSS_WEIGHT * cls_loss

    params = list(var.parameters()) + list(class_head.parameters())
    losses = fit(loss_fn, params, len(data.labels_N), schedule, generator, "class tokens", progress)
    return var.eval(), class_head.eval(), losses, cls_losses


def hieramp_checkpoint(var: VAR, class_head: nn.Linear) -> dict:
    """The file form of the HierAmp fine-tunes: trainer -> var_wo_ddp, class_head included."""
    state = dict(var.state_dict())
    state.update({f"class_head.{k}": v for k, v in class_head.state_dict().items()})
    return {"trainer": {"var_wo_ddp": state}}
