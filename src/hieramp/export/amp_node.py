"""The amplification op as seen by the TorchScript ONNX exporter: eager, it runs the reference;
exported, it becomes one `hieramp::TopKBiasAttention` node (no ATen fallback, nothing patched)."""
import torch

from ..model.amp_op import topk_bias_attention
from .amp_function import DOMAIN, OP_NAME


class TopKBiasAttentionNode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, beta, rho, softmax_scale: float, mode: str):
        return topk_bias_attention(q, k, v, beta, rho, softmax_scale, mode)

    @staticmethod
    def symbolic(g, q, k, v, beta, rho, softmax_scale: float, mode: str):
        out = g.op(f"{DOMAIN}::{OP_NAME}", q, k, v, beta, rho, scale_f=float(softmax_scale), mode_s=mode)
        out.setType(q.type().with_dtype(torch.float32))  # (B, H, Lq, D) float32, like the reference
        return out


def amp_attention(beta, rho, mode: str):
    """An `attention(q, k, v, softmax_scale)` for the amplified blocks, with beta and rho graph inputs
    (the node's `scale` attribute is the softmax scale)."""
    def attention(q, k, v, softmax_scale):
        return TopKBiasAttentionNode.apply(q, k, v, beta, rho, softmax_scale, mode)
    return attention
