"""The one VAR training loss (HierAmp, Eq. 6), shared by `hieramp finetune` and the digits recipe.

Token loss: mean next-scale cross-entropy over all positions, with the labels dropped to the
unconditional label at rate CLASS_DROP (classifier-free guidance). Class loss: a shared linear
`class_head` on the class-token features (the last block's attention output at each class-token
position), cross-entropy against the labels before dropout, averaged over the scales.
Letters: B batch, L tokens, V vocabulary, S class-token scales, K classes, C width.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..model.var import VAR

CLASS_DROP = 0.1                # share of labels replaced by the unconditional label


def drop_mask(n: int, generator: torch.Generator):
    """Which of n labels class dropout replaces: (n,) bool."""
    return torch.rand(n, generator=generator) < CLASS_DROP


def drop_labels(labels_B, num_classes: int, generator: torch.Generator):
    return apply_drop(labels_B, drop_mask(len(labels_B), generator), num_classes)


def apply_drop(labels_B, drop_B, num_classes: int):
    return torch.where(drop_B, torch.full_like(labels_B, num_classes), labels_B)


def new_class_head(embed_dim: int, num_classes: int) -> nn.Linear:
    """`class_head`: truncated normal weights with VAR's std sqrt(1 / (3 C)), zero bias."""
    head = nn.Linear(embed_dim, num_classes)
    nn.init.trunc_normal_(head.weight, std=math.sqrt(1 / embed_dim / 3))
    nn.init.zeros_(head.bias)
    return head


@dataclass
class Objective:
    total: torch.Tensor             # what is minimised
    token: torch.Tensor
    cls: Optional[torch.Tensor]     # None without class tokens
    logits_BLV: torch.Tensor
    cls_logits_BSK: Optional[torch.Tensor]


def var_objective(var: VAR, class_head: Optional[nn.Module], labels_B, dropped_B, ids_BL, inputs_BLCv,
                  cls_weight: float = 1.0) -> Objective:
    """The loss of one batch: `labels_B` are the true labels, `dropped_B` the same after class dropout."""
    logits_BLV, cls_BSC = var(dropped_B, inputs_BLCv)
    token = F.cross_entropy(logits_BLV.flatten(0, 1), ids_BL.flatten())
    if class_head is None or cls_BSC.shape[1] == 0:
        return Objective(token, token, None, logits_BLV, None)
    cls_logits_BSK = class_head(cls_BSC).float()
    labels_BS = labels_B[:, None].expand(-1, cls_logits_BSK.shape[1])
    cls = F.cross_entropy(cls_logits_BSK.flatten(0, 1), labels_BS.flatten())
    return Objective(token + cls_weight * cls, token, cls, logits_BLV, cls_logits_BSK)


@torch.no_grad()
def objective_metrics(obj: Objective, labels_B, ids_BL, last_scale_tokens: int) -> dict:
    """Losses and accuracies (in %) of one batch, as plain floats."""
    hit_BL = (obj.logits_BLV.argmax(-1) == ids_BL).float()
    out = {"loss": obj.total.item(), "token_loss": obj.token.item(),
           "token_acc": 100 * hit_BL.mean().item(), "token_acc_last": 100 * hit_BL[:, -last_scale_tokens:].mean().item()}
    if obj.cls is not None:
        hit_BS = (obj.cls_logits_BSK.argmax(-1) == labels_B[:, None]).float()
        out.update(cls_loss=obj.cls.item(), cls_acc=[100 * a for a in hit_BS.mean(0).tolist()])
    return out
