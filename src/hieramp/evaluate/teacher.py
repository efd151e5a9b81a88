"""The soft-label teacher: a torchvision ResNet-18 from a local file, its outputs restricted to the
evaluated classes."""
import pickle
from pathlib import Path

import torch
from torch import nn

from ..classes import IMAGENET_NUM_CLASSES
from ..errors import UserError
from .folders import MatchedClasses
from .students import resnet18, resnet18_modified


class Teacher(nn.Module):
    def __init__(self, network: nn.Module, keep: torch.Tensor | None):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.register_buffer("keep", keep, persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)            # always in eval mode: batch-norm statistics stay fixed

    def forward(self, x_B3HW):
        logits = self.network(x_B3HW)                                          # (B, K_teacher)
        return logits if self.keep is None else logits[:, self.keep]           # (B, K)


def _state_dict(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"teacher file {path} not found: pass a ResNet-18 state dict (torchvision's ImageNet "
                        f"weights or one trained on the evaluated classes)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise UserError(f"cannot read teacher {path} as a weights-only torch file ({str(err).splitlines()[0]}); "
                        f"save the ResNet-18 state dict with torch.save(model.state_dict(), ...)") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"teacher {path} holds no state dict: expected tensors by name, or a checkpoint with 'model'")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_teacher(path, classes: MatchedClasses) -> Teacher:
    """The ResNet-18 of `path` (the 3x3-stem variant when conv1 is 3x3), scoring `classes`."""
    path = Path(path)
    state = _state_dict(path)
    if "fc.weight" not in state or "conv1.weight" not in state:
        raise UserError(f"teacher {path} is not a torchvision ResNet-18 state dict (no conv1.weight / fc.weight)")
    outputs = state["fc.weight"].shape[0]
    network = (resnet18_modified if state["conv1.weight"].shape[-1] == 3 else resnet18)(outputs)
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise UserError(f"teacher {path} does not fit torchvision's ResNet-18: {detail}") from None
    if outputs == len(classes):
        keep = None
    elif outputs == IMAGENET_NUM_CLASSES and classes.imagenet_indices is not None:
        keep = torch.tensor(classes.imagenet_indices)
    else:
        raise UserError(f"teacher {path} has {outputs} outputs, but {len(classes)} classes are evaluated: "
                        f"use a teacher trained on these classes or an ImageNet-1k one")
    return Teacher(network, keep)
