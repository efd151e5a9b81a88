"""Precisions a backend can run in, and what stays float32 whatever the precision.

In the torch backend, reduced precision applies to the four matrix products of every block
(qkv, attention projection, the two FFN layers: nearly all of a step's FLOPs and two thirds of
the weights) and to the decoder. Float32 stays for (measurements: benchmarks/results/precision-gates.md):
- the residual stream, norms and AdaLN modulations, the attention and its KV cache: with them
  in bf16 the bundled digits model, whose l2-normalised attention runs at temperatures up to
  100, had 0.21-0.27 relative logit error, 93.5-95 % argmax agreement and 88 % equal
  amplified sets; see the measurements for the split chosen;
- the amplification op (its saliency is float32 by the spec);
- the final AdaLN and the head: the logits that guidance and sampling read;
- guidance, filtering and sampling; the VQ update and the accumulated f_hat (ten residual sums;
  the decoder reads it cast once).
ONNX exports in fp16 are fp16 throughout except the op and the logits (export.graphs).
"""
import copy
from contextlib import nullcontext

import torch

from .errors import UserError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device) -> torch.dtype:
    """The torch dtype of `precision` on `device`, or a UserError naming the fix."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and torch.device(device).type == "cpu":
        raise UserError("fp16 runs on GPUs only (CPUs have no fast fp16 matrix products): use --precision bf16 on cpu")
    return PRECISIONS[precision]


def precision_list(text: str) -> tuple:
    """'fp32,bf16' -> ('fp32', 'bf16'), names checked."""
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    for name in names:
        if name not in PRECISIONS:
            raise UserError(f"unknown precision {name!r} in {text!r}: use some of {', '.join(PRECISIONS)}")
    if not names:
        raise UserError("--precision is empty: give fp32, bf16 or fp16 (comma-separated for bench)")
    return names


def autocast(device, precision: str):
    """Training's mixed precision: torch autocast to bf16 or fp16 on `device`; nothing for fp32."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=PRECISIONS[precision])


def transformer_in(var, dtype: torch.dtype, device):
    """The VAR on `device` with the blocks' matrix-product layers in `dtype`, all else float32; a
    copy unless float32, so the caller's model (the reference of `hieramp compare`) keeps its weights."""
    var = var.to(device) if dtype == torch.float32 else copy.deepcopy(var).to(device)
    for block in var.blocks:
        for layer in (block.attn.mat_qkv, block.attn.proj, block.ffn.fc1, block.ffn.fc2):
            layer.to(dtype)
    return var


def decoder_in(vae, dtype: torch.dtype, device):
    """The VQVAE on `device` in `dtype` for decoding (a copy unless float32)."""
    return vae.to(device) if dtype == torch.float32 else copy.deepcopy(vae).to(device, dtype)
